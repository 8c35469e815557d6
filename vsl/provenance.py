"""Which code and machine produced a run's scores: recorded in its ``results.json`` when the run
starts, and named beside every figure that the tables and head-to-heads take from it. A run
stopped and continued with ``--resume`` keeps one record per process that trained it (its
segments), so that a run resumed under other code says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vsl.checkpoint import CheckpointError, atomic_write_json, read_json

#: The file in a run folder that lists the code of each process that trained the run.
SEGMENTS = "segments.json"


def code_version(root: str | Path | None = None) -> dict:
    """Which code a run ran: the commit of the git checkout at ``root`` (default: the one this
    package runs from), marked ``+dirty`` when tracked files differ from it, and those files
    (``changed_files``), so that a dirty run still says what differed; ``None`` and ``[]``
    outside a git checkout."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "diff", "--name-only", "-z", "HEAD", "--"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "changed_files": []}
    files = sorted(name for name in changed.split("\0") if name)
    return {"commit": commit + ("+dirty" if files else ""), "changed_files": files}


def git_commit() -> str | None:
    """The commit of the working tree this package runs from (``+dirty`` if it has changes)."""
    return code_version()["commit"]


def record_segment(out_dir: str | Path, version: dict, command: str | None, device: str,
                   resume: bool) -> list[dict]:
    """Add this process to the segments of the run in ``out_dir`` and return them all, oldest
    first: its code version (:func:`code_version`), command and device. A run that is not
    resumed starts the list afresh; one resumed from a folder without the file (started before
    segments were kept) begins with a segment whose code is unknown (commit ``None``)."""
    path = Path(out_dir) / SEGMENTS
    earlier = []
    if resume and path.is_file():
        earlier = read_json(path)
        if not isinstance(earlier, list) or not all(isinstance(s, dict) and "commit" in s for s in earlier):
            raise CheckpointError(f"{path}: cannot read the run's segments (not a list of segments with a commit each)")
    elif resume:
        earlier = [{"commit": None, "changed_files": [], "command": None, "device": None}]
    segments = [*earlier, {**version, "command": command, "device": device}]
    atomic_write_json(path, segments)
    return segments


def run_source(folder: str | Path, results: dict) -> dict:
    """What a table keeps of the finished run in ``folder`` beside its scores: the command, the
    seed, the code (commit and changed files), the device, whether it was stopped part-way, and,
    for a run continued with --resume, the code and device of its ``earlier_segments``."""
    source = {"run": str(folder), "command": results.get("command"), "seed": results.get("seed"),
              "commit": results.get("commit"), "changed_files": results.get("changed_files", []),
              "device": (results.get("config") or {}).get("device"),
              "interrupted": bool(results.get("interrupted", False))}
    earlier = (results.get("segments") or [])[:-1]
    if earlier:
        source["earlier_segments"] = [{"commit": s.get("commit"), "changed_files": s.get("changed_files", []),
                                       "device": s.get("device")} for s in earlier]
    return source


def _describe_version(source: dict) -> str:
    if source.get("commit") is None:
        return "code not recorded"
    changed = source.get("changed_files")
    device = source.get("device") or "cpu"
    return (f"commit `{source['commit']}`" + (f", with changes to {', '.join(changed)}" if changed else "")
            + ("" if device == "cpu" else f", on {device}"))


def describe_code(source: dict) -> str:
    """The code and device of a :func:`run_source` in words: "commit `C`", then the files that
    differed from C where the run recorded them (what a ``+dirty`` commit stood for), then the
    device unless it was a CPU (runs recorded before devices were kept ran on CPUs); for a run
    continued with --resume, the same of each earlier segment, oldest first."""
    earlier = source.get("earlier_segments") or []
    text = _describe_version(source)
    if earlier:
        text += f"; earlier segment{'s' if len(earlier) > 1 else ''}: " + "; ".join(map(_describe_version, earlier))
    return text
