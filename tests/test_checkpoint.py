"""Checkpoints: atomic writes, safe loading, clear errors for damaged or foreign files."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch

from vsl.checkpoint import (LAST, PRIORS, CheckpointError, RunMetadata, atomic_write_bytes, load_model,
                            model_path, read_training_checkpoint, save_model, save_tensors, write_snapshot)


def _save(tmp_path):
    weights = {"layer.weight": torch.arange(6.0).reshape(2, 3)}
    save_model(tmp_path, weights, RunMetadata("vsl", {"seed": 3}, {"words": {"items": ["a"], "specials": []}}, "whitespace"))
    return weights


def test_round_trip(tmp_path):
    weights = _save(tmp_path)
    loaded, config, vocabs = load_model(tmp_path)
    torch.testing.assert_close(loaded["layer.weight"], weights["layer.weight"])
    assert config == {"seed": 3} and vocabs["words"]["items"] == ["a"]


def test_run_folders_of_earlier_versions_load_from_best_pt(tmp_path):
    weights = _save(tmp_path)
    (tmp_path / "model.pt").rename(tmp_path / "best.pt")  # a tagger run folder of vsl 0.2
    assert model_path(tmp_path) == tmp_path / "best.pt"
    torch.testing.assert_close(load_model(tmp_path)[0]["layer.weight"], weights["layer.weight"])
    save_tensors(tmp_path / "model.pt", {"layer.weight": torch.zeros(2, 3)})  # rewritten by a resumed run
    assert model_path(tmp_path) == tmp_path / "model.pt"
    assert not load_model(tmp_path)[0]["layer.weight"].any()


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_tampered_weights_are_refused(tmp_path):
    _save(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="model.pt"):
        load_model(tmp_path)


class Payload:
    """An arbitrary class: unpickling it could run code, so the loader must refuse it."""


def test_pickled_objects_are_refused(tmp_path):
    _save(tmp_path)
    torch.save({"format": 1, "weights": Payload()}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="safely"):
        load_model(tmp_path)


def test_other_format_version_is_refused(tmp_path):
    _save(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["format"] = 99
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format 99"):
        load_model(tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(tmp_path)


def test_random_state_round_trips_in_both_saved_forms():
    from vsl.optimization import random_state, restore_random_state

    torch.manual_seed(3)
    for save in (random_state, torch.get_rng_state):  # the dict, and a bare CPU state of older checkpoints
        saved = save()
        drawn = torch.rand(4)
        restore_random_state(saved)
        assert torch.equal(torch.rand(4), drawn)


def test_a_full_disk_is_named_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    atomic_write_bytes(target, b"old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match="last.pt: the disk is full .*the file there before, if any, is unchanged"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_snapshot_that_does_not_match_its_checkpoint_is_named(tmp_path):
    values = np.arange(24, dtype=np.float16).reshape(6, 4)
    snapshot = tmp_path / PRIORS / "labeled-y.mean.step3.float16"
    save_tensors(tmp_path / LAST, {"priors": {"mean": write_snapshot(snapshot, values)}})
    assert torch.equal(read_training_checkpoint(tmp_path / LAST)["priors"]["mean"], torch.from_numpy(values))

    write_snapshot(snapshot.with_name("other"), values + 1)  # another checkpoint's snapshot in its place
    os.replace(snapshot.with_name("other"), snapshot)
    with pytest.raises(CheckpointError, match=f"{snapshot}: does not match {tmp_path / LAST} .*another checkpoint"):
        read_training_checkpoint(tmp_path / LAST)
    snapshot.write_bytes(values.tobytes()[:-2])  # cut short
    with pytest.raises(CheckpointError, match=f"{snapshot}: does not match .*46 bytes"):
        read_training_checkpoint(tmp_path / LAST)
    snapshot.unlink()
    with pytest.raises(CheckpointError, match=f"{snapshot}: missing; {tmp_path / LAST} keeps its priors there"):
        read_training_checkpoint(tmp_path / LAST)
