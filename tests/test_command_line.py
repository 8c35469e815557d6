"""The command line: ``--help`` shows every default, and ordinary mistakes end in one
`error: ...` line and exit status 2, before any data, model or vector is loaded, and never in a
traceback or a destroyed file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.parametrize("script, shown", [
    ("run_vsl.py", [r"--max-steps MAX_STEPS\n *\(default: 30000\)", r"--decoder .*\n.*\n.*\(default: tied\)"]),
    ("run_hmm.py", [r"--states STATES +number of hidden states \(default: 45\)"]),
    ("tag.py", [r"sentences read and tagged at a time \(default: 1024\)"]),
    ("reproduce.py", [r"--seeds SEEDS +seeds 0..N-1 \(default: 3\)"]),
])
def test_help_shows_the_defaults(script, shown):
    done = subprocess.run([sys.executable, str(SCRIPTS / script), "--help"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0
    for pattern in shown:
        assert re.search(pattern, done.stdout), (pattern, done.stdout)


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


@pytest.mark.parametrize("script", ["run_vsl.py", "run_hmm.py"])
@pytest.mark.parametrize("text, message", [
    ("a: [1\n", "cannot read config"),
    ("no_such_setting: 1\n", "unknown settings no_such_setting"),
    ("seed: \"x\"\n", "setting seed must be an integer; got 'x'"),
    (None, "cannot read config"),
])
def test_a_bad_config_file_is_named_in_one_line(tmp_path, script, text, message):
    config = tmp_path / "c.yaml"
    if text is not None:
        config.write_text(text)
    stderr = _refused(script, "--config", str(config), "--data-root", str(tmp_path), "--out", str(tmp_path / "o"))
    assert f"error: {config}: {message}" in stderr


def test_an_unknown_dataset_format_names_the_formats(tmp_path):
    stderr = _refused("run_vsl.py", "--data", str(tmp_path), "--format", "xml", "--out", str(tmp_path / "o"))
    assert "error: format 'xml' is not one of conllu, twitter, conll2003, ptb" in stderr


@pytest.mark.parametrize("metadata, message", [
    ("[1, 2]", "not a run's metadata"),
    ('{"format": 1, "family": "vsl", "tokenizer": "klingon", "config": {}}', "tokenizer 'klingon' is not one of"),
    ('{"format": 1, "family": "vsl", "tokenizer": "tweet", "config": {"max_steps": "x"}}',
     "setting max_steps must be an integer"),
])
def test_a_crafted_run_folder_is_refused_by_tag_and_resume(tmp_path, metadata, message):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(metadata)
    (run / "vocab.json").write_text('{"words": {"items": []}, "chars": {"items": []}, "tags": {"items": []}}')
    (run / "last.pt").write_bytes(b"")
    text = tmp_path / "in.txt"
    text.write_text("a b\n")
    assert message in _refused("tag.py", "--model", str(run), "--input", str(text))
    assert message in _refused("run_vsl.py", "--resume", str(run))
