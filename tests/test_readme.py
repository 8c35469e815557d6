"""README's Python example, run as written: the data root is a small cut of the real Twitter
files under their real names (and of the raw text the example's config names), so the
example's own config file, `vsl.train`, `tag` and `evaluate("twitter")` run unchanged."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "README has one Python example"
    return blocks[0]


def first_lines(path: Path, n: int, separator: str = "\n") -> str:
    return separator.join(path.read_text(encoding="utf-8").split(separator)[:n]) + "\n"


def small_data_root(root: Path, data_root: Path, vector_text: list[str]) -> None:
    """Twitter POS (60 / 30 / 30 tweets), 200 raw tweets and 100 lines of each vector_text file."""
    for name, n in (("oct27.traindev", 60), ("oct27.test", 30), ("daily547.conll", 30)):
        target = root / "twitter_pos" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(first_lines(data_root / "twitter_pos" / name, n, "\n\n"), encoding="utf-8")
    raw = "twitter_unlabeled/tweeteval/emoji/train_text.txt"
    for name, n in ((raw, 200), *((source, 100) for source in vector_text)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(first_lines(data_root / name, n), encoding="utf-8")


def test_readme_python_example_runs_as_written(tmp_path, data_root):
    code = readme_python_example()
    config_path, out = re.search(r'vsl\.train\("([^"]+)", "([^"]+)"', code).groups()
    work = tmp_path / "work"
    (work / config_path).parent.mkdir(parents=True)
    shutil.copy(REPO / config_path, work / config_path)
    small_data_root(tmp_path / "data", data_root, yaml.safe_load((REPO / config_path).read_text())["vector_text"])
    env = {**os.environ, "VSL_DATA_ROOT": str(tmp_path / "data"), "VSL_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    printed = done.stdout.strip().splitlines()[-2:]
    tags, scores = ast.literal_eval(printed[0]), ast.literal_eval(printed[1])
    folder = work / out
    results = json.loads((folder / "results.json").read_text())
    known = set(json.loads((folder / "vocab.json").read_text())["tags"]["items"])
    assert len(tags) == 1 and len(tags[0]) == 4 and set(tags[0]) <= known  # one tag per token
    assert results["model"] == "vsl-hier" and results["steps"] == 300
    assert scores == pytest.approx(results["test"]) and 0 < scores["accuracy"] <= 1  # the run's own test score
