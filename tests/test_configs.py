"""Every shipped experiment config loads as its run settings, and every table's rows point at
configs that exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hmm.config import HmmConfig
from vsl.config import RunConfig
from vsl.errors import VslError
from vsl.recipe import check_config

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


@pytest.mark.parametrize("key, value, expected", [
    ("freeze_embeddings", "no", "freeze_embeddings must be true or false or null; got 'no'"),
    ("max_steps", 20.7, "max_steps must be an integer; got 20.7"),
    ("lr", True, "lr must be a number; got True"),
    ("vector_text", "more.txt", "vector_text must be a list of strings"),
    ("patience", "10", "patience must be an integer or null"),
])
def test_a_setting_of_the_wrong_type_is_refused_naming_file_and_key(tmp_path, key, value, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({key: value}), encoding="utf-8")
    with pytest.raises(VslError, match=re.escape(f"{path}: setting {expected}")):
        RunConfig.load(path)


def test_settings_of_the_right_type_load():
    config = RunConfig.from_dict({"lr": 1, "patience": None, "freeze_embeddings": False,
                                  "vector_text": ["a.txt", "ptb"], "unlabeled_weight": 0.5})
    assert config.lr == 1 and config.vector_text == ["a.txt", "ptb"] and config.freeze_embeddings is False


def test_a_saved_config_that_predates_a_changed_default_keeps_its_old_value(tmp_path):
    saved = RunConfig().to_dict()
    del saved["decoder"]  # written before the setting existed: the free decoder was the only one
    assert RunConfig.from_saved(saved).decoder == "free"
    assert RunConfig.from_saved({**saved, "decoder": "tied"}).decoder == "tied"
    assert RunConfig.from_dict({}).decoder == "tied"  # a new config takes the new default
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"family": "vsl", "config": saved}), encoding="utf-8")
    assert RunConfig.load(path).decoder == "free"
