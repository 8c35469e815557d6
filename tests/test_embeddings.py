"""Tests of vsl.embeddings: skip-gram training and its cache, vector files, lookup matrices."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import gensim.models
import numpy as np
import pytest
from gensim.models import KeyedVectors

from vsl import embeddings
from vsl.errors import DataFormatError

REPO = Path(__file__).resolve().parents[1]
SMALL = {"dim": 8, "window": 2, "epochs": 2}


def _corpus(n_sentences=40, seed=1):
    """A few dozen short sentences over a 20-word vocabulary."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20)]
    return [[rng.choice(vocab) for _ in range(rng.randint(3, 7))] for _ in range(n_sentences)]


def test_train_skipgram_vectors(tmp_path):
    vectors = embeddings.train_skipgram(_corpus(), cache_dir=tmp_path, **SMALL)
    assert isinstance(vectors, KeyedVectors)
    assert vectors.vector_size == 8
    assert set(vectors.index_to_key) == {w for s in _corpus() for w in s}


def test_second_call_loads_the_cache(tmp_path, monkeypatch):
    first = embeddings.train_skipgram(iter(_corpus()), cache_dir=tmp_path, **SMALL)
    [cached] = tmp_path.iterdir()
    assert cached.name.startswith("skipgram-") and cached.suffix == ".npz"

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(gensim.models, "Word2Vec", no_training)
    second = embeddings.train_skipgram(_corpus(), cache_dir=tmp_path, **SMALL)
    assert second.index_to_key == first.index_to_key
    np.testing.assert_array_equal(second.vectors, first.vectors)


def test_cache_keeps_tokens_with_spaces(tmp_path):
    corpus = [["a b", "<3 u", "c"], ["c", "a b"]] * 5
    embeddings.train_skipgram(corpus, cache_dir=tmp_path, **SMALL)
    again = embeddings.train_skipgram(corpus, cache_dir=tmp_path, **SMALL)
    assert set(again.index_to_key) == {"a b", "<3 u", "c"}


def test_cache_key_separates_tokens_and_hyperparameters():
    key = embeddings._cache_key
    assert key([["ab"]], {"dim": 8}) != key([["a", "b"]], {"dim": 8})
    assert key([["a"], ["b"]], {"dim": 8}) != key([["a", "b"]], {"dim": 8})
    assert key([["a"]], {"dim": 8}) != key([["a"]], {"dim": 9})


def test_cache_dir_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VSL_CACHE_DIR", str(tmp_path))
    assert embeddings.default_cache_dir() == tmp_path
    embeddings.train_skipgram(_corpus(10), **SMALL)
    assert len(list(tmp_path.glob("skipgram-*.npz"))) == 1
    monkeypatch.delenv("VSL_CACHE_DIR")
    assert embeddings.default_cache_dir() == Path.home() / ".cache" / "vsl" / "embeddings"


_TRAIN_IN_FRESH_PROCESS = """
import json, sys
from vsl.embeddings import train_skipgram
train_skipgram(json.load(open(sys.argv[1])), cache_dir=sys.argv[2], dim=8, window=2, epochs=2)
"""


def test_training_is_deterministic_across_hash_seeds(tmp_path):
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps(_corpus()))
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-c", _TRAIN_IN_FRESH_PROCESS, str(corpus_file), str(out)],
            env=env, check=True, cwd=REPO,
        )
        [cached] = out.iterdir()
        outputs.append((cached.name, cached.read_bytes()))
    assert outputs[0] == outputs[1]


def _small_vectors():
    vectors = KeyedVectors(vector_size=3)
    vectors.add_vectors(["cat", "dog"], np.array([[0.5, -1.0, 2.0], [0.25, 0.0, -3.5]]))
    return vectors


@pytest.mark.parametrize("name", ["vectors.bin", "vectors.w2v"], ids=["bin-suffix", "sniffed"])
def test_load_word2vec_binary(tmp_path, name):
    path = tmp_path / name
    _small_vectors().save_word2vec_format(path, binary=True)
    loaded = embeddings.load_vectors(path)
    np.testing.assert_array_equal(loaded["dog"], [0.25, 0.0, -3.5])


def test_load_word2vec_text(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("2 3\ncat 0.5 -1.0 2.0\ndog 0.25 0.0 -3.5\n")
    loaded = embeddings.load_vectors(path)
    assert loaded.index_to_key == ["cat", "dog"]
    np.testing.assert_array_equal(loaded["cat"], [0.5, -1.0, 2.0])


def test_load_glove_text(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("cat 0.5 -1.0 2.0\ndog 0.25 0.0 -3.5\n")
    loaded = embeddings.load_vectors(path)
    assert loaded.index_to_key == ["cat", "dog"]
    np.testing.assert_array_equal(loaded["dog"], [0.25, 0.0, -3.5])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"\n \n", "empty file"),
        ("words.txt", b"hello world this\nis not vectors\n", "cannot read as GloVe text"),
        ("garbage.bin", bytes(range(256)) * 4, ":1: a row without vector values"),
        ("binary-noise.bin", b"3 2\n" + bytes(range(256)), "cannot read as word2vec binary"),
        ("short.txt", b"3 2\ncat 0.1 0.2\n", "cannot read as word2vec text"),
        ("ragged.txt", b"2 2\ncat 0.1 0.2\ndog 0.3\n", ":3: 1 values in a row where 2"),
        ("ragged-glove.txt", b"cat 0.1 0.2\ndog 0.3\n", ":2: 1 values in a row where 2"),
        ("truncated.bin", b"3 2\n", "cannot read as word2vec binary"),
        ("nan.txt", b"2 2\ncat 0.1 0.2\ndog nan nan\n", "NaN or infinite values in 1 of its 2 vectors, the first that of 'dog'"),
        ("inf-glove.txt", b"cat inf 0.2\ndog 0.1 0.2\n", "the first that of 'cat'"),
    ],
)
def test_unreadable_files_raise(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        embeddings.load_vectors(path)
    assert caught.value.path == str(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        embeddings.load_vectors(tmp_path / "absent.txt")


def test_embedding_matrix():
    matrix, found = embeddings.embedding_matrix(["dog", "unk", "cat", "zzz"], _small_vectors())
    assert matrix.dtype == np.float32 and matrix.shape == (4, 3)
    assert found == 2
    np.testing.assert_array_equal(matrix[0], [0.25, 0.0, -3.5])
    np.testing.assert_array_equal(matrix[2], [0.5, -1.0, 2.0])
    assert np.all(np.abs(matrix[[1, 3]]) <= 0.1)


def test_embedding_matrix_random_rows_follow_the_seed():
    words = ["unk", "cat", "other"]
    same, _ = embeddings.embedding_matrix(words, _small_vectors(), scale=0.5, seed=3)
    again, _ = embeddings.embedding_matrix(words, _small_vectors(), scale=0.5, seed=3)
    other, _ = embeddings.embedding_matrix(words, _small_vectors(), scale=0.5, seed=4)
    np.testing.assert_array_equal(same, again)
    assert not np.array_equal(same[0], other[0])
    assert np.all(np.abs(same[[0, 2]]) <= 0.5)
