"""A table's write-up: its rows' scores over seeds, from run folders or from the runs an earlier
write-up (this table's, or another table's with the same config and seed) records, and the
Markdown table they are shown in. What ``vsl reproduce`` and ``vsl compare`` write with."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from vsl.checkpoint import RESULTS
from vsl.errors import VslError
from vsl.provenance import run_source


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def lookup(results: dict, path: str) -> float:
    value = results
    for key in path.split("."):
        value = value[key]
    return float(value)


Recorded = dict[tuple[str, int], dict]  # (row name, seed) -> the run a write-up lists


def recorded_runs(report: Path, metrics: list[str]) -> Recorded:
    """The runs a table's earlier write-up lists, by (row name, seed): what keeps a cell whose run
    folder is not on this machine (a fresh clone, another machine's runs) in the table."""
    if not report.is_file():
        return {}
    try:
        earlier = json.loads(report.read_text(encoding="utf-8"))
        recorded = {(row["name"], source["seed"]): source for row in earlier["rows"] for source in row["runs"]}
        if earlier["metrics"] != metrics:
            raise ValueError(f"it scores {earlier['metrics']}, the table {metrics}")
        for (name, seed), source in recorded.items():
            if not source["interrupted"] and len(source["scores"]) != len(metrics):
                raise ValueError(f"row {name!r}, seed {seed} has {len(source['scores'])} scores")
    except (ValueError, KeyError, TypeError) as err:
        raise VslError(f"{report}: cannot take the runs it records ({err}); move it away to start afresh") from None
    return recorded


def runs_of_other_tables(report: Path, table: dict) -> Recorded:
    """The finished runs that other tables' write-ups beside ``report`` record with the config of
    one of this table's rows, by (row name, seed), their scores picked for this table's metrics:
    one run serves every table that lists its config and seed."""
    names = {}
    for row in table["rows"]:
        names.setdefault(row["config"], []).append(row["name"])
    shared = {}
    for other in sorted(report.parent.glob("*.json")):
        if other.resolve() == report.resolve():
            continue
        try:
            write_up = json.loads(other.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise VslError(f"{other}: cannot read it ({err})") from None
        if not isinstance(write_up, dict) or "table" not in write_up:
            continue  # a benchmark or a head-to-head, not a table's write-up
        try:
            if not set(table["metrics"]) <= set(write_up["metrics"]):
                continue  # it does not score every metric this table reports
            positions = [write_up["metrics"].index(metric) for metric in table["metrics"]]
            for row in write_up["rows"]:
                for source in row["runs"]:
                    if source["interrupted"]:
                        continue
                    for name in names.get(row["config"], []):
                        shared.setdefault((name, source["seed"]),
                                          {**source, "scores": [source["scores"][i] for i in positions]})
        except (KeyError, TypeError, IndexError) as err:
            raise VslError(f"{other}: cannot take the runs it records ({err!r})") from None
    return shared


def merge_recorded(shared: Recorded, own: Recorded) -> Recorded:
    """The runs a table takes without running them: its own earlier write-up's, except where that
    copied a run folder that another table's write-up records afresh (the run was done again there)."""
    kept = {key: source for key, source in own.items() if key not in shared or shared[key]["run"] != source["run"]}
    return {**shared, **kept}


def summarize(table: dict, runs: Path, seeds: list[int], recorded: Recorded) -> list[dict]:
    """Each row's cells over ``seeds``: from the run folder's results.json where it exists, else from
    the ``recorded`` run of that row and seed (this table's earlier write-up, or another table's)."""
    rows = []
    for row in table["rows"]:
        cells, sources = [], []
        for seed in seeds:
            results_file = runs / f"{slug(row['name'])}-s{seed}" / RESULTS
            if results_file.is_file():
                results = json.loads(results_file.read_text())
                source = {**run_source(results_file.parent, results), "seed": seed,
                          "scores": [lookup(results, metric) for metric in table["metrics"]]}
            elif (row["name"], seed) in recorded:
                source = recorded[row["name"], seed]
            else:
                continue
            if not source["interrupted"]:  # a run stopped part-way is listed, not averaged
                cells.append(source["scores"])
            sources.append(source)
        columns = list(zip(*cells)) if cells else [[] for _ in table["metrics"]]
        rows.append({"name": row["name"], "x": row.get("x"), "config": row["config"], "paper": row["paper"],
                     "seeds": len(cells),
                     "mean": [statistics.fmean(c) if c else None for c in columns],
                     "sd": [statistics.stdev(c) if len(c) > 1 else None for c in columns],
                     "values": [list(c) for c in columns], "runs": sources})
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: the header row, its rule, then one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]
