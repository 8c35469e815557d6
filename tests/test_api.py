"""The public API: ``vsl.training`` writes a run folder from a file, a mapping or a config object;
``vsl.load_tagger`` loads a run of either family, tags token lists and scores gold-tagged data
the way the family is scored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hmm
import vsl
from hmm.config import HmmConfig
from vsl.data.readers import READERS
from vsl.errors import VslError
from vsl.metrics import cluster_scores

SMALL = {"word_dim": 16, "char_dim": 8, "char_hidden": 8, "hidden": 16, "max_steps": 20, "eval_every": 10,
         "skipgram_epochs": 1, "format": "twitter"}


def test_train_from_a_file_then_tag_and_evaluate(tmp_path, twitter_folder):
    settings = tmp_path / "small.yaml"
    settings.write_text("".join(f"{k}: {v}\n" for k, v in {**SMALL, "data": str(twitter_folder)}.items()))
    folder = vsl.train(settings, tmp_path / "run", progress=False, latent="hier", max_steps=12)
    results = json.loads((folder / "results.json").read_text())
    assert results["model"] == "vsl-hier" and results["steps"] == 12  # the override won over the file

    tagger = vsl.load_tagger(folder)
    assert tagger.family == "vsl" and tagger.task == "pos"
    tags = tagger.tag([["I", "love", "it"], [], ["ok"]])
    known = set(json.loads((folder / "vocab.json").read_text())["tags"]["items"])
    assert [len(t) for t in tags] == [3, 0, 1] and {t for row in tags for t in row} <= known
    # the dataset's test split, scored here, is the test score the run recorded
    assert tagger.evaluate(str(twitter_folder), split="test") == pytest.approx(results["test"])
    test = READERS["twitter"](next(twitter_folder.glob("*test*")))
    pairs = [(s.words, s.tags) for s in test]
    assert tagger.evaluate(pairs) == pytest.approx(results["test"])
    with pytest.raises(VslError, match="sentence 1 to evaluate has no tag for every word"):
        tagger.evaluate([(("a", "b"), ("N",))])
    with pytest.raises(VslError, match="split 'valid' is not one of"):
        tagger.evaluate(str(twitter_folder), split="valid")

    with pytest.raises(VslError, match="give config=None"):
        vsl.train(settings, folder, resume=True)
    assert vsl.train(None, folder, resume=True, progress=False) == folder  # a finished run: scored again
    assert json.loads((folder / "results.json").read_text())["test"] == pytest.approx(results["test"])

    # the same through the installed command
    done = _vsl("evaluate", "--model", folder, "--data", twitter_folder, "--split", "test")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == pytest.approx(results["test"])
    from_file = _vsl("evaluate", "--model", folder, "--file", next(twitter_folder.glob("*test*")),
                     "--file-format", "twitter")
    assert from_file.returncode == 0 and json.loads(from_file.stdout) == pytest.approx(results["test"])
    refused = _vsl("evaluate", "--model", folder, "--data", twitter_folder, "--batch-size", "0")
    assert refused.returncode == 2 and "error: batch_size must be positive" in refused.stderr


def _vsl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsl.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_the_vsl_command_lists_and_dispatches_its_commands():
    listing = _vsl("--help")
    assert listing.returncode == 0 and all(f"  {name} " in listing.stdout for name in ("train", "tag", "induce", "bench"))
    unknown = _vsl("trian")
    assert unknown.returncode == 2 and "error: unknown command 'trian'" in unknown.stderr
    helped = _vsl("train", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: vsl train") and "(default: 30000)" in helped.stdout


def test_train_and_load_an_hmm_from_a_mapping(tmp_path, twitter_folder):
    folder = vsl.train({"data": str(twitter_folder), "format": "twitter", "model": "hmm", "states": 4, "epochs": 2},
                       tmp_path / "hmm", progress=False)
    tagger = vsl.load_tagger(folder)
    assert tagger.family == "hmm"
    test = READERS["twitter"](next(twitter_folder.glob("*test*")))
    states = [line.split() for line in (folder / "tags.txt").read_text().splitlines()]
    assert tagger.tag([s.words for s in test]) == states  # Viterbi states, as the run wrote them
    assert tagger.evaluate(test) == pytest.approx(cluster_scores([list(s.tags) for s in test], states))


def test_train_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(VslError, match="unknown settings: max_stepz"):
        vsl.train(HmmConfig(), tmp_path / "x", max_stepz=3)
    with pytest.raises(VslError, match="takes a RunConfig"):
        vsl.train(42, tmp_path / "x")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(VslError, match="a config must be a mapping"):
        vsl.train(listed, tmp_path / "x")
    with pytest.raises(VslError, match="config.json: missing"):
        vsl.load_tagger(tmp_path / "nowhere")


def test_the_hmm_package_exports_its_models():
    assert hmm.NeuralHMM.__name__ == "NeuralHMM" and hmm.CategoricalHMM.__name__ == "CategoricalHMM"
    assert callable(hmm.inference.viterbi)
    with pytest.raises(AttributeError):
        hmm.nothing  # noqa: B018
