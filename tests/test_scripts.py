"""Smoke tests of the demo and benchmark scripts with tiny settings on real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(args, tmp_path, timeout=300):
    env = {**os.environ, "VSL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_prints_a_results_table(tmp_path, twitter_folder):
    out = _run([SCRIPTS / "demo.py", "--data", twitter_folder, "--format", "twitter", "--max-steps", "4",
                "--out", tmp_path / "demo"], tmp_path)
    rows = [line for line in out.splitlines() if line.startswith(("BiGRU baseline", "VSL-GG-Hier"))]
    assert len(rows) == 2 and [len(row.split()) for row in rows] == [5, 4]
    for latent in ("none", "hier"):
        assert (tmp_path / "demo" / latent / "results.json").is_file()


def test_bench_writes_json(tmp_path):
    target = tmp_path / "bench.json"
    _run([SCRIPTS / "bench.py", "--out", target, "--steps", "2", "--warmup", "1", "--threads", "1",
          "--cases", "bigru", "hmm-ours-scaled", "hmm-pyro-discrete-hmm"], tmp_path)
    report = json.loads(target.read_text())
    bigru, ours, pyro = report["results"]
    assert bigru["case"] == "bigru" and bigru["tokens_per_s"] > 0 and bigru["peak_rss_mib"] > 0
    assert ours["max_posterior_difference"] < 1e-4 and pyro["max_posterior_difference"] < 1e-3
    assert report["speedups"]["hmm-scaled-over-pyro@1"] == round(ours["tokens_per_s"] / pyro["tokens_per_s"], 1)
