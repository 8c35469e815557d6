"""Which code and machine produced a run's scores: recorded in its ``results.json`` when the run
starts, and named beside every figure that the tables and head-to-heads take from it."""

from __future__ import annotations

import subprocess
from pathlib import Path


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


def run_source(folder: str | Path, results: dict) -> dict:
    """What a table keeps of the finished run in ``folder`` beside its scores: the command, the
    seed, the code (commit and changed files), the device, and whether it was stopped part-way."""
    return {"run": str(folder), "command": results.get("command"), "seed": results.get("seed"),
            "commit": results.get("commit"), "changed_files": results.get("changed_files", []),
            "device": (results.get("config") or {}).get("device"),
            "interrupted": bool(results.get("interrupted", False))}


def describe_code(source: dict) -> str:
    """The code and device of a :func:`run_source` in words: "commit `C`", then the files that
    differed from C where the run recorded them (what a ``+dirty`` commit stood for), then the
    device unless it was a CPU (runs recorded before devices were kept ran on CPUs)."""
    changed = source.get("changed_files")
    device = source.get("device") or "cpu"
    return (f"commit `{source['commit']}`" + (f", with changes to {', '.join(changed)}" if changed else "")
            + ("" if device == "cpu" else f", on {device}"))
