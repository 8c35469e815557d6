"""vsl.write_up: a table's cells from run folders and recorded runs, and its Markdown."""

from __future__ import annotations

import json

import pytest

from vsl.write_up import markdown_table, merge_recorded, slug, summarize


def _finished(folder, seed: int, accuracy: float, interrupted: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"seed": seed, "command": f"run {seed}", "commit": "c0ffee",
                                                     "test": {"accuracy": accuracy}, "interrupted": interrupted}))


def test_cells_come_from_run_folders_then_recorded_runs(tmp_path):
    table = {"metrics": ["test.accuracy"],
             "rows": [{"name": "VSL-GG-Hier + raw", "config": "a.yaml", "paper": [91.9]},
                      {"name": "Baseline", "config": "b.yaml", "paper": [None]}]}
    assert slug("VSL-GG-Hier + raw") == "vsl-gg-hier-raw"
    _finished(tmp_path / "vsl-gg-hier-raw-s0", 0, 0.80)
    _finished(tmp_path / "vsl-gg-hier-raw-s1", 1, 0.90)
    _finished(tmp_path / "vsl-gg-hier-raw-s2", 2, 0.10, interrupted=True)  # listed, not averaged
    recorded = {("Baseline", 1): {"run": "elsewhere", "seed": 1, "scores": [0.7], "interrupted": False}}
    hier, baseline = summarize(table, tmp_path, [0, 1, 2], recorded)
    assert hier["seeds"] == 2 and hier["mean"] == [pytest.approx(0.85)] and hier["sd"] == [pytest.approx(0.0707107)]
    assert [source["seed"] for source in hier["runs"]] == [0, 1, 2] and hier["runs"][2]["interrupted"]
    assert baseline["seeds"] == 1 and baseline["mean"] == [0.7] and baseline["sd"] == [None]


def test_a_tables_own_runs_stand_but_copies_take_the_other_tables_fresh_record():
    own = {("row", 0): {"run": "runs/a", "scores": [0.5]}, ("row", 1): {"run": "runs/b", "scores": [0.5]}}
    shared = {("row", 0): {"run": "runs/a2", "scores": [0.6]}, ("row", 1): {"run": "runs/b", "scores": [0.7]},
              ("row", 2): {"run": "runs/c", "scores": [0.8]}}
    merged = merge_recorded(shared, own)
    assert merged[("row", 0)]["scores"] == [0.5]  # this table's own run
    assert merged[("row", 1)]["scores"] == [0.7]  # a copy of the other table's run: its newer record
    assert merged[("row", 2)]["scores"] == [0.8]


def test_markdown_table():
    assert markdown_table(["model", "ours"], [["A", "1.0"], ["B", "—"]]) == [
        "| model | ours |", "|---|---|", "| A | 1.0 |", "| B | — |"]
