"""Put the checkout these scripts belong to first on the import path, so that a script runs the
vsl and hmm of its own checkout (and records that checkout's commit) even when the environment
has another checkout installed in editable mode, e.g. a git worktree that shares a virtual
environment with the main one."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path[:1]:
    sys.path.insert(0, ROOT)
