"""Fuzzing every reader (hypothesis): random bytes, and real files cut at a random byte and
with random bytes spliced in, either parse into well-formed sentences or raise the package's
DataFormatError naming the file (and a line inside it, when one is to blame). Nothing else
escapes."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsl.data.readers import READERS, read_raw, tokenize_whitespace
from vsl.data.registry import find_data_root
from vsl.data.textio import INPUT_FORMATS, read_sentences, utf8_lines
from vsl.errors import DataFormatError

ROOT = find_data_root()
SAMPLES = {  # a real file of each format (its first 6 kB)
    "conllu": "ud/UD_English-EWT/r2.16/en_ewt-ud-dev.conllu",
    "twitter": "twitter_pos/oct27.test",
    "conll2003": "conll2003/eng.testa",
    "ptb": "ptb/wsj_full/enw.gold",
    "raw": "twitter_unlabeled/tweeteval/emoji/val_text.txt",
}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sample(kind: str) -> bytes:
    path = ROOT / SAMPLES[kind]
    if not path.is_file():
        pytest.skip(f"{path} is not under the data root")
    with path.open("rb") as handle:
        return handle.read(6000)


def _damaged(original: bytes, cut: int, splice_at: int, noise: bytes) -> bytes:
    data = original[: cut % (len(original) + 1)]
    at = splice_at % (len(data) + 1)
    return data[:at] + noise + data[at:]


def _most_lines(data: bytes) -> int:
    """An upper bound on the lines of ``data``: each \\n and each \\r may end one."""
    return data.count(b"\n") + data.count(b"\r") + 1


READ = {**READERS, "raw": read_raw, "raw-tweets": lambda path: read_raw(path, "tweet")}


def _check(kind: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.txt"
        path.write_bytes(data)
        try:
            sentences = READ[kind](path)
        except DataFormatError as err:
            assert str(err).startswith(str(path)), err
            if err.line is not None:
                assert 1 <= err.line <= _most_lines(data), (err.line, err)
            return
    assert sentences, "a reader that returns must return sentences"
    for sentence in sentences:
        assert len(sentence) > 0 and all(isinstance(w, str) and w for w in sentence.words)
        assert sentence.tags is None or len(sentence.tags) == len(sentence.words)


@pytest.mark.parametrize("kind", sorted(READ))
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(kind, data):
    _check(kind, data)


@pytest.mark.parametrize("kind", sorted(READ))
@FUZZ
@given(cut=st.integers(0, 10**6), splice_at=st.integers(0, 10**6),
       noise=st.one_of(st.just(b""), st.binary(max_size=12), st.sampled_from([b"\t", b"\n", b" ", b"\xff", b"\r"])))
def test_real_files_cut_and_spliced(kind, cut, splice_at, noise):
    sample = _sample("raw" if kind.startswith("raw") else kind)
    _check(kind, _damaged(sample, cut, splice_at, noise))


@pytest.mark.parametrize("fmt", INPUT_FORMATS)
@FUZZ
@given(data=st.binary(max_size=400))
def test_tagging_input_reader(fmt, data):
    try:
        for words in read_sentences(utf8_lines(io.BytesIO(data), "stdin"), fmt, tokenize_whitespace, "stdin"):
            assert all(isinstance(w, str) and w for w in words)
    except DataFormatError as err:
        assert str(err).startswith("stdin:") and 1 <= err.line <= _most_lines(data)


@pytest.mark.parametrize("fmt, line", [("conll", b"\t\x00\n"), ("conllu", b"1\t\tNOUN\n")])
def test_tagging_input_reader_refuses_an_empty_word_column(fmt, line):
    with pytest.raises(DataFormatError, match="stdin:1: .*word column is empty"):
        list(read_sentences(utf8_lines(io.BytesIO(line), "stdin"), fmt, tokenize_whitespace, "stdin"))
