"""Run one table's grid of experiments over several seeds and write it up beside the paper.

    scripts/reproduce.py --table twitter --seeds 3
    scripts/reproduce.py --table wsj --seeds 1 --only "NHMM" --threads 2
    scripts/reproduce.py --table configs/tables/my_table.yaml --dry-run

A table (configs/tables/NAME.yaml) names a metric (a dotted path into results.json, e.g.
test.accuracy, or a list of them), rows, each a run config and optionally the paper's figure(s)
and, for a curve, an ``x`` value, and optional notes printed under the table. Every (row, seed)
runs into RUNS/<row>-s<seed> (default runs/tables/NAME) with scripts/run_vsl.py or
scripts/run_hmm.py (a config with a "model" setting is an HMM run). A run whose results.json
exists, or that results/NAME.json records as finished while its folder is absent, is skipped, so
the grid resumes after a stop; a run that was stopped or killed part-way (it has a last.pt, or a
probing neural HMM's probes.pt) is continued with --resume. A run stopped by Ctrl-C or SIGTERM
stops the grid; the same command continues it. A run folder that another process is writing (see
vsl.run_folder) is skipped, so several reproduce processes can share one grid. --dry-run prints
the commands still to run and, under each that continues a stopped run, how far that run has
trained (or why it cannot be continued).

Writes results/NAME.json and results/NAME.md: mean +- sd over seeds (sample standard
deviation), the paper's figure beside each cell, every command, seed and commit. A VSL run that
was stopped early but still wrote results is listed and left out of the figures. A cell whose
run folder is absent (a fresh clone, runs made on another machine) keeps the run that the
earlier results/NAME.json records for that row and seed, with its scores, command and commit;
a run folder that has results replaces it. A (row, seed) that another table's write-up beside
results/NAME.json records as finished with the same config and seed (a curve whose end points
are rows of another table) is taken from there, with that run's command and commit, and not
run twice.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from vsl.checkpoint import CheckpointError, atomic_write_bytes, atomic_write_json
from vsl.commands import HelpFormatter
from vsl.errors import VslError
from vsl.provenance import describe_code, git_commit
from vsl.run_folder import has_training_state, run_finished, run_folder_busy, training_progress
from vsl.optimization import StopRequest
from vsl.write_up import markdown_table, merge_recorded, recorded_runs, runs_of_other_tables, slug, summarize

ROOT = Path(__file__).resolve().parents[2]  # the checkout that holds configs/, scripts/ and results/


ROW_KEYS = {"name", "config", "paper", "x"}


def load_table(name: str) -> tuple[str, dict]:
    path = Path(name) if name.endswith((".yaml", ".yml")) else ROOT / "configs" / "tables" / f"{name}.yaml"
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise VslError(f"{path}: cannot read the table: {err}") from None
    if not isinstance(table, dict) or not table.get("rows") or "metric" not in table:
        raise VslError(f"{path}: a table needs a metric and rows")
    metrics = table["metric"] if isinstance(table["metric"], list) else [table["metric"]]
    for row in table["rows"]:
        if not isinstance(row, dict) or "name" not in row or "config" not in row:
            raise VslError(f"{path}: every row needs a name and a config")
        unknown = set(row) - ROW_KEYS
        if unknown:
            raise VslError(f"{path}: row {row['name']!r} has unknown keys {sorted(map(str, unknown))} "
                           "(a comma in an unquoted name splits it)")
        paper = row.get("paper")
        row["paper"] = [None] * len(metrics) if paper is None else (paper if isinstance(paper, list) else [paper])
        if len(row["paper"]) != len(metrics):
            raise VslError(f"{path}: row {row['name']!r} gives {len(row['paper'])} paper figures for {len(metrics)} metrics")
    return path.stem, {**table, "metrics": metrics}


def is_hmm(config: Path) -> bool:
    try:
        return "model" in (yaml.safe_load(config.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError) as err:
        raise VslError(f"{config}: cannot read the row's config ({err})") from None


def start_arguments(config, seed: int, out) -> list[str]:
    """The arguments that start a cell's run from scratch: its config, seed and run folder."""
    return ["--config", str(config), "--seed", str(seed), "--out", str(out)]


def run_command(config: Path, seed: int, out: Path, threads: int | None) -> list[str]:
    """The command that trains (or, for a run stopped part-way, continues) one cell's run."""
    script = Path(os.path.relpath(ROOT / "scripts" / ("run_hmm.py" if is_hmm(config) else "run_vsl.py")))
    config = Path(os.path.relpath(config))  # as a person would type it, from where reproduce runs
    limits = ["--threads", str(threads)] if threads else []
    if has_training_state(out):  # stopped or killed part-way: continue it
        return [sys.executable, str(script), "--resume", str(out), *limits, "--no-progress"]
    restart = ["--overwrite"] if out.exists() else []  # an earlier try that left nothing to continue from
    return [sys.executable, str(script), *start_arguments(config, seed, out), *restart, *limits, "--no-progress"]


def progress_of(run: Path) -> str:
    """What --dry-run says under the command that continues ``run``: how far it has trained, or
    why it cannot be continued (its config.json or checkpoint is missing or unreadable)."""
    try:
        return training_progress(run)
    except CheckpointError as err:
        return f"cannot continue: {err}"


def started_as(row: dict, source: dict) -> str:
    """For a run that was stopped and continued with --resume, the command that started it: the
    one to type to rerun that cell from scratch (the row's config, the run's seed and folder)."""
    command = (source["command"] or "").split()
    if "--resume" not in command:
        return ""
    return f"; it continued `{' '.join([command[0], *start_arguments(row['config'], source['seed'], source['run'])])}`"


def markdown(title: str, table: dict, rows: list[dict], command: str, commit: str | None) -> str:
    def cell(mean, sd):
        if mean is None:
            return "not run"
        return f"{100 * mean:.1f}" + (f" ± {100 * sd:.1f}" if sd is not None else "")

    headers = [f"{metric} (ours)" if len(table["metrics"]) > 1 else "ours" for metric in table["metrics"]]
    cells = [[row["name"], *(text for m, s, p in zip(row["mean"], row["sd"], row["paper"])
                             for text in (cell(m, s), "—" if p is None else str(p))), str(row["seeds"])]
             for row in rows]
    lines = [f"# {title}", "", f"`{command}` at commit `{commit}`. Ours: mean ± sample sd over the seeds "
             "run (in %); paper: the published figure.", "",
             *markdown_table(["model", *(text for h in headers for text in (h, "paper")), "seeds"], cells)]
    if table.get("notes"):
        lines += ["", table["notes"].strip()]
    lines += ["", "Runs:", ""]
    for row in rows:
        for source in row["runs"]:
            note = " (stopped early; left out of the figures)" if source["interrupted"] else ""
            lines.append(f"- {row['name']}, seed {source['seed']}{note}: `{source['command']}` "
                         f"({describe_code(source)}){started_as(row, source)}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--table", required=True, help="a name in configs/tables or a YAML file")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--runs", help="folder of the runs (default runs/tables/<table>)")
    parser.add_argument("--out", help="output path without extension (default results/<table>)")
    parser.add_argument("--only", nargs="*", help="run only these rows (the table still lists all)")
    parser.add_argument("--threads", type=int, help="threads per run")
    parser.add_argument("--dry-run", action="store_true", help="print the commands still to run and stop")
    parser.add_argument("--report-only", action="store_true", help="run nothing: write the table from the finished runs")
    args = parser.parse_args(argv)
    command = " ".join(["scripts/reproduce.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        name, table = load_table(args.table)
        runs = Path(args.runs or f"runs/tables/{name}")
        seeds = list(range(args.seeds))
        report = Path(args.out or f"results/{name}").with_suffix(".json")
        recorded = merge_recorded(runs_of_other_tables(report, table), recorded_runs(report, table["metrics"]))
        for row in table["rows"]:
            if args.report_only or (args.only and row["name"] not in args.only):
                continue
            for seed in seeds:
                run = runs / f"{slug(row['name'])}-s{seed}"
                done_elsewhere = (row["name"], seed) in recorded and not recorded[row["name"], seed]["interrupted"]
                if run_finished(run) or (done_elsewhere and not run.exists()):
                    continue
                if run_folder_busy(run):  # another reproduce (or a person) is training this cell
                    print(f"skipping {run}: another process is training it", file=sys.stderr, flush=True)
                    continue
                todo = run_command(ROOT / row["config"] if not Path(row["config"]).is_absolute() else Path(row["config"]),
                                   seed, run, args.threads)
                print(" ".join(todo), file=sys.stderr, flush=True)
                if args.dry_run:
                    if has_training_state(run):
                        print(f"    # {progress_of(run)}", file=sys.stderr)
                    continue
                code = subprocess.run(todo).returncode
                if code == StopRequest.EXIT_STATUS:
                    print(f"stopped on request: {run}; the same command continues the grid", file=sys.stderr)
                    return StopRequest.EXIT_STATUS
                if code != 0 and run_folder_busy(run):  # another process took the cell a moment before
                    print(f"skipping {run}: another process is training it", file=sys.stderr, flush=True)
                    continue
                if code != 0:
                    print(f"error: a run failed (exit {code}): {' '.join(todo)}", file=sys.stderr)
                    return 1
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    rows = summarize(table, runs, seeds, recorded)
    commit = git_commit()
    atomic_write_json(report, {"table": name, "title": table.get("title", name), "metrics": table["metrics"],
                               "seeds": seeds, "command": command, "commit": commit, "rows": rows})
    atomic_write_bytes(report.with_suffix(".md"), markdown(table.get("title", name), table, rows, command, commit).encode())
    print(report.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
