"""The folder a training run writes: checked before any heavy work and locked while the run writes.

One folder holds one run. Two processes writing the same folder would leave a mixture of two runs
(the config of one, the weights of the other), and a new run over an earlier one would leave the
earlier run's files beside its own; :func:`claim_run_folder` refuses both. The lock is an
advisory ``flock`` on ``OUT/.lock``, which holds the writer's process id while it runs and is
removed when it ends; the kernel releases it when the process dies, so a killed run leaves no
stale lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vsl.checkpoint import RESULTS
from vsl.errors import VslError

LOCK = ".lock"


class RunFolderError(VslError):
    """A run folder that this run cannot write: not creatable, busy, or holding another run."""


def _open_locked(lock_path: Path):
    """``lock_path`` opened and exclusively locked, or a RunFolderError naming the holder's pid.
    Retries when the file it locked was removed meanwhile by a holder that just finished."""
    while True:
        try:
            handle = open(lock_path, "a+", encoding="utf-8")
        except OSError as err:
            raise RunFolderError(f"{lock_path.parent}: cannot write in the run folder ({err.strerror})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderError(f"{lock_path.parent}: another run is writing this folder (pid {holder}); "
                                 "wait for it to end or choose another --out") from None
        try:
            same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # the previous holder removed the file between our open and our lock


def run_folder_busy(directory: str | Path) -> bool:
    """Whether a process is writing the run folder ``directory`` now (holds its lock)."""
    try:
        handle = open(Path(directory) / LOCK, encoding="utf-8")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _clear(directory: Path) -> None:
    """Remove everything in ``directory`` but the lock."""
    for path in directory.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextmanager
def claim_run_folder(directory: str | Path, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """Create and lock ``directory`` for one run, for the duration of the ``with`` block.

    A folder that already holds files is refused unless the run continues it (``resume``) or
    replaces it (``overwrite``, which empties it first); a folder that another process is
    writing is refused naming that process; a path that is a file, or cannot be created or
    written, is refused. Each refusal is a :class:`RunFolderError` raised before anything is
    written; a folder this call created is removed again if the run wrote nothing into it.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunFolderError(f"{directory}: exists and is not a folder; choose another --out")
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"{directory}: cannot create the run folder ({err.strerror})") from None
    lock_path = directory / LOCK
    handle = _open_locked(lock_path)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        earlier = [path.name for path in directory.iterdir() if path.name != LOCK]
        if earlier and not resume:
            if not overwrite:
                what = "a finished run" if RESULTS in earlier else "an earlier run's files"
                raise RunFolderError(f"{directory}: holds {what} ({', '.join(sorted(earlier)[:4])}"
                                     f"{', ...' if len(earlier) > 4 else ''}); --resume continues it, "
                                     "--overwrite replaces it")
            _clear(directory)
        yield directory
    finally:
        try:
            lock_path.unlink()
        except FileNotFoundError:
            pass
        handle.close()
        if created and not any(directory.iterdir()):  # refused or failed before writing anything
            directory.rmdir()
