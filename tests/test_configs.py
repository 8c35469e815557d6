"""Every shipped experiment config loads as its run settings, and every table's rows point at
configs that exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hmm.config import HmmConfig
from vsl.config import RunConfig
from vsl.experiment import check_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "vsl").glob("*.yaml")), ids=lambda p: p.name)
def test_vsl_configs_load(path):
    config = RunConfig.load(path)
    check_config(config)
    assert config.data and config.latent in ("none", "gauss", "flat", "hier")


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "hmm").glob("*.yaml")), ids=lambda p: p.name)
def test_hmm_configs_load(path):
    assert HmmConfig.load(path).resolved().states == 45


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "tables").glob("*.yaml")), ids=lambda p: p.name)
def test_tables_list_existing_configs(path, tmp_path):
    rows = yaml.safe_load(path.read_text())["rows"]
    assert all((ROOT / row["config"]).is_file() for row in rows)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--table", str(path), "--seeds", "1",
                           "--runs", str(tmp_path), "--out", str(tmp_path / "table"), "--dry-run"],  # no recorded runs
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stderr.splitlines() if "--config" in line]) == len(rows)


def test_a_table_row_with_unknown_keys_is_refused(tmp_path):
    table = tmp_path / "bad.yaml"  # the unquoted comma makes "classifier on z" a second key
    table.write_text("metric: [dev.accuracy]\nrows:\n"
                     "  - {name: VSL-GG-Hier, classifier on z, config: configs/vsl/twitter_hier_labeled.yaml}\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--table", str(table),
                           "--runs", str(tmp_path), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown keys ['classifier on z']" in done.stderr and str(table) in done.stderr
