"""The folder a training run writes: checked before any heavy work and locked while the run writes.

One folder holds one run. Two processes writing the same folder would leave a mixture of two runs
(the config of one, the weights of the other), and a new run over an earlier one would leave the
earlier run's files beside its own; :func:`claim_run_folder` refuses both. The lock is an
advisory ``flock`` on ``OUT/.lock``, which holds the writer's process id while it runs and is
removed when it ends; the kernel releases it when the process dies, so a killed run leaves no
stale lock. The folder's state is read here too: whether its run finished, which checkpoint a
stopped run continues from, and how far it has trained, in words.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vsl.checkpoint import LAST, RESULTS, CheckpointError, RunMetadata, load_metadata, load_tensors
from vsl.errors import VslError

LOCK = ".lock"
PROBES = "probes.pt"  # a probing neural HMM's checkpoint until its probes end (then LAST)


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


def run_finished(directory: str | Path) -> bool:
    """Whether the run in ``directory`` ended on its own: it wrote its results and was not
    stopped early (a VSL run stopped on request still writes results that say ``interrupted``)."""
    results = Path(directory) / RESULTS
    return results.is_file() and not json.loads(results.read_text()).get("interrupted")


def resume_checkpoint(directory: str | Path) -> str:
    """The checkpoint that a stopped run in ``directory`` continues from: ``probes.pt`` while a
    neural HMM is still probing (it has no ``last.pt`` yet), else ``last.pt``."""
    probing = not (Path(directory) / LAST).is_file() and (Path(directory) / PROBES).is_file()
    return PROBES if probing else LAST


def has_training_state(directory: str | Path) -> bool:
    """Whether the run in ``directory`` left a state to continue from: a training checkpoint,
    or a neural HMM's probing so far."""
    return (Path(directory) / resume_checkpoint(directory)).is_file()


def load_resumable(directory: str | Path, family: str) -> RunMetadata:
    """The metadata of a ``family`` run in ``directory`` that left a state to continue from."""
    metadata = load_metadata(directory, family)
    if not has_training_state(directory):
        raise CheckpointError(f"{directory}: no {family} training checkpoint ({LAST} or {PROBES}) to resume from")
    return metadata


def resume_settings(directory: str | Path, settings, family: str):
    """The saved settings of the stopped ``family`` run in ``directory``, read as ``settings``
    (a :class:`~vsl.config.Settings` class) reads them: what resuming the run takes."""
    metadata = load_resumable(directory, family)
    return settings.from_saved(metadata.config, str(Path(directory) / "config.json"))


def describe_progress(family: str, config: dict, trainer: dict) -> str:
    """How far a run of ``family`` with settings ``config`` has trained, in words, from the
    training counters of its checkpoint: a neural HMM's epoch, the minibatches done in it and
    the per-token log-likelihood of each finished epoch; a VSL run's step."""
    if family == "vsl":
        return f"at step {trainer['step']:,} of at most {config['max_steps']:,}"
    epochs = config["epochs"]
    if trainer["epoch"] >= epochs:
        return f"all {epochs} epochs trained; tagging and scoring left"
    finished = ", ".join(f"{value:.4f}" for value in trainer["history"])
    return (f"in epoch {trainer['epoch'] + 1} of {epochs} after minibatch {trainer['batch']}"
            + (f" (log-likelihood per token of the epochs done: {finished})" if finished else ""))


def describe_probing(config: dict, probing: dict) -> str:
    """How far the probes of a neural HMM with settings ``config`` have got, in words, from its
    probing checkpoint: the probe in progress, the minibatches done in it and the per-token
    log-likelihood of each finished probe."""
    scores, current = probing["scores"], probing["current"]
    done = ", ".join(f"{value:.4f}" for value in scores)
    return (f"in probe {len(scores) + 1} of {config['probes']}"
            + (f" after minibatch {current['trainer']['batch']}" if current is not None else "")
            + (f" (log-likelihood per token of the probes done: {done})" if done else ""))


def training_progress(directory: str | Path) -> str:
    """:func:`describe_progress` (or, before the probes end, :func:`describe_probing`) of the
    stopped run in ``directory``, read from its ``config.json`` and checkpoint; a folder without
    them readable is a CheckpointError."""
    metadata = load_metadata(directory)
    if resume_checkpoint(directory) == PROBES:
        return describe_probing(metadata.config, load_tensors(Path(directory) / PROBES))
    trainer = load_tensors(Path(directory) / LAST).get("trainer")
    if not isinstance(trainer, dict):
        raise CheckpointError(f"{Path(directory) / LAST}: holds no training counters")
    return describe_progress(metadata.family, metadata.config, trainer)
