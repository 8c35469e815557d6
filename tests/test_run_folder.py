"""The run folder's claim: one writer at a time (two real processes), no silent overwrite of an
earlier run, and a clear error for an --out that cannot be a run folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsl.run_folder import LOCK, RunFolderError, claim_run_folder, run_folder_busy

HOLD = """
import sys, time
from pathlib import Path
from vsl.run_folder import claim_run_folder
with claim_run_folder(sys.argv[1]):
    Path(sys.argv[2]).write_text("locked")
    time.sleep(60)
"""


def _start_holder(folder: Path, signal: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(signal)],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    deadline = time.time() + 60
    while not signal.exists():
        assert holder.poll() is None and time.time() < deadline, "the holder process did not take the lock"
        time.sleep(0.05)
    return holder


def test_a_second_process_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    folder = tmp_path / "run"
    holder = _start_holder(folder, tmp_path / "signal")
    try:
        assert run_folder_busy(folder)
        with pytest.raises(RunFolderError, match=f"another run is writing this folder \\(pid {holder.pid}\\)"):
            with claim_run_folder(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert not run_folder_busy(folder)
    with claim_run_folder(folder, resume=True):  # the kernel dropped the dead holder's lock
        assert (folder / LOCK).read_text().strip() == str(os.getpid())
    assert not (folder / LOCK).exists()


def test_an_earlier_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text("{}")
    (folder / "priors.pt").write_bytes(b"old")
    with pytest.raises(RunFolderError, match="holds a finished run .*--resume continues it, --overwrite replaces it"):
        with claim_run_folder(folder):
            pass
    assert (folder / "priors.pt").read_bytes() == b"old"  # refused before touching anything
    with claim_run_folder(folder, resume=True):
        assert (folder / "priors.pt").exists()
    with claim_run_folder(folder, overwrite=True):
        assert sorted(p.name for p in folder.iterdir()) == [LOCK]  # no stale file of the old run
        (folder / "results.json").write_text("{}")
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]


def test_an_out_that_cannot_be_a_run_folder_is_refused(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(RunFolderError, match="exists and is not a folder"):
        with claim_run_folder(afile):
            pass
    with pytest.raises(RunFolderError, match="cannot create the run folder"):
        with claim_run_folder(afile / "below"):
            pass
    if os.geteuid() != 0:  # root writes anywhere
        readonly = tmp_path / "readonly"
        readonly.mkdir(mode=0o555)
        with pytest.raises(RunFolderError, match="cannot write in the run folder"):
            with claim_run_folder(readonly):
                pass


def test_a_folder_created_for_a_run_that_wrote_nothing_is_removed(tmp_path):
    folder = tmp_path / "a" / "run"
    with pytest.raises(ValueError):
        with claim_run_folder(folder):
            raise ValueError("the data could not be read")
    assert not folder.exists()
