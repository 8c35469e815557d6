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

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "vsl").glob("*.yaml")), ids=lambda p: p.name)
def test_vsl_configs_load(path):
    config = RunConfig.load(path)
    assert config.data and config.latent in ("none", "gauss", "flat", "hier")


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "hmm").glob("*.yaml")), ids=lambda p: p.name)
def test_hmm_configs_load(path):
    assert HmmConfig.load(path).resolved().states == 45


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "tables").glob("*.yaml")), ids=lambda p: p.name)
def test_tables_list_existing_configs(path, tmp_path):
    rows = yaml.safe_load(path.read_text())["rows"]
    assert all((ROOT / row["config"]).is_file() for row in rows)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--table", str(path), "--seeds", "1",
                           "--runs", str(tmp_path), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stderr.splitlines() if "--config" in line]) == len(rows)
