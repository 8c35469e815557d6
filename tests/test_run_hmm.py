"""Smoke tests of scripts/run_hmm.py on small real slices of WSJ: both model families run end to
end, write scores in [0, 1], one tag line per evaluated sentence and a loadable model; bad input
ends with a clear error and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vsl.checkpoint import load_model, load_tensors
from vsl.run_folder import training_progress
from vsl.data.readers import read_ptb

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "run_hmm.py"
SCORES = ("m1", "one_to_one", "one_to_one_greedy", "vm")


@pytest.fixture(scope="module")
def wsj_lengths(data_root):
    path = data_root / "ptb" / "wsj_full" / "enw.gold"
    if not path.is_file():
        pytest.skip("wsj is not under the data root (licensed)")
    return [len(s) for s in read_ptb(path)[:200]]


def _run(args, cwd: Path):
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--threads", "1", "--no-progress"],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def _check_outputs(out: Path, lengths: list[int]) -> dict:
    results = json.loads((out / "results.json").read_text())
    for key in SCORES:
        assert 0.0 <= results[key] <= 1.0, (key, results[key])
    assert results["log_likelihood_per_token"] < 0
    for key in ("states", "model", "emission", "transition", "seed", "commit", "changed_files", "command", "config",
                "data"):
        assert key in results
    lines = (out / "tags.txt").read_text().splitlines()
    assert [len(line.split()) for line in lines] == lengths
    states = results["states"]
    assert all(0 <= int(tag) < states for line in lines for tag in line.split())
    assert results["data"]["test"]["sentences"] == len(lengths)
    assert results["data"]["trained_on"]["sentences"] == sum(n <= 40 for n in lengths)
    assert results["data"]["dropped_by_length"] == sum(n > 40 for n in lengths)
    return results


def test_run_hmm_baum_welch_on_wsj(tmp_path, data_root, wsj_lengths):
    out = tmp_path / "hmm"
    _run(["--data", "wsj", "--data-root", str(data_root), "--max-sentences", "200", "--model", "hmm",
          "--epochs", "2", "--seed", "3", "--out", str(out)], tmp_path)
    results = _check_outputs(out, wsj_lengths)
    assert results["model"] == "hmm" and results["emission"] is None and results["seed"] == 3
    assert results["config"]["epochs"] == 2 and results["states"] == 45
    weights, config, vocabs = load_model(out)
    assert weights["log_emit"].shape == (45, results["data"]["vocabulary"])
    assert torch.allclose(weights["log_emit"].exp().sum(-1), torch.ones(45, dtype=torch.float64))
    assert config["model"] == "hmm" and len(vocabs["words"]["items"]) + 2 == results["data"]["vocabulary"]


def test_run_hmm_neural_conv_lstm_on_wsj(tmp_path, data_root, wsj_lengths):
    out = tmp_path / "nhmm"
    config = tmp_path / "tiny.yaml"
    config.write_text("model: nhmm\nemission: conv\ntransition: lstm\nstates: 12\n")
    _run(["--config", str(config), "--data", "wsj", "--data-root", str(data_root), "--max-sentences", "100",
          "--epochs", "1", "--hidden", "16", "--hidden-layers", "1", "--out", str(out)], tmp_path)
    results = _check_outputs(out, wsj_lengths[:100])
    assert (results["model"], results["emission"], results["transition"]) == ("nhmm", "conv", "lstm")
    assert results["states"] == 12 and results["config"]["hidden"] == 16 and results["config"]["hidden_layers"] == 1
    weights, _, _ = load_model(out)
    assert "tag_layers.0.weight" in weights
    assert any(name.startswith("char_cnn.") for name in weights)
    assert any(name.startswith("lstm.") for name in weights)


@pytest.mark.parametrize("args, message", [
    (["--data", "ud/Klingon-XYZ"], "Klingon"),
    (["--data", "wsj", "--states", "0"], "states must be positive"),
    (["--data", "wsj", "--model", "nhmm", "--hidden-layers", "-1"], "hidden_layers must be >= 0"),
    (["--data", "wsj", "--model", "nhmm", "--lr", "0"], "lr must be positive"),
    (["--data", "wsj", "--model", "nhmm", "--probes", "0"], "probes must be positive"),
    (["--data", "wsj", "--model", "nhmm", "--gradient-noise", "-1"], "gradient_noise and noise_decay must be >= 0"),
])
def test_run_hmm_reports_bad_input_clearly(tmp_path, data_root, args, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *args, "--data-root", str(data_root),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 2
    assert "error: " in done.stderr and message in done.stderr and "Traceback" not in done.stderr


TABLE_3 = {"wsj_conv_lstm_paper": ("paper", 3, 0.5), "wsj_conv_lstm_uniform_init": ("uniform", 3, 0.5),
           "wsj_conv_lstm_1layer_no_dropout": ("paper", 1, 0.0), "wsj_conv_lstm_1layer_dropout": ("paper", 1, 0.5),
           "wsj_conv_lstm_3layers_no_dropout": ("paper", 3, 0.0)}  # configs/tables/wsj_ablations.yaml
PAPER_TRAINED = {"wsj_lstm_h128_paper", *TABLE_3}  # the LSTM as the paper's section 8 trains it


def test_paper_configs_load_with_the_paper_settings():
    from hmm.config import HmmConfig

    configs = {path.stem: HmmConfig.load(path).resolved() for path in (ROOT / "configs" / "hmm").glob("*.yaml")
               if "_decide_" not in path.stem and "_2ep_" not in path.stem}  # decision runs: configs/tables/wsj_lstm_decide*.yaml
    assert set(configs) == {"wsj_hmm", "wsj_nhmm", "wsj_nhmm_code", "wsj_nhmm_code_probes", "wsj_nhmm_code_clip",
                            "wsj_nhmm_code_noise", "wsj_nhmm_code_tricks", "wsj_conv", "wsj_lstm", "wsj_lstm_h128",
                            "wsj_lstm_h128_code_tricks", "wsj_conv_lstm", *PAPER_TRAINED}
    for name, config in configs.items():
        assert (config.data, config.states, config.batch_size, config.max_length) == ("wsj", 45, 256, 40)
        if name != "wsj_hmm":
            assert config.model == "nhmm" and config.epochs == 5
            assert config.hidden == (128 if config.emission == "conv" or "_h128" in name else 512)
            assert ("conv" in name) == (config.emission == "conv")
            assert ("lstm" in name) == (config.transition == "lstm")
        probes, noise = name.endswith(("_code_tricks", "_probes")), name.endswith(("_code_tricks", "_noise"))
        assert config.probes == (5 if probes else 1)
        clip = noise or name.endswith("_clip")
        assert (config.loss_scale, config.grad_clip) == (("state", 3.0) if clip else ("token", 5.0))
        assert config.gradient_noise == (0.01 if noise else 0.0)
        if "_code" in name:
            assert config.hidden_layers == 1
    for name, (init, layers, dropout) in TABLE_3.items():  # the paper's training, one change each
        config = configs[name]
        assert (config.lstm_init, config.lstm_layers, config.dropout) == (init, layers, dropout), name
    for name in PAPER_TRAINED:
        assert configs[name].lstm_dropout_top and configs[name].stop_when_worse, name
    assert configs["wsj_lstm_h128_paper"].lstm_init == "paper"
    assert configs["wsj_hmm"].model == "hmm" and configs["wsj_hmm"].epochs >= 50
    assert configs["wsj_nhmm"].hidden_layers == 0


def test_paper_training_is_the_default_and_earlier_runs_keep_theirs():
    from hmm.config import HmmConfig

    paper = {"lstm_dropout_top": True, "lstm_init": "paper", "stop_when_worse": True}
    earlier = {"lstm_dropout_top": False, "lstm_init": "torch", "stop_when_worse": False}
    assert {key: getattr(HmmConfig(), key) for key in paper} == paper
    saved = HmmConfig.from_saved({"model": "nhmm", "transition": "lstm"})  # a config.json of vsl 0.2
    assert {key: getattr(saved, key) for key in earlier} == earlier
    behind_results = {row["config"] for table in ("wsj", "wsj_tricks")
                      for row in yaml.safe_load((ROOT / "configs" / "tables" / f"{table}.yaml").read_text())["rows"]}
    assert len(behind_results) >= 10
    for path in sorted(behind_results):  # the configs behind results/ ran the old way, but the new rows
        if Path(path).stem in PAPER_TRAINED:
            continue
        config = HmmConfig.load(ROOT / path)
        if config.model == "nhmm":
            assert not config.stop_when_worse, path
            assert config.transition != "lstm" or (config.lstm_init, config.lstm_dropout_top) == ("torch", False), path


def test_semi_supervised_neural_hmm_learns_tags_from_the_labeled_share(tmp_path, twitter_folder):
    """On the VSL split (here: every labeled tweet), clamped states become the tags: tagging
    accuracy is reported, there is one state per tag, and the states beat the majority tag."""
    out = tmp_path / "semi"
    _run(["--data", str(twitter_folder), "--format", "twitter", "--model", "nhmm", "--semi-supervised",
          "--hidden", "32", "--epochs", "8", "--batch-size", "20", "--lr", "0.02", "--out", str(out)], tmp_path)
    results = json.loads((out / "results.json").read_text())
    tags = json.loads((out / "vocab.json").read_text())["tags"]["items"]
    assert results["semi_supervised"] and results["states"] == len(tags)
    assert results["data"]["labeled"]["sentences"] == 60 and 0.0 <= results["accuracy"] <= 1.0
    test_tags = [t for block in (twitter_folder / "slice.test").read_text().split("\n\n") if block.strip()
                 for t in (line.split("\t")[1] for line in block.splitlines())]
    majority = max(test_tags.count(t) for t in set(test_tags)) / len(test_tags)
    assert results["accuracy"] > majority + 0.1, (results["accuracy"], majority)


@pytest.mark.parametrize("tricks", [[], ["--probes", "3", "--gradient-noise", "0.01", "--loss-scale", "state"]])
def test_neural_hmm_killed_and_resumed_ends_as_an_uninterrupted_run(tmp_path, data_root, wsj_lengths,
                                                                       kill_after_first_checkpoint, tricks):
    """LSTM transitions (dropout, so the random state matters): SIGKILL after the first
    checkpoint, --resume, and the scores and final likelihood equal those of a run never stopped.
    With probing (its first checkpoint comes after the probes) and gradient noise as well; the
    probe kept is the one of highest log-likelihood."""
    args = ["--data", "wsj", "--data-root", str(data_root), "--max-sentences", "200", "--model", "nhmm",
            "--transition", "lstm", "--hidden", "16", "--states", "6", "--epochs", "2", "--batch-size", "16",
            "--lr", "0.01", "--checkpoint-every", "2", *tricks]
    _run([*args, "--out", str(tmp_path / "whole")], tmp_path)
    killed = tmp_path / "killed"
    kill_after_first_checkpoint([sys.executable, str(SCRIPT), *args, "--out", str(killed), "--threads", "1",
                                 "--no-progress"], killed, cwd=tmp_path)
    continued = _run(["--resume", str(killed)], tmp_path)
    expected = json.loads((tmp_path / "whole" / "results.json").read_text())
    resumed = json.loads((killed / "results.json").read_text())
    assert "\nresuming in epoch " in continued.stderr or "\nresuming all 2 epochs trained" in continued.stderr
    assert resumed["resumed"] and not expected["resumed"]
    commands = [segment["command"].split()[1:3] for segment in resumed["segments"]]
    assert commands == [["--data", "wsj"], ["--resume", str(killed)]]
    assert len(expected["segments"]) == 1 and resumed["segments"][-1]["commit"] == resumed["commit"]
    for key in ("m1", "one_to_one", "vm", "log_likelihood_per_token"):
        assert resumed[key] == expected[key], key
    assert (killed / "tags.txt").read_text() == (tmp_path / "whole" / "tags.txt").read_text()
    assert resumed["probing"] == expected["probing"]
    if tricks:
        scores = expected["probing"]["log_likelihoods"]
        assert len(scores) == 3 and len(set(scores)) == 3
        assert expected["probing"]["kept"] == scores.index(max(scores))
    else:
        assert expected["probing"] is None


@pytest.mark.parametrize("stop_at, probe, batch", [(1, 1, 0), (7, 2, 1)])  # before any batch; in probe 2
def test_a_neural_hmm_stopped_while_probing_continues_its_probes_when_resumed(tmp_path, data_root, wsj_lengths,
                                                                             stop_at, probe, batch):
    """Stopped while probing, a run keeps its probing so far in probes.pt (no last.pt yet), and
    `--resume` continues it to the scores of a run never stopped; once the probes end, last.pt
    takes over and probes.pt goes."""
    import itertools
    from hmm.config import HmmConfig
    from hmm.recipe import run
    from hmm.train import TrainingStopped
    config = HmmConfig(data="wsj", data_root=str(data_root), max_sentences=80, model="nhmm", hidden=8, states=4,
                       epochs=2, batch_size=16, probes=3, checkpoint_every=1, gradient_noise=0.01, threads=1)
    stopped, calls = tmp_path / "stopped", itertools.count(1)
    with pytest.raises(TrainingStopped, match=f"stopped in probe {probe} of 3$") as raised:
        run(config, stopped, progress=False, should_stop=lambda: next(calls) >= stop_at)
    assert raised.value.saved and (stopped / "probes.pt").is_file() and not (stopped / "last.pt").exists()
    progress = training_progress(stopped)  # what reproduce.py --dry-run says under its --resume
    assert progress.startswith(f"in probe {probe} of 3 after minibatch {batch}")
    assert ("log-likelihood per token of the probes done: -" in progress) == (probe > 1)
    continued = _run(["--resume", str(stopped)], tmp_path)
    assert f"resuming in probe {probe} of 3 after minibatch {batch}" in continued.stderr
    assert ("probe 1/3 (seed 0)" in continued.stderr) == (probe == 1)  # a finished probe is not trained again
    assert not (stopped / "probes.pt").exists() and (stopped / "last.pt").is_file()
    resumed = json.loads((stopped / "results.json").read_text())
    whole = run(config, tmp_path / "whole", progress=False)  # the same run never stopped
    assert len(resumed["probing"]["log_likelihoods"]) == 3 and resumed["resumed"]
    for key in (*SCORES, "log_likelihood_per_token", "probing"):
        assert resumed[key] == whole[key], key
    assert (stopped / "tags.txt").read_text() == (tmp_path / "whole" / "tags.txt").read_text()


def test_sigterm_stops_a_neural_hmm_between_batches_with_its_state_saved(tmp_path, data_root, wsj_lengths):
    """SIGTERM once training has begun, with periodic checkpoints too far apart to happen: exit
    status 130, a message naming --resume, no results, and a last.pt written at the stop."""
    import signal

    out = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--data", "wsj", "--data-root", str(data_root), "--max-sentences", "200",
         "--model", "nhmm", "--hidden", "16", "--states", "6", "--epochs", "50", "--batch-size", "8",
         "--checkpoint-every", "100000", "--out", str(out), "--threads", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines = []
    while not lines or not lines[-1].startswith("training on"):
        lines.append(process.stderr.readline())
        assert lines[-1] or process.poll() is None, "".join(lines)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"--resume {out}" in stderr and "Traceback" not in stderr
    assert not (out / "results.json").exists()
    state = load_tensors(out / "last.pt")["trainer"]
    assert state["epoch"] < 50 and state["updates"] <= 6 * state["batch"]  # counters of the epoch under way
