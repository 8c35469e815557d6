"""Ordinary mistakes on the command line end in one `error: ...` line and exit status 2, before
any data, model or vector is loaded, and never in a traceback or a destroyed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _refused(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("script", ["run_vsl.py", "run_hmm.py"])
@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "seed must be in 0..4294967295; got -1"),
    (["--seed", str(2**32)], "seed must be in 0..4294967295; got 4294967296"),
    (["--threads", "0"], "threads must be positive"),
    (["--device", "gpu"], "device 'gpu' is not one of cpu, cuda, cuda:N"),
])
def test_training_scripts_refuse_placement_mistakes_before_reading_data(tmp_path, script, args, message):
    """The data root does not exist: the mistake must be named before any dataset is looked for."""
    stderr = _refused(script, "--data", "twitter", "--data-root", str(tmp_path / "none"),
                      "--out", str(tmp_path / "o"), *args)
    assert f"error: {message}" in stderr
    assert not (tmp_path / "o").exists()


def test_data_stats_refuses_a_negative_seed(tmp_path):
    assert "error: seed must be in 0..4294967295; got -1" in _refused(
        "data_stats.py", "--data", "twitter", "--data-root", str(tmp_path), "--seed", "-1")


@pytest.mark.parametrize("args, message", [
    (["--chunk", "0"], "chunk must be positive; got 0"),
    (["--batch-size", "0"], "batch_size must be positive; got 0"),
    (["--device", "gpu"], "device 'gpu' is not one of"),
])
def test_tag_refuses_settings_that_would_tag_nothing(tmp_path, args, message):
    text = tmp_path / "in.txt"
    text.write_text("a b c\n")
    stderr = _refused("tag.py", "--model", str(tmp_path / "no-model"), "--input", str(text), *args)
    assert f"error: {message}" in stderr


def test_tag_refuses_to_write_over_its_input(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("a b c\n")
    stderr = _refused("tag.py", "--model", str(tmp_path / "no-model"), "--input", str(text),
                      "--output", str(tmp_path / "." / "in.txt"))
    assert "is the input file" in stderr
    assert text.read_text() == "a b c\n"
