"""Saving and loading models: weights as a torch ``state_dict`` read back with
``weights_only=True``, settings and vocabularies as JSON; every file written atomically
(temporary file in the same folder, fsync, rename), so an interrupted save leaves the previous
file intact."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

import numpy as np
import torch

from vsl import __version__
from vsl.data.readers import TOKENIZERS
from vsl.errors import VslError

FORMAT_VERSION = 1
LAST = "last.pt"  # a run folder's training checkpoint, what --resume continues from
MODEL = "model.pt"  # a run folder's trained model: the best on dev (taggers) or the last (HMMs)
MODEL_BEFORE_0_3 = "best.pt"  # what tagger run folders of vsl 0.2 and earlier called MODEL
RESULTS = "results.json"  # a run folder's scores, written when the run ends
PRIORS = "priors"  # a run folder's prior stores kept on disk and the snapshots of them that LAST refers to
SNAPSHOT = "snapshot"  # the key of a snapshot reference (write_snapshot) in a training checkpoint
_CHUNK = 16 * 2**20  # bytes a snapshot is written and checked in at a time


class CheckpointError(VslError):
    """A checkpoint that is missing, from an incompatible version, or damaged."""


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A file to write that replaces ``path`` when the ``with`` block ends, so that readers see
    the old file or the new one, never half; a full disk is a CheckpointError that says so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckpointError(f"{path}: the disk is full ({err.strerror}); the file there before, "
                                  "if any, is unchanged") from None
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as out:
        out.write(data)


def atomic_write_json(path: str | Path, value) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def save_tensors(path: str | Path, tensors: dict) -> None:
    """Write a (nested) dict of tensors atomically, tagged with the checkpoint format."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, "weights": tensors}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_tensors(path: str | Path) -> dict:
    """Read back :func:`save_tensors` with ``weights_only=True``: tensors and containers only."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as err:  # torch raises several types for damaged or unsafe files
        raise CheckpointError(f"{path}: cannot be loaded safely ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION or "weights" not in payload:
        raise CheckpointError(f"{path}: not a vsl checkpoint of format {FORMAT_VERSION}")
    return payload["weights"]


def write_snapshot(path: str | Path, array: np.ndarray) -> dict:
    """Write the bytes of the C-contiguous ``array`` (e.g. a memory map) to ``path`` atomically,
    a chunk at a time; returns what a training checkpoint keeps in the array's place: the
    file's name (in the checkpoint's :data:`PRIORS` folder), shape, dtype and CRC-32, which
    :func:`read_training_checkpoint` checks."""
    data, crc = array.reshape(-1).view(np.uint8), 0
    with atomic_file(path) as out:
        for start in range(0, len(data), _CHUNK):
            chunk = data[start:start + _CHUNK]
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    return {SNAPSHOT: Path(path).name, "shape": list(array.shape), "dtype": str(array.dtype), "crc32": crc}


def open_snapshot(checkpoint: Path, reference: dict) -> torch.Tensor:
    """The array a :func:`write_snapshot` ``reference`` in the file ``checkpoint`` stands for,
    memory-mapped (copy-on-write: the snapshot never changes) once its size and CRC-32 are
    checked; a missing or different file is a CheckpointError naming it."""
    path = checkpoint.parent / PRIORS / reference[SNAPSHOT]
    dtype, shape = np.dtype(reference["dtype"]), tuple(reference["shape"])
    expected, size, crc = math.prod(shape) * dtype.itemsize, 0, 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                size, crc = size + len(chunk), zlib.crc32(chunk, crc)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; {checkpoint} keeps its priors there") from None
    if size != expected or crc != reference["crc32"]:
        raise CheckpointError(f"{path}: does not match {checkpoint} ({size:,} bytes with CRC-32 {crc:08x}, "
                              f"expected {expected:,} with {reference['crc32']:08x}); "
                              "it was changed or belongs to another checkpoint")
    return torch.from_numpy(np.memmap(path, dtype, "c", shape=shape))


def read_training_checkpoint(path: str | Path) -> dict:
    """:func:`load_tensors` of a training checkpoint with each snapshot reference in it
    (:func:`write_snapshot`) replaced by the array it stands for (:func:`open_snapshot`)."""
    path = Path(path)

    def resolve(value) -> None:
        for key, item in value.items():
            if isinstance(item, dict) and SNAPSHOT in item:
                value[key] = open_snapshot(path, item)
            elif isinstance(item, dict):
                resolve(item)

    checkpoint = load_tensors(path)
    resolve(checkpoint)
    return checkpoint


class RunMetadata(NamedTuple):
    """What a model folder says about its model besides the weights."""

    family: str  # "vsl" (BiGRU baseline and VSL models) or "hmm"
    config: dict  # the run's settings
    vocabs: dict  # its vocabularies (vsl.data.vocab.Vocabularies.to_dict)
    tokenizer: str  # how raw text becomes its tokens (a name in vsl.data.readers.TOKENIZERS)


def save_metadata(directory: str | Path, metadata: RunMetadata) -> None:
    """Write ``config.json`` (family, tokenizer, settings) and ``vocab.json`` into ``directory``."""
    directory = Path(directory)
    atomic_write_json(directory / "config.json", {"format": FORMAT_VERSION, "vsl_version": __version__,
                                                  "family": metadata.family, "tokenizer": metadata.tokenizer,
                                                  "config": metadata.config})
    atomic_write_json(directory / "vocab.json", metadata.vocabs)


def save_model(directory: str | Path, state_dict: dict, metadata: RunMetadata) -> None:
    """Write ``model.pt`` (weights) beside :func:`save_metadata`'s files."""
    save_tensors(Path(directory) / MODEL, state_dict)
    save_metadata(directory, metadata)


def model_path(directory: str | Path) -> Path:
    """Where a run folder keeps its trained model: ``model.pt``, or ``best.pt`` in a tagger run
    folder of vsl 0.2 or earlier."""
    directory = Path(directory)
    older = directory / MODEL_BEFORE_0_3
    return older if older.is_file() and not (directory / MODEL).is_file() else directory / MODEL


def read_json(path: Path):
    """The JSON value in ``path``; a missing or damaged file is a CheckpointError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: damaged JSON ({err})") from None


def load_metadata(directory: str | Path, family: str | None = None) -> RunMetadata:
    """Read back what :func:`save_metadata` wrote; with ``family``, a folder of another model
    family is a CheckpointError."""
    directory = Path(directory)
    meta = read_json(directory / "config.json")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{directory / 'config.json'}: not a run's metadata (a JSON object)")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{directory / 'config.json'}: checkpoint format {meta.get('format')!r}, "
                              f"this vsl {__version__} reads format {FORMAT_VERSION}")
    if meta.get("family") not in ("vsl", "hmm") or not isinstance(meta.get("config"), dict) \
            or not isinstance(meta.get("tokenizer"), str):
        raise CheckpointError(f"{directory / 'config.json'}: no model family, tokenizer and settings")
    if meta["tokenizer"] not in TOKENIZERS:
        raise CheckpointError(f"{directory / 'config.json'}: tokenizer {meta['tokenizer']!r} is not one of "
                              f"{', '.join(TOKENIZERS)}")
    if family is not None and meta["family"] != family:
        raise CheckpointError(f"{directory}: holds a {meta['family']} model, not a {family} one")
    return RunMetadata(meta["family"], meta["config"], read_json(directory / "vocab.json"), meta["tokenizer"])


def load_training_checkpoint(directory: str | Path, vocabs: dict, name: str = LAST) -> dict:
    """The training checkpoint ``name`` (by default ``last.pt``) of a run folder, provided its
    saved vocabularies equal ``vocabs`` (those its settings rebuild now: a changed dataset or
    split would misplace every id)."""
    if load_metadata(directory).vocabs != vocabs:
        raise CheckpointError(f"{directory}: its vocabularies differ from the ones its settings give now")
    return read_training_checkpoint(Path(directory) / name)


def load_weights(module, path: str | Path):
    """Load the weights at ``path`` (:func:`save_tensors`) into ``module``; weights of another
    shape than the module's are a CheckpointError. Returns the module."""
    try:
        module.load_state_dict(load_tensors(path))
    except RuntimeError as err:
        raise CheckpointError(f"{path}: does not fit the model its config.json describes ({err})") from None
    return module


def load_model(directory: str | Path) -> tuple[dict, dict, dict]:
    """Read back (weights, config, vocabularies) saved by :func:`save_model`."""
    metadata = load_metadata(directory)
    return load_tensors(model_path(directory)), metadata.config, metadata.vocabs
