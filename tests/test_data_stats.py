"""Tests of `vsl data-stats` (vsl/commands/data_stats.py, scripts/data_stats.py) against the counts
in shared/data/README.md."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsl.commands import data_stats

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
SCRIPT = REPO_ROOT / "scripts" / "data_stats.py"


@functools.cache
def stats(name: str) -> dict:
    """dataset_stats of a named dataset (computed once per test session)."""
    return data_stats.dataset_stats(name, data_root=DATA)


@pytest.fixture(scope="module")
def twitter_stats():
    env = {k: v for k, v in os.environ.items() if k != "VSL_DATA_ROOT"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", "twitter"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_script_twitter_splits(twitter_stats):
    assert twitter_stats["dataset"] == "twitter"
    assert twitter_stats["task"] == "pos"
    assert twitter_stats["train"] == {"sentences": 1327, "tokens": 19442, "tags": 25}
    assert twitter_stats["dev"] == {"sentences": 500, "tokens": 7152, "tags": 23}
    assert twitter_stats["test"] == {"sentences": 547, "tokens": 7707, "tags": 25}
    files = {split: Path(path).name for split, path in twitter_stats["files"].items()}
    assert files == {"train": "oct27.traindev", "dev": "oct27.test", "test": "daily547.conll"}


def test_script_twitter_raw_and_split(twitter_stats):
    assert twitter_stats["raw"]["sentences"] == 50000
    assert "tags" not in twitter_stats["raw"]
    split = twitter_stats["split"]
    assert split["seed"] == 0
    # Twitter: all of train labeled; the unlabeled part is the raw tweets only.
    assert split["labeled"] == {"sentences": 1327, "tokens": 19442, "tags": 25}
    assert split["unlabeled_from_train"] == 0
    assert split["unlabeled"] == {"sentences": 50000, "tokens": twitter_stats["raw"]["tokens"]}


def test_script_rejects_unknown_dataset():
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", "no-such-corpus", "--data-root", str(DATA)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: " in done.stderr and "no-such-corpus" in done.stderr and "Traceback" not in done.stderr


def test_conll2003_stats():
    result = stats("conll2003")
    assert result["task"] == "ner"
    assert result["train"] == {"sentences": 14041, "tokens": 203621, "tags": 17}
    assert result["dev"]["sentences"] == 3250 and result["dev"]["tokens"] == 51362
    assert result["test"]["sentences"] == 3453 and result["test"]["tokens"] == 46435
    assert "raw" not in result


def test_conll2003_default_split():
    split = stats("conll2003")["split"]
    assert split["labeled"]["sentences"] == 1404  # round(10% of 14,041)
    assert split["unlabeled"]["sentences"] == 7020  # 50% of 14,041, as len(train) // 2
    assert split["unlabeled_from_train"] == 7020
    assert "tags" not in split["unlabeled"]


def test_wsj_stats():
    result = stats("wsj")
    expected = {"sentences": 49208, "tokens": 1173766, "tags": 45}
    assert result["train"] == result["dev"] == result["test"] == expected
    assert result["split"]["labeled"] == expected
    assert result["split"]["unlabeled"]["sentences"] == 0


def test_ewt_stats():
    result = stats("ud/English-EWT@r2.16")
    assert result["dataset"] == "ud/UD_English-EWT@r2.16"
    assert result["train"] == {"sentences": 12544, "tokens": 204577, "tags": 17}
    assert (result["dev"]["sentences"], result["dev"]["tokens"]) == (2001, 25147)
    assert (result["test"]["sentences"], result["test"]["tokens"]) == (2077, 25094)


def test_ewt_default_split():
    split = stats("ud/English-EWT@r2.16")["split"]
    assert split["labeled"]["sentences"] == 2509  # round(20% of 12,544)
    assert split["unlabeled"]["sentences"] == 6272  # 50% of 12,544
    assert split["unlabeled_from_train"] == 6272


def test_split_fractions_and_seed_are_passed_through():
    module = data_stats
    a = module.dataset_stats("ud/English-EWT@r2.16", data_root=DATA, labeled_fraction=0.5,
                             unlabeled_fraction=0.25, seed=3)
    assert a["split"]["seed"] == 3
    assert a["split"]["labeled"]["sentences"] == 6272
    assert a["split"]["unlabeled"]["sentences"] == 3136
