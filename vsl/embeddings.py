"""Word embeddings: skip-gram training with a content-addressed cache, loading, lookup matrices.

Chen et al. (2018) initialise word embeddings with skip-gram vectors (Mikolov et al., 2013),
and Tran et al. (2016) feed pretrained vectors to the neural HMM. Training is gensim's
``Word2Vec`` with ``sg=1``; files are read by gensim's ``KeyedVectors.load_word2vec_format``.
gensim is imported by the functions that use it: it loads scipy.stats, about 1.5 s that every
command would pay at start-up, though only VSL training and vector loading need it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from vsl.checkpoint import atomic_write_bytes
from vsl.errors import DataFormatError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

# Bytes that occur in text files (as in file(1)'s heuristic); anything else marks binary data.
_TEXT_BYTES = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
_SNIFF_BYTES = 4096


def default_cache_dir() -> Path:
    """``$VSL_CACHE_DIR`` if set, else ``~/.cache/vsl/embeddings``."""
    return Path(os.environ.get("VSL_CACHE_DIR") or Path.home() / ".cache" / "vsl" / "embeddings")


def _cache_key(sentences: list[list[str]], hyperparameters: dict) -> str:
    """sha256 over the hyperparameters, gensim's major.minor version and every token.

    Sentences and tokens are length-prefixed, so that no two different corpora hash the same
    bytes (``[["ab"]]`` and ``[["a", "b"]]`` differ).
    """
    import gensim

    gensim_version = ".".join(gensim.__version__.split(".")[:2])
    digest = hashlib.sha256(json.dumps([hyperparameters, gensim_version], sort_keys=True).encode())
    for sentence in sentences:
        digest.update(len(sentence).to_bytes(8, "little"))
        for token in sentence:
            encoded = token.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


def _save_cache(vectors: KeyedVectors, path: Path) -> None:
    """Write words and vectors as one ``.npz`` (no pickle), atomically.

    word2vec files separate a word from its vector with a space, so they cannot hold the
    tokens with spaces inside that tweets contain; an array of strings can.
    """
    buffer = io.BytesIO()
    np.savez(buffer, words=np.array(vectors.index_to_key, dtype=str), vectors=vectors.vectors)
    atomic_write_bytes(path, buffer.getvalue())


def _load_cache(path: Path) -> KeyedVectors:
    from gensim.models import KeyedVectors

    with np.load(path, allow_pickle=False) as stored:
        words, matrix = stored["words"].tolist(), stored["vectors"]
    vectors = KeyedVectors(matrix.shape[1])
    vectors.add_vectors(words, matrix)
    return vectors


def train_skipgram(
    sentences: Iterable[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    min_count: int = 1,
    epochs: int = 5,
    negative: int = 5,
    seed: int = 0,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> KeyedVectors:
    """Skip-gram vectors (gensim ``Word2Vec``, ``sg=1``, negative sampling) for a tokenised corpus.

    The result is cached as ``<cache_dir>/skipgram-<key>.npz`` (words and vectors), where
    the key hashes every token and every argument but ``cache_dir`` (see :func:`_cache_key`); a
    later call with the same corpus and arguments loads that file instead of training.
    ``cache_dir`` defaults to :func:`default_cache_dir`. With ``log``, it says which it did;
    with ``progress``, training shows a bar over the epochs.

    With ``workers=1`` and a fixed ``seed``, gensim 4.4 gives bit-identical vectors in fresh
    processes whatever ``PYTHONHASHSEED`` is: it draws the initial matrix from
    ``numpy.random.default_rng(seed)`` rather than from Python's string hash, as gensim 3 did,
    and sampling uses a ``RandomState(seed)``. With ``workers > 1`` thread scheduling changes
    the order of updates, so training is not reproducible.
    """
    corpus = [list(sentence) for sentence in sentences]
    hyperparameters = {
        "dim": dim, "window": window, "min_count": min_count, "epochs": epochs,
        "negative": negative, "seed": seed, "workers": workers,
    }
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"skipgram-{_cache_key(corpus, hyperparameters)}.npz"
    if path.is_file():
        if log:
            log(f"vectors: loaded from the cache, {path}")
        return _load_cache(path)
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochBar(CallbackAny2Vec):
        def __init__(self, bar):
            self.bar = bar

        def on_epoch_end(self, model):
            self.bar.update(1)

    started = time.perf_counter()
    with tqdm(total=epochs, desc="skip-gram epochs", disable=not progress, dynamic_ncols=True) as bar:
        model = Word2Vec(
            corpus, vector_size=dim, window=window, min_count=min_count, epochs=epochs, sg=1,
            negative=negative, seed=seed, workers=workers, callbacks=[EpochBar(bar)],
        )
    _save_cache(model.wv, path)
    if log:
        log(f"vectors: {len(model.wv):,} words trained in {time.perf_counter() - started:.0f} s, cached at {path}")
    return model.wv


def _has_header(first_line: bytes) -> bool:
    """Whether a line is a word2vec header: two integers, ``count dim``."""
    fields = first_line.split()
    return len(fields) == 2 and all(field.isdigit() for field in fields)


def _check_text_rows(path: Path, header: bool) -> None:
    """Raise DataFormatError at the first text row without exactly ``dim`` values.

    ``dim`` is the header's second integer, or else the first row's value count. gensim
    broadcasts a short row over the whole vector instead of failing, so this is checked first.
    """
    width = None
    with path.open("rb") as lines:
        if header:
            width = int(lines.readline().split()[1])
        for number, line in enumerate(lines, start=2 if header else 1):
            values = line.rstrip().count(b" ")
            if not values:
                raise DataFormatError(path, "a row without vector values", number)
            width = width or values
            if values != width:
                message = f"{values} values in a row where {width} expected"
                raise DataFormatError(path, message, number)


def load_vectors(path: str | Path) -> KeyedVectors:
    """Word vectors from a word2vec binary, word2vec text, or GloVe text (headerless) file.

    A first line of two integers (``count dim``) marks word2vec; the file is read as binary if
    its name ends in ``.bin`` or its first bytes after that line are not text. Any other file is
    read as GloVe text (gensim's ``no_header=True``). Raises DataFormatError for a missing,
    empty or unparsable file, and for one with a NaN or infinite value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    with path.open("rb") as file:
        first_line = file.readline()
        sample = file.read(_SNIFF_BYTES)
    if not (first_line + sample).strip():
        raise DataFormatError(path, "empty file")
    header = _has_header(first_line)
    binary = header and (path.suffix == ".bin" or bool(sample.translate(None, _TEXT_BYTES)))
    if not binary:
        _check_text_rows(path, header)
    kind = "word2vec binary" if binary else "word2vec text" if header else "GloVe text"
    from gensim.models import KeyedVectors

    try:
        with warnings.catch_warnings():
            # With no_header, gensim 4.4 reopens the file for its second pass and never closes it.
            warnings.simplefilter("ignore", ResourceWarning)
            vectors = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=not header)
    except (ValueError, EOFError) as error:
        raise DataFormatError(path, f"cannot read as {kind}: {error}") from error
    broken = np.flatnonzero(~np.isfinite(vectors.vectors).all(axis=1))
    if broken.size:
        raise DataFormatError(path, f"NaN or infinite values in {broken.size} of its {len(vectors)} vectors, "
                                    f"the first that of {vectors.index_to_key[broken[0]]!r}")
    return vectors


def embedding_matrix(
    words: Sequence[str], vectors: KeyedVectors, scale: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, int]:
    """A float32 ``[len(words), dim]`` matrix whose row i is the vector of ``words[i]``.

    Words missing from ``vectors`` get a row drawn uniformly from ``[-scale, scale]`` by
    ``numpy.random.default_rng(seed)``; every row is drawn, so a missing word's row does not
    depend on which other words are found. Returns the matrix and the number of words found.
    """
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-scale, scale, size=(len(words), vectors.vector_size)).astype(np.float32)
    found = 0
    for row, word in enumerate(words):
        if word in vectors:
            matrix[row] = vectors[word]
            found += 1
    return matrix, found
