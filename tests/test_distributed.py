"""Data-parallel training under torchrun (2 CPU processes, gloo) against one process on the same
tiny real sets: the BiGRU baseline, VSL-GG-Hier with unlabeled text, and the neural HMM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _run(command, tmp_path: Path) -> None:
    env = {"VSL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]


def _vsl_pair(tmp_path: Path, settings: dict) -> tuple[dict, dict]:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(settings))
    _run([sys.executable, str(SCRIPTS / "run_vsl.py"), "--config", str(config), "--out", str(tmp_path / "one"),
          "--no-progress"], tmp_path)
    _run([*TORCHRUN, str(SCRIPTS / "run_vsl.py"), "--config", str(config), "--out", str(tmp_path / "two"),
          "--no-progress"], tmp_path)
    return tuple(json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))


TINY = {"format": "twitter", "word_dim": 16, "char_dim": 8, "char_hidden": 8, "hidden": 16, "batch_size": 10,
        "lr": 0.01, "max_steps": 60, "eval_every": 20, "patience": None, "skipgram_epochs": 1, "threads": 1}


def test_baseline_on_two_processes_matches_one(tmp_path, twitter_folder):
    one, two = _vsl_pair(tmp_path, {**TINY, "data": str(twitter_folder)})
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert two["replica_spread"] == 0.0  # gradients averaged: the replicas never drift apart
    assert two["data"] == one["data"]  # the whole labeled set, sharded between the ranks
    for split in ("dev", "test"):
        assert abs(two[split]["accuracy"] - one[split]["accuracy"]) < 0.06, (split, one[split], two[split])
    assert two["dev"]["accuracy"] > 0.4  # both learned far beyond the majority tag


def test_vsl_hier_with_unlabeled_text_on_two_processes(tmp_path, twitter_folder):
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(f"tweet number {i} is here :) @user #tag{i % 7}" for i in range(40)) + "\n",
                   encoding="utf-8")
    one, two = _vsl_pair(tmp_path, {**TINY, "data": str(twitter_folder), "latent": "hier", "unlabeled": str(raw),
                                    "y_dim": 4, "z_dim": 6, "decoder_hidden": 8, "unlabeled_batch_size": 10})
    assert two["trained_on_unlabeled"] and two["world_size"] == 2 and two["replica_spread"] == 0.0
    assert abs(two["dev"]["accuracy"] - one["dev"]["accuracy"]) < 0.08, (one["dev"], two["dev"])
    assert not (tmp_path / "two" / "priors.pt").exists()  # each rank held only its shard's priors


def test_neural_hmm_on_two_processes_matches_one(tmp_path, data_root):
    if not (data_root / "ptb" / "wsj_full" / "enw.gold").is_file():
        pytest.skip("wsj is not under the data root (licensed)")
    args = [str(SCRIPTS / "run_hmm.py"), "--data", "wsj", "--data-root", str(data_root), "--max-sentences", "300",
            "--model", "nhmm", "--hidden", "32", "--states", "10", "--epochs", "2", "--batch-size", "64",
            "--lr", "0.01", "--threads", "1", "--no-progress"]
    _run([sys.executable, *args, "--out", str(tmp_path / "one")], tmp_path)
    _run([*TORCHRUN, *args, "--out", str(tmp_path / "two")], tmp_path)
    one, two = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))
    assert two["world_size"] == 2 and two["replica_spread"] == 0.0
    assert abs(two["log_likelihood_per_token"] - one["log_likelihood_per_token"]) < 0.1, (one, two)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_a_gpu_without_one_is_a_clear_error_in_one_process_too():
    from vsl.distributed import join
    from vsl.errors import VslError

    with pytest.raises(VslError, match="--device cuda was asked for, but no GPU is visible"):
        join("cuda")
