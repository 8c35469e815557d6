"""Smoke tests of the demo and benchmark scripts with tiny settings on real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from vsl.run_folder import claim_run_folder

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
    _run([SCRIPTS / "bench.py", "--out", target, "--steps", "2", "--warmup", "1", "--repeats", "2", "--threads", "1",
          "--cases", "bigru", "hmm-ours-scaled", "hmm-pyro-discrete-hmm"], tmp_path)
    report = json.loads(target.read_text())
    bigru, ours, pyro = report["results"]
    assert bigru["case"] == "bigru" and bigru["tokens_per_s"] > 0 and bigru["peak_rss_mib"] > 0
    assert len(bigru["round_seconds"]) == 2
    assert ours["max_posterior_difference"] < 1e-4 and pyro["max_posterior_difference"] < 1e-3
    assert report["speedups"]["hmm-scaled-over-pyro@1"] == round(ours["tokens_per_s"] / pyro["tokens_per_s"], 1)


def test_bench_times_the_steps_that_continue_a_saved_run(tmp_path, twitter_folder):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": str(twitter_folder), "format": "twitter", "latent": "hier", "word_dim": 16, "char_dim": 8,
        "char_hidden": 8, "hidden": 16, "y_dim": 4, "z_dim": 6, "decoder_hidden": 8, "max_steps": 6,
        "eval_every": 3, "checkpoint_every": 3, "skipgram_epochs": 1, "threads": 1}))
    run = tmp_path / "run"
    _run([SCRIPTS / "run_vsl.py", "--config", config, "--out", run, "--no-progress"], tmp_path)
    target = tmp_path / "bench.json"
    _run([SCRIPTS / "bench.py", "--out", target, "--steps", "2", "--warmup", "1", "--repeats", "1", "--threads", "1",
          "--family", "vsl", "--cases", "vsl-resumed", "vsl-resumed-denormals", "--from-run", run], tmp_path)
    report = json.loads(target.read_text())
    flushed, denormals = report["results"]
    assert flushed["denormals_flushed"] and not denormals["denormals_flushed"]
    for row in (flushed, denormals):
        assert row["resumed_at_step"] == 6 and row["steps"] == 2 and row["tokens_per_s"] > 0
    ratio = round(flushed["tokens_per_s"] / denormals["tokens_per_s"], 2)
    assert report["speedups"]["flushed-over-denormals@1"] == ratio

    refused = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--cases", "vsl-resumed"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "need --from-run" in refused.stderr


def test_compare_scores_every_row_on_the_same_test_tokens(tmp_path, twitter_folder):
    tiny_vsl = ["word_dim=16", "char_dim=8", "char_hidden=8", "hidden=16", "max_steps=20", "eval_every=10",
                "skipgram_epochs=1", "threads=1"]
    latent = ["y_dim=4", "z_dim=6", "decoder_hidden=8"]
    settings = [f"bigru.{s}" for s in tiny_vsl] + [f"{row}.{s}" for row in ("hier", "hier-unlabeled")
                                                  for s in tiny_vsl + latent]
    settings += [f"{row}.{s}" for row in ("nhmm", "nhmm-semi") for s in ("hidden=16", "epochs=1", "threads=1")]
    out = tmp_path / "table"
    args = [SCRIPTS / "compare.py", "--data", twitter_folder, "--format", "twitter", "--runs", tmp_path / "runs",
            "--out", out, "--set", *settings]
    _run(args, tmp_path)
    report = json.loads(out.with_suffix(".json").read_text())
    rows = {row["row"]: row["scores"] for row in report["rows"]}
    assert list(rows) == ["bigru", "hier", "hier-unlabeled", "nhmm", "nhmm-semi", "hier-unlabeled-y-kmeans"]
    assert all("accuracy" in rows[r] for r in ("bigru", "hier", "hier-unlabeled", "nhmm-semi"))
    assert "accuracy" not in rows["nhmm"] and "accuracy" not in rows["hier-unlabeled-y-kmeans"]
    assert all(0.0 <= v <= 1.0 for scores in rows.values() for v in scores.values())
    assert report["test_tokens"] == sum(len(b.splitlines()) for b in
                                        (twitter_folder / "slice.test").read_text().split("\n\n") if b.strip())
    assert "| Neural HMM, no labels | — |" in out.with_suffix(".md").read_text()
    before = (tmp_path / "runs" / "bigru" / "results.json").stat().st_mtime
    stopped = tmp_path / "runs" / "hier" / "results.json"  # as a run stopped on request leaves it
    stopped.write_text(json.dumps({**json.loads(stopped.read_text()), "interrupted": True}))
    _run(args, tmp_path)  # a second call reuses every finished run and continues the stopped one
    assert (tmp_path / "runs" / "bigru" / "results.json").stat().st_mtime == before
    continued = json.loads(stopped.read_text())
    assert not continued["interrupted"] and continued["resumed_from_step"] == 20


def test_reproduce_runs_a_grid_over_seeds_and_resumes(tmp_path, twitter_folder):
    tiny = {"data": str(twitter_folder), "format": "twitter", "word_dim": 16, "char_dim": 8, "char_hidden": 8,
            "hidden": 16, "max_steps": 10, "eval_every": 5, "skipgram_epochs": 1, "threads": 1}
    (tmp_path / "bigru.yaml").write_text(yaml.safe_dump({**tiny, "latent": "none"}))
    (tmp_path / "hmm.yaml").write_text(yaml.safe_dump({"data": str(twitter_folder), "format": "twitter",
                                                       "model": "hmm", "states": 5, "epochs": 2}))
    (tmp_path / "table.yaml").write_text(yaml.safe_dump({
        "title": "Tiny", "metric": "test.accuracy",
        "rows": [{"name": "BiGRU baseline", "config": str(tmp_path / "bigru.yaml"), "paper": 90.6}]}))
    (tmp_path / "wsj.yaml").write_text(yaml.safe_dump({
        "title": "Tiny HMM", "metric": ["m1", "vm"],
        "rows": [{"name": "HMM", "config": str(tmp_path / "hmm.yaml"), "paper": [62.5, 53.3]}]}))
    out = tmp_path / "table"
    args = [SCRIPTS / "reproduce.py", "--table", tmp_path / "table.yaml", "--seeds", "2", "--runs", tmp_path / "runs",
            "--out", out]
    _run(args, tmp_path)
    report = json.loads(out.with_suffix(".json").read_text())
    [row] = report["rows"]
    values = [json.loads((tmp_path / "runs" / f"bigru-baseline-s{s}" / "results.json").read_text())["test"]["accuracy"]
              for s in (0, 1)]
    assert row["seeds"] == 2 and row["values"] == [values]
    assert abs(row["mean"][0] - sum(values) / 2) < 1e-12 and row["sd"][0] is not None
    assert "| BiGRU baseline | " in out.with_suffix(".md").read_text() and "| 90.6 |" in out.with_suffix(".md").read_text()
    before = (tmp_path / "runs" / "bigru-baseline-s0" / "results.json").stat().st_mtime
    _run(args, tmp_path)  # finished runs are skipped
    assert (tmp_path / "runs" / "bigru-baseline-s0" / "results.json").stat().st_mtime == before

    killed = tmp_path / "runs" / "bigru-baseline-s2"  # a run killed part-way is continued, not restarted
    killed.mkdir()
    (killed / "last.pt").write_bytes(b"")
    done = subprocess.run([sys.executable, str(SCRIPTS / "reproduce.py"), *map(str, args[1:]), "--seeds", "3",
                           "--dry-run"], capture_output=True, text=True)
    assert f"--resume {killed}" in done.stderr and done.stderr.count("--config") == 0
    assert f"# cannot continue: {killed}" in done.stderr  # no config.json, an empty last.pt
    with claim_run_folder(killed, resume=True):  # another reproduce is training that cell: skipped
        done = subprocess.run([sys.executable, str(SCRIPTS / "reproduce.py"), *map(str, args[1:]), "--seeds", "3",
                               "--dry-run"], capture_output=True, text=True)
    assert f"skipping {killed}: another process is training it" in done.stderr and "--resume" not in done.stderr
    # an earlier try that left nothing to continue from is started again over its folder
    (killed / "last.pt").unlink()
    done = subprocess.run([sys.executable, str(SCRIPTS / "reproduce.py"), *map(str, args[1:]), "--seeds", "3",
                           "--dry-run"], capture_output=True, text=True)
    assert f"--out {killed} --overwrite" in done.stderr

    hmm_out = tmp_path / "hmm_table"
    _run([SCRIPTS / "reproduce.py", "--table", tmp_path / "wsj.yaml", "--seeds", "1", "--runs", tmp_path / "hmm_runs",
          "--out", hmm_out], tmp_path)
    [hmm_row] = json.loads(hmm_out.with_suffix(".json").read_text())["rows"]
    assert hmm_row["seeds"] == 1 and len(hmm_row["mean"]) == 2 and hmm_row["sd"] == [None, None]

    stopped = tmp_path / "runs" / "bigru-baseline-s1" / "results.json"  # stopped early: listed, not averaged
    stopped.write_text(json.dumps({**json.loads(stopped.read_text()), "interrupted": True}))
    resumed = tmp_path / "runs" / "bigru-baseline-s0" / "results.json"  # finished after a --resume
    finished = json.loads(resumed.read_text())
    resumed.write_text(json.dumps({**finished, "config": {**finished["config"], "device": "cuda"},
                                   "commit": "c" * 40 + "+dirty", "changed_files": ["README.md", "results/x.md"],
                                   "command": f"scripts/run_vsl.py --resume {resumed.parent} --no-progress",
                                   "segments": [{"commit": "b" * 40, "changed_files": [], "device": "cpu"}, {}]}))
    _run([*args, "--report-only"], tmp_path)
    written = out.with_suffix(".md").read_text()
    assert (f"+dirty`, with changes to README.md, results/x.md, on cuda; earlier segment: commit `{'b' * 40}`); "
            f"it continued `scripts/run_vsl.py --config {tmp_path / 'bigru.yaml'} --seed 0 --out {resumed.parent}`"
            in written)
    assert written.count(", on ") == 1  # a CPU run names no device
    [row] = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert row["seeds"] == 1 and row["values"] == [values[:1]] and row["sd"] == [None]
    assert [source["interrupted"] for source in row["runs"]] == [False, True]
    assert "seed 1 (stopped early; left out of the figures)" in out.with_suffix(".md").read_text()

    elsewhere = [*args[:6], tmp_path / "fresh_clone_runs", *args[7:]]  # run folders absent: the write-up keeps them
    done = subprocess.run([sys.executable, *map(str, elsewhere), "--dry-run"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seed 0" not in done.stderr and "--seed 1" in done.stderr
    _run([*elsewhere, "--report-only"], tmp_path)
    [kept] = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert kept["values"] == [values[:1]] and [s["interrupted"] for s in kept["runs"]] == [False, True]
    assert kept["runs"][0]["command"] == row["runs"][0]["command"]

    (tmp_path / "table.yaml").write_text(yaml.safe_dump({  # another metric: the recorded scores no longer fit
        "title": "Tiny", "metric": "dev.accuracy",
        "rows": [{"name": "BiGRU baseline", "config": str(tmp_path / "bigru.yaml")}]}))
    done = subprocess.run([sys.executable, *map(str, elsewhere), "--report-only"], capture_output=True, text=True)
    assert done.returncode == 2 and f"{out.with_suffix('.json')}: cannot take the runs it records" in done.stderr


def test_reproduce_takes_a_run_that_another_table_records(tmp_path):
    config = tmp_path / "hier.yaml"
    config.write_text(yaml.safe_dump({"latent": "hier"}))
    (tmp_path / "curve.yaml").write_text(yaml.safe_dump({
        "title": "Curve", "metric": ["dev.accuracy", "test.accuracy"],
        "rows": [{"name": "no raw text", "x": 0, "config": str(config)}]}))
    results = tmp_path / "results"
    results.mkdir()
    run = {"run": "runs/tables/other/hier-s1", "command": "scripts/run_vsl.py --seed 1", "commit": "c" * 40}
    (results / "other.json").write_text(json.dumps({  # another table, its metrics in another order
        "table": "other", "metrics": ["test.accuracy", "dev.accuracy"],
        "rows": [{"name": "Hier", "config": str(config),
                  "runs": [{**run, "seed": 1, "interrupted": False, "scores": [0.8, 0.9]},
                           {**run, "seed": 2, "interrupted": True, "scores": [0.7, 0.6]}]},
                 {"name": "Flat", "config": str(tmp_path / "flat.yaml"),
                  "runs": [{**run, "seed": 0, "interrupted": False, "scores": [0.5, 0.5]}]}]}))
    (results / "bench.json").write_text(json.dumps({"results": []}))  # not a table: passed over
    args = [SCRIPTS / "reproduce.py", "--table", tmp_path / "curve.yaml", "--seeds", "3", "--runs",
            tmp_path / "runs", "--out", results / "curve"]
    done = subprocess.run([sys.executable, *map(str, args), "--dry-run"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seed 1" not in done.stderr
    assert "--seed 0" in done.stderr and "--seed 2" in done.stderr  # the other's seed 2 stopped early
    _run([*args, "--report-only"], tmp_path)
    [row] = json.loads((results / "curve.json").read_text())["rows"]
    assert row["seeds"] == 1 and row["values"] == [[0.9], [0.8]]
    assert row["runs"] == [{**run, "seed": 1, "interrupted": False, "scores": [0.9, 0.8]}]
    other = json.loads((results / "other.json").read_text())  # the other table reran that run folder
    other["rows"][0]["runs"][0] = {**run, "commit": "d" * 40, "seed": 1, "interrupted": False, "scores": [0.7, 0.6]}
    (results / "other.json").write_text(json.dumps(other))
    _run([*args, "--report-only"], tmp_path)
    [row] = json.loads((results / "curve.json").read_text())["rows"]
    assert row["values"] == [[0.6], [0.7]] and row["runs"][0]["commit"] == "d" * 40
    (results / "broken.json").write_text(json.dumps({"table": "broken", "metrics": ["dev.accuracy"]}))
    done = subprocess.run([sys.executable, *map(str, args), "--report-only"], capture_output=True, text=True)
    assert done.returncode == 0  # it scores one metric of two: not a source for this table
    (results / "broken.json").write_text(json.dumps({"table": "broken", "metrics": ["dev.accuracy", "test.accuracy"]}))
    done = subprocess.run([sys.executable, *map(str, args), "--report-only"], capture_output=True, text=True)
    assert done.returncode == 2 and f"{results / 'broken.json'}: cannot take the runs it records" in done.stderr


def test_the_training_commands_start_without_the_heavy_scoring_libraries():
    """gensim, scikit-learn, scipy and seqeval load only when a run uses them (about 3 s)."""
    probe = ("import sys, hmm.recipe, vsl.recipe; "
             "print(sorted(m for m in ('gensim', 'sklearn', 'scipy', 'seqeval') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=SCRIPTS.parent)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_confusion_finds_the_runs_test_split_and_summarises_its_clusters(tmp_path, twitter_folder):
    from collections import Counter

    from hmm.config import HmmConfig
    from hmm.recipe import run as run_hmm
    from vsl.data.registry import load_dataset, resolve_dataset

    run = tmp_path / "hmm"
    run_hmm(HmmConfig(data=str(twitter_folder), format="twitter", model="hmm", states=5, epochs=2, max_sentences=20),
            run, progress=False)
    summary = tmp_path / "clusters.md"
    _run([SCRIPTS / "figures.py", "confusion", "--run", run, "--out", tmp_path / "c.png", "--summary", summary],
         tmp_path)  # no --data: the run's own folder, format and first 20 test tweets
    assert (tmp_path / "c.png").stat().st_size > 0
    gold = [tag for s in load_dataset(resolve_dataset(str(twitter_folder), fmt="twitter")).test[:20] for tag in s.tags]
    clusters = [int(c) for line in (run / "tags.txt").read_text().splitlines() for c in line.split()]
    sizes = Counter(clusters)
    rows = [line.split(" | ") for line in summary.read_text().splitlines() if line[:2] == "| " and line[2].isdigit()]
    assert [(int(r[0].strip("| ")), int(r[1].replace(",", ""))) for r in rows] == \
        sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    for row in rows:  # the first tag listed is the cluster's commonest
        cluster = int(row[0].strip("| "))
        top = Counter(g for g, c in zip(gold, clusters) if c == cluster).most_common(1)[0][1]
        assert row[3].startswith(tuple(f"{tag} {100 * top / sizes[cluster]:.0f}%" for tag in set(gold)))
    assert f"{len(gold):,} tokens in {len(sizes)} clusters" in summary.read_text()

    lines = (run / "tags.txt").read_text().splitlines()
    (run / "tags.txt").write_text("\n".join([*lines[:2], lines[2] + " 0", *lines[3:]]) + "\n")
    done = subprocess.run([sys.executable, str(SCRIPTS / "figures.py"), "confusion", "--run", str(run),
                           "--out", str(tmp_path / "d.png")], capture_output=True, text=True)
    assert done.returncode == 2 and f"{run / 'tags.txt'}:3: expected" in done.stderr


def test_a_script_runs_the_packages_of_its_own_checkout(tmp_path):
    """A git worktree that shares a virtual environment (an editable install of another
    checkout) must still run, and record the commit of, its own code."""
    checkout = tmp_path / "worktree"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "vsl").mkdir()
    (checkout / "vsl" / "__init__.py").write_text("")
    (checkout / "scripts" / "_checkout.py").write_text((SCRIPTS / "_checkout.py").read_text())
    (checkout / "scripts" / "which.py").write_text("import _checkout\nimport vsl\nprint(vsl.__file__)\n")
    out = _run([checkout / "scripts" / "which.py"], tmp_path)
    assert Path(out.strip()) == checkout / "vsl" / "__init__.py"
