"""Shared fixtures: small real slices of the datasets under the data root."""

from __future__ import annotations

import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch

from vsl.data.batching import Collator
from vsl.data.readers import read_twitter
from vsl.data.registry import find_data_root
from vsl.data.vocab import build_vocabularies

# The test models are tiny: one thread is fastest for them and cannot oversubscribe the CPU
# when several test or training processes share it.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_root():
    return find_data_root().resolve()


@pytest.fixture(scope="session")
def twitter_slice(data_root):
    """The first 40 tweets of oct27.traindev and the first 20 of oct27.test."""
    train = read_twitter(data_root / "twitter_pos" / "oct27.traindev")[:40]
    dev = read_twitter(data_root / "twitter_pos" / "oct27.test")[:20]
    return train, dev


@pytest.fixture(scope="session")
def twitter_collator(twitter_slice):
    train, dev = twitter_slice
    with warnings.catch_warnings():  # 40 training tweets lack a few tags of the 20 dev tweets: known
        warnings.simplefilter("ignore", UserWarning)
        return Collator(build_vocabularies(train, evaluation=dev))


@pytest.fixture
def twitter_folder(tmp_path, data_root):
    """A folder dataset in the ark format cut from the real files (train 60, dev/test 30 tweets)."""
    folder = tmp_path / "twitter_slice"
    folder.mkdir()
    for source, target, n in (("oct27.traindev", "slice.train", 60), ("oct27.test", "slice.dev", 30),
                              ("daily547.conll", "slice.test", 30)):
        blocks = (data_root / "twitter_pos" / source).read_text(encoding="utf-8").split("\n\n")[:n]
        (folder / target).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return folder


def _kill_after_first_checkpoint(command: list[str], run_dir: Path, **popen) -> None:
    """Start ``command`` (a training that writes ``run_dir/last.pt``), SIGKILL it as soon as its
    first checkpoint exists, and check it died unfinished (no results.json)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    deadline = time.time() + 240
    while not (run_dir / "last.pt").exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL and not (run_dir / "results.json").exists()


@pytest.fixture
def kill_after_first_checkpoint():
    """The function that SIGKILLs a training run right after its first checkpoint."""
    return _kill_after_first_checkpoint
