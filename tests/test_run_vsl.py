"""Smoke test of scripts/run_vsl.py on a small real slice, and reproducibility from the saved
config."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vsl import recipe
from vsl.checkpoint import PRIORS, load_model, load_tensors, read_training_checkpoint
from vsl.config import RunConfig
from vsl.data.splits import LabeledSplit
from vsl.errors import SettingError, VslError
from vsl.recipe import (build_model, build_objective, check_config, prepare_data, set_up_training, warm_start,
                            word_vectors)
from vsl.latent import PriorStore
from vsl.provenance import SEGMENTS, code_version, describe_code, record_segment, run_source
from vsl.optimization import StopRequest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_vsl.py"


def _run(args, env_cache: Path):
    env = {"VSL_CACHE_DIR": str(env_cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--no-progress"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_run_vsl_baseline_writes_results_and_model_and_reproduces(tmp_path, twitter_folder):
    data = twitter_folder
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(data), "format": "twitter", "latent": "none", "word_dim": 16, "char_dim": 8,
        "char_hidden": 8, "hidden": 16, "max_steps": 30, "eval_every": 10, "batch_size": 10,
        "skipgram_epochs": 1, "threads": 1}))
    out = tmp_path / "run"
    done = _run(["--config", str(config), "--out", str(out), "--seed", "3"], tmp_path / "cache")
    assert re.search(r"^data: .*labeled 60 sentences \([0-9,]+ tokens\)", done.stderr, re.M)
    assert re.search(r"^vectors: skip-gram \(1 epochs\) on [0-9,]+ sentences", done.stderr, re.M)
    assert re.search(r"^vectors: [0-9,]+ words trained in [0-9]+ s, cached at ", done.stderr, re.M)
    assert re.search(r"^vocabulary: [0-9,]+ words \([0-9,]+ with a vector\), [0-9,]+ characters, [0-9]+ tags$",
                     done.stderr, re.M)
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 3 and results["config"]["seed"] == 3
    assert (results["commit"] or "").endswith("+dirty") == bool(results["changed_files"])
    for split in ("dev", "test"):
        assert 0.0 <= results[split]["accuracy"] <= 1.0
    assert results["data"]["labeled"] == {"sentences": 60, "tokens": results["data"]["labeled"]["tokens"]}
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20, 30]
    weights, saved_config, vocabs = load_model(out)
    assert saved_config["max_steps"] == 30 and len(vocabs["tags"]["items"]) > 0

    refused = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "holds a finished run" in refused.stderr, refused.stderr
    assert json.loads((out / "results.json").read_text()) == results

    again = tmp_path / "again"
    done = _run(["--config", str(out / "config.json"), "--out", str(again)], tmp_path / "cache")
    assert re.search(r"^vectors: loaded from the cache, ", done.stderr, re.M)
    repeated = json.loads((again / "results.json").read_text())
    assert repeated["dev"] == results["dev"] and repeated["test"] == results["test"]


def test_code_version_names_the_files_that_differ_from_the_commit(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)
    git("init", "-q")
    (tmp_path / "kept.py").write_text("a = 1\n")
    (tmp_path / "edited.py").write_text("b = 1\n")
    git("add", "kept.py", "edited.py")
    git("commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "untracked.py").write_text("c = 1\n")  # untracked files are not part of the code version
    assert code_version(tmp_path) == {"commit": head, "changed_files": []}
    (tmp_path / "edited.py").write_text("b = 2\n")
    assert code_version(tmp_path) == {"commit": head + "+dirty", "changed_files": ["edited.py"]}


def test_a_run_source_names_the_code_and_the_device_its_run_recorded():
    recorded_early = run_source("runs/a", {"command": "c", "seed": 1, "commit": "abc"})  # before files and devices
    assert recorded_early == {"run": "runs/a", "command": "c", "seed": 1, "commit": "abc", "changed_files": [],
                              "device": None, "interrupted": False}
    assert describe_code(recorded_early) == "commit `abc`"
    assert describe_code(run_source("runs/b", {"commit": "abc", "config": {"device": "cpu"}})) == "commit `abc`"
    dirty_on_gpu = run_source("runs/c", {"commit": "abc+dirty", "changed_files": ["README.md", "x.py"],
                                         "config": {"device": "cuda"}, "interrupted": True})
    assert dirty_on_gpu["interrupted"]
    assert describe_code(dirty_on_gpu) == "commit `abc+dirty`, with changes to README.md, x.py, on cuda"


def test_a_resumed_run_names_the_code_of_every_segment(tmp_path):
    first = {"commit": "a" * 40, "changed_files": []}
    assert record_segment(tmp_path, first, "scripts/run_vsl.py --out x", "cpu", resume=False) == [
        {**first, "command": "scripts/run_vsl.py --out x", "device": "cpu"}]
    second = {"commit": "b" * 40 + "+dirty", "changed_files": ["README.md"]}
    segments = record_segment(tmp_path, second, "scripts/run_vsl.py --resume x", "cuda", resume=True)
    assert [s["commit"] for s in segments] == ["a" * 40, "b" * 40 + "+dirty"]
    assert json.loads((tmp_path / SEGMENTS).read_text()) == segments
    source = run_source("x", {**segments[-1], "config": {"device": "cuda"}, "segments": segments})
    assert describe_code(source) == (f"commit `{'b' * 40}+dirty`, with changes to README.md, on cuda; "
                                     f"earlier segment: commit `{'a' * 40}`")
    assert record_segment(tmp_path, first, "c", "cpu", resume=False) == [{**first, "command": "c", "device": "cpu"}]

    untracked = tmp_path / "before_segments_were_kept"  # resumed from a folder without the file
    untracked.mkdir()
    segments = record_segment(untracked, first, "c", "cpu", resume=True)
    assert [s["commit"] for s in segments] == [None, "a" * 40]
    assert describe_code(run_source("y", {**first, "segments": segments})) == (
        f"commit `{'a' * 40}`; earlier segment: code not recorded")
    (untracked / SEGMENTS).write_text('{"commit": "a"}')
    with pytest.raises(VslError, match=f"{SEGMENTS}: cannot read the run's segments"):
        record_segment(untracked, first, "c", "cpu", resume=True)
    (untracked / SEGMENTS).write_text('[{"commit": "a"}')
    with pytest.raises(VslError, match=f"{SEGMENTS}: damaged JSON"):
        record_segment(untracked, first, "c", "cpu", resume=True)


def test_run_vsl_reports_a_missing_dataset_clearly(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", "ud/Klingon-XYZ", "--data-root",
                           str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Klingon" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--alpha", "0"], "alpha must be positive"),
    (["--unlabeled-weight", "-0.1"], "unlabeled_weight must be positive"),
    (["--batch-size", "0"], "batch_size must be positive"),
    (["--unlabeled-limit", "-5"], "unlabeled_limit must be >= 0"),
    (["--dropout", "1"], "dropout must be in [0, 1)"),
    (["--patience", "0"], "patience must be positive"),
    (["--kl-rate", "0"], "kl_rate must be positive"),
    (["--decoded-words", "1"], "decoded_words must be 0"),
    (["--latent", "gauss", "--classifier-on", "y"], "classifier_on y: VSL-G"),
])
def test_run_vsl_refuses_unusable_settings_before_reading_data(tmp_path, args, message):
    """The data root is empty: the setting must be refused before any dataset is looked for."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", "twitter", "--latent", "hier", *args,
                           "--data-root", str(tmp_path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"error: {message}" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("script", ["run_vsl.py", "run_hmm.py"])
def test_an_unusable_out_is_refused_before_reading_data(tmp_path, script):
    """The data root is empty: --out must be refused before any dataset is looked for."""
    afile = tmp_path / "file"
    afile.write_text("x")
    done = subprocess.run([sys.executable, str(SCRIPT.with_name(script)), "--data", "twitter",
                           "--data-root", str(tmp_path / "empty"), "--out", str(afile)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"error: {afile}: exists and is not a folder" in done.stderr and "Traceback" not in done.stderr


def test_run_vsl_hier_with_unlabeled_text_file(tmp_path, twitter_folder, monkeypatch):
    raw = tmp_path / "raw.txt"
    raw.write_text("so happy today @user :)\nwho is going to the game tonight ?\n\nlol ok\n", encoding="utf-8")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(twitter_folder), "format": "twitter", "latent": "hier", "unlabeled": str(raw),
        "word_dim": 16, "char_dim": 8, "char_hidden": 8, "hidden": 16, "y_dim": 4, "z_dim": 6,
        "decoder_hidden": 8, "max_steps": 6, "eval_every": 3, "unlabeled_batch_size": 2,
        "skipgram_epochs": 1, "threads": 1, "prior_storage": "disk"}))
    out = tmp_path / "r0"  # seed 0's run, which "r{seed}" names below
    _run(["--config", str(config), "--out", str(out)], tmp_path / "cache")
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "vsl-hier" and results["trained_on_unlabeled"]
    assert results["data"]["unlabeled"]["sentences"] == 3
    assert 0.0 <= results["test"]["accuracy"] <= 1.0
    snapshot = load_tensors(out / "last.pt")["priors"]["unlabeled"]["z"]["mean"]["snapshot"]
    assert snapshot == "unlabeled-z.mean.step6.float16" and (out / PRIORS / snapshot).is_file()

    # prior pre-training warm start: continue from the run's weights and priors (on disk there,
    # in memory here) with a larger alpha
    warm = tmp_path / "warm"
    _run(["--config", str(config), "--out", str(warm), "--init-from", str(tmp_path / "r{seed}"), "--alpha", "2",
          "--decoder-precision", "bfloat16", "--prior-storage", "memory"], tmp_path / "cache")
    warm_config = json.loads((warm / "results.json").read_text())["config"]
    assert warm_config["init_from"] == str(tmp_path / "r{seed}") and warm_config["decoder_precision"] == "bfloat16"
    assert warm_config["prior_storage"] == "memory" and not (warm / PRIORS).exists()
    monkeypatch.setenv("VSL_CACHE_DIR", str(tmp_path / "cache"))
    setup = set_up_training(RunConfig.load(out / "config.json"))
    warm_start(setup.objective, out, setup.data.vocabs)  # the priors come from the run's last.pt
    saved, loaded = read_training_checkpoint(out / "last.pt")["priors"], setup.objective.prior_state()
    assert saved.keys() == loaded.keys() == {"labeled", "unlabeled"}
    assert all(torch.equal(saved[part][name][key], loaded[part][name][key])
               for part in saved for name in saved[part] for key in saved[part][name])
    assert int(loaded["unlabeled"]["y"]["visits"].sum()) > 0
    # a labeled-only run's priors start a run with unlabeled data: its unlabeled priors start fresh
    labeled_only = {"labeled": saved["labeled"]}
    fresh = set_up_training(RunConfig.load(out / "config.json")).objective
    with pytest.raises(ValueError, match="no unlabeled store"):
        fresh.load_prior_state(labeled_only)
    fresh.load_prior_state(labeled_only, missing_ok=True)
    started = fresh.prior_state()
    assert all(torch.equal(saved["labeled"][name][key], started["labeled"][name][key])
               for name in saved["labeled"] for key in saved["labeled"][name])
    assert int(started["unlabeled"]["y"]["visits"].sum()) == 0
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("latent: hier", "latent: flat"))
    done = subprocess.run([sys.executable, str(SCRIPT), "--config", str(other), "--out", str(tmp_path / "x"),
                           "--init-from", str(out), "--no-progress"], capture_output=True, text=True,
                          env={"VSL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "do not fit" in done.stderr and "Traceback" not in done.stderr


def test_sigterm_stops_training_and_still_writes_results(tmp_path, twitter_folder):
    import signal
    import time

    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(twitter_folder), "format": "twitter", "word_dim": 16, "char_dim": 8, "char_hidden": 8,
        "hidden": 16, "max_steps": 1_000_000, "eval_every": 5, "patience": None, "skipgram_epochs": 1,
        "threads": 1}))
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out),
                                "--no-progress"], env={"VSL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().strip():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == StopRequest.EXIT_STATUS, stderr
    assert f"--resume {out}" in stderr
    results = json.loads((out / "results.json").read_text())
    assert results["interrupted"] and 5 <= results["steps"] < 1_000_000
    assert 0.0 <= results["test"]["accuracy"] <= 1.0


@pytest.mark.parametrize("prior_storage", ["memory", "disk"])
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, twitter_folder, kill_after_first_checkpoint,
                                                         prior_storage):
    """VSL-GG-Hier with unlabeled data, dropout and sampling, its priors in memory or on disk:
    killed with SIGKILL after its first periodic checkpoint, resumed, it ends with the same
    scores, dev curve, weights and priors as a run never stopped."""
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(f"tweet number {i} is here :) @user #tag{i % 7}" for i in range(40)) + "\n",
                   encoding="utf-8")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(twitter_folder), "format": "twitter", "latent": "hier", "unlabeled": str(raw),
        "word_dim": 16, "char_dim": 8, "char_hidden": 8, "hidden": 16, "y_dim": 4, "z_dim": 6,
        "decoder_hidden": 8, "dropout": 0.3, "prior_update_every": 2, "max_steps": 200, "eval_every": 20,
        "checkpoint_every": 10, "patience": None, "unlabeled_batch_size": 5, "skipgram_epochs": 1,
        "threads": 1, "prior_storage": prior_storage}))
    env = {"VSL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    whole = tmp_path / "whole"
    _run(["--config", str(config), "--out", str(whole)], tmp_path / "cache")

    killed = tmp_path / "killed"
    kill_after_first_checkpoint([sys.executable, str(SCRIPT), "--config", str(config), "--out", str(killed),
                                 "--no-progress"], killed, env=env)
    if prior_storage == "disk":  # a snapshot that is not the one last.pt saved is refused, naming it
        damaged = tmp_path / "damaged"
        shutil.copytree(killed, damaged)
        snapshot = damaged / PRIORS / load_tensors(damaged / "last.pt")["priors"]["labeled"]["y"]["logvar"]["snapshot"]
        snapshot.write_bytes(bytes(reversed(snapshot.read_bytes())))
        refused = subprocess.run([sys.executable, str(SCRIPT), "--resume", str(damaged), "--no-progress"],
                                 capture_output=True, text=True, env=env, timeout=300)
        assert refused.returncode == 2 and f"error: {snapshot}: does not match {damaged / 'last.pt'}" in refused.stderr
        assert "Traceback" not in refused.stderr

    continued = _run(["--resume", str(killed)], tmp_path / "cache")
    expected = json.loads((whole / "results.json").read_text())
    resumed = json.loads((killed / "results.json").read_text())
    assert 10 <= resumed["resumed_from_step"] < 200
    commands = [segment["command"].split()[1:3] for segment in resumed["segments"]]
    assert commands == [["--config", str(config)], ["--resume", str(killed)]]
    assert len(json.loads((whole / "results.json").read_text())["segments"]) == 1
    assert f"resuming at step {resumed['resumed_from_step']} of at most 200" in continued.stderr
    for key in ("dev", "test", "best_step", "steps"):
        assert resumed[key] == expected[key], key

    def curve(run):
        return [(r["step"], r["dev"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]

    assert curve(killed) == curve(whole)
    ends = [{path: value for path, value in _flat(read_training_checkpoint(run / "last.pt")).items()
             if path[0] in ("model", "optimizer", "priors")} for run in (killed, whole)]
    assert ends[0].keys() == ends[1].keys()
    for path, value in ends[0].items():
        assert torch.equal(value, ends[1][path]) if isinstance(value, torch.Tensor) else value == ends[1][path], path
    if prior_storage == "disk":  # the snapshots of the last checkpoint, no others, and no working files
        assert {p.name for p in (killed / PRIORS).iterdir()} == {p.name for p in (whole / PRIORS).iterdir()} == {
            f"{part}-{name}.{tensor}.step200.float16" for part in ("labeled", "unlabeled") for name in "yz"
            for tensor in ("mean", "logvar")}
    else:
        assert not (whole / PRIORS).exists()

    (whole / "model.pt").write_bytes(b"PK\x03\x04 cut short")  # resuming a finished run rewrites a damaged model.pt
    _run(["--resume", str(whole)], tmp_path / "cache")
    best, kept = load_tensors(killed / "model.pt"), load_tensors(whole / "model.pt")
    assert best.keys() == kept.keys() and all(torch.equal(best[k], kept[k]) for k in best)


def _flat(tree: dict, prefix: tuple = ()) -> dict:
    """The leaves of nested dicts by their key paths."""
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, (*prefix, key)) if isinstance(value, dict) else {(*prefix, key): value})
    return flat


def test_resume_refuses_new_settings(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--resume", str(tmp_path), "--lr", "0.1"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--resume takes the run's saved settings" in done.stderr
    done = subprocess.run([sys.executable, str(SCRIPT), "--resume", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "config.json: missing" in done.stderr


def test_vector_text_adds_raw_text_to_the_skipgram_corpus_only_and_the_pool_can_be_left_out(tmp_path, twitter_folder, monkeypatch):
    monkeypatch.setenv("VSL_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "tweets.txt").write_text("zyxwvut is here\nzyxwvut again lol\n", encoding="utf-8")
    config = RunConfig(data=str(twitter_folder), format="twitter", data_root=str(tmp_path), word_dim=8,
                       skipgram_epochs=1, vector_text=["more/tweets.txt"])  # a path under the data root
    data = prepare_data(config)
    corpus, split = data.corpus, data.split
    assert "zyxwvut" in word_vectors(config, corpus, split)
    assert "zyxwvut" not in word_vectors(dataclasses.replace(config, vector_text=[]), corpus, split)
    assert "zyxwvut" not in data.vocabs.words and len(split.unlabeled) == 0  # vectors only
    pooled = prepare_data(dataclasses.replace(config, vector_text=[], unlabeled="more/tweets.txt"))
    assert "zyxwvut" in word_vectors(dataclasses.replace(config, vector_text=[]), corpus, pooled.split)
    unseen = dataclasses.replace(config, vector_text=[], vectors_see_unlabeled=False)
    assert "zyxwvut" not in word_vectors(unseen, corpus, pooled.split)  # the pool is left out
    assert "is" in word_vectors(unseen, corpus, pooled.split)  # the labeled text is not
    with pytest.raises(SettingError, match="vector_text"):
        check_config(dataclasses.replace(config, vector_text=["auto"]))


@pytest.mark.parametrize("prior_storage, threshold_offset, folder, on_disk", [
    ("auto", -1, True, True), ("auto", 0, True, False), ("auto", -1, False, False),
    ("disk", 0, True, True), ("memory", -1, True, False)])
def test_prior_storage_puts_the_stores_on_disk_as_set(tmp_path, monkeypatch, twitter_slice, twitter_collator,
                                                      prior_storage, threshold_offset, folder, on_disk):
    """auto: on disk when the stores take more than the threshold; never without a run folder."""
    train, _ = twitter_slice
    config = RunConfig(latent="hier", word_dim=8, char_dim=4, char_hidden=4, hidden=8, y_dim=2, z_dim=3,
                       decoder_hidden=4, prior_storage=prior_storage)
    split = LabeledSplit(train[:30], train[30:], 10)
    nbytes = PriorStore.size(sum(map(len, train)), 2 + 3)
    monkeypatch.setattr(recipe, "AUTO_DISK_BYTES", nbytes + threshold_offset)
    objective = build_objective(config, build_model(config, twitter_collator.vocabs), split,
                                tmp_path / PRIORS if folder else None)
    stores = [store for part in ("labeled", "unlabeled") for store in objective.priors[part].values()]
    assert sum(store.nbytes - store.offsets.nbytes - store.visits.nbytes for store in stores) == nbytes
    assert all((store.path is not None) == on_disk for store in stores)
    assert sorted(p.name for p in tmp_path.glob(f"{PRIORS}/*")) == (sorted(
        f"{part}-{name}.{tensor}.float16" for part in ("labeled", "unlabeled") for name in "yz"
        for tensor in ("mean", "logvar")) if on_disk else [])


def test_prior_dtype_sets_the_stores_precision(twitter_slice, twitter_collator):
    train, _ = twitter_slice
    config = RunConfig(latent="hier", word_dim=8, char_dim=4, char_hidden=4, hidden=8, y_dim=2, z_dim=3,
                       decoder_hidden=4, prior_dtype="float32")
    objective = build_objective(config, build_model(config, twitter_collator.vocabs),
                                LabeledSplit(train[:30], train[30:], 10))
    stores = [store for part in ("labeled", "unlabeled") for store in objective.priors[part].values()]
    assert {store.mean.dtype for store in stores} == {store.logvar.dtype for store in stores} == {torch.float32}
    with pytest.raises(SettingError, match="prior_dtype 'float64' is not one of float16, float32"):
        check_config(dataclasses.replace(config, prior_dtype="float64"))


def test_prior_storage_is_checked_like_every_setting():
    with pytest.raises(SettingError, match="prior_storage 'ssd' is not one of memory, disk, auto"):
        check_config(RunConfig(prior_storage="ssd"))
    with pytest.raises(VslError, match="setting prior_storage must be a string"):
        RunConfig.from_dict({"prior_storage": True})


def test_y_dropout_needs_a_y_head():
    check_config(RunConfig(latent="hier", y_dropout=0.5))
    for latent in ("none", "gauss"):
        with pytest.raises(SettingError, match=f"latent {latent} has none"):
            check_config(RunConfig(latent=latent, y_dropout=0.5))
    with pytest.raises(SettingError, match=r"y_dropout must be in \[0, 1\)"):
        check_config(RunConfig(latent="hier", y_dropout=1.0))
