#!/usr/bin/env python
"""`vsl induce` from a checkout: the command lives in vsl/commands/run_hmm.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.run_hmm import main

if __name__ == "__main__":
    sys.exit(main())
