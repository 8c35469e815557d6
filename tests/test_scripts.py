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
          "--cases", "bigru"], tmp_path)
    report = json.loads(target.read_text())
    [row] = report["results"]
    assert row["case"] == "bigru" and row["tokens_per_s"] > 0 and row["peak_rss_mib"] > 0
