"""Readers for the corpora the package trains on.

Every reader takes a path and returns a list of :class:`Sentence`. Files are decoded as strict
UTF-8, one line at a time, so that any problem - bad bytes, a wrong column count, a tag with no
token, an empty file - raises :class:`~vsl.errors.DataFormatError` naming the file and the
1-based line. Readers keep words exactly as written; normalisation (digits to 0) is the
caller's choice (:func:`vsl.data.registry.load_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from vsl.data.tagging import iob1_to_bioes, split_iob1_tag
from vsl.errors import DataFormatError


@dataclass(frozen=True)
class Sentence:
    """One sentence (or tweet): its tokens and, when labeled, one tag per token."""

    words: tuple[str, ...]
    tags: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.tags is not None and len(self.tags) != len(self.words):
            raise ValueError(f"{len(self.words)} words but {len(self.tags)} tags")

    def __len__(self) -> int:
        return len(self.words)


DOCSTART = "-DOCSTART-"  # CoNLL-2003's document separator


def sentence_counts(sentences: Sequence[Sentence]) -> dict:
    """How many sentences and tokens ``sentences`` hold, as run results report them."""
    return {"sentences": len(sentences), "tokens": sum(len(s) for s in sentences)}


BYTE_ORDER_MARK = "\ufeff"


def numbered_lines(handle: BinaryIO, name: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line break) of a strict-UTF-8 byte stream. A line ends at
    ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files); a byte-order mark opening the stream is
    not text. Bytes that are not UTF-8 raise DataFormatError naming ``name`` and the line."""
    number = 0
    for index, raw in enumerate(handle):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataFormatError(name, f"invalid UTF-8 at byte {err.start}", number + 1) from None
        if index == 0:
            text = text.removeprefix(BYTE_ORDER_MARK)
        text = text.removesuffix("\n").removesuffix("\r")
        for line in text.split("\r"):
            number += 1
            yield number, line


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """:func:`numbered_lines` of the file at ``path``; a missing or empty file is a DataFormatError."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    empty = True
    with path.open("rb") as handle:
        for number, text in numbered_lines(handle, path):
            empty = False
            yield number, text
    if empty:
        raise DataFormatError(path, "file is empty")


def _blocks(path: str | Path) -> Iterator[list[tuple[int, str]]]:
    """Group the non-blank lines of a file into blank-line separated blocks."""
    block: list[tuple[int, str]] = []
    for number, text in _lines(path):
        if text.strip():
            block.append((number, text))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _require_sentences(path, sentences: list[Sentence]) -> list[Sentence]:
    if not sentences:
        raise DataFormatError(path, "no sentences found")
    return sentences


def read_conllu(path: str | Path) -> list[Sentence]:
    """Read FORM and UPOS (columns 2 and 4) of a CoNLL-U file.

    Comment lines, multiword-token ranges (``1-2``) and empty nodes (``8.1``) are skipped, as the
    UD word counts do; every other line must have the 10 tab-separated CoNLL-U columns.
    """
    sentences = []
    for block in _blocks(path):
        words, tags = [], []
        for number, text in block:
            if text.startswith("#"):
                continue
            columns = text.split("\t")
            if len(columns) != 10:
                raise DataFormatError(path, f"expected 10 tab-separated columns, found {len(columns)}", number)
            token_id, form, upos = columns[0], columns[1], columns[3]
            if "-" in token_id or "." in token_id:
                continue
            if not token_id.isdigit():
                raise DataFormatError(path, f"bad token id {token_id!r}", number)
            if not form or not upos or upos == "_":
                raise DataFormatError(path, "word line without FORM or UPOS", number)
            words.append(form)
            tags.append(upos)
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags)))
        elif any(not text.startswith("#") for _, text in block):
            raise DataFormatError(path, "sentence has no syntactic words", block[0][0])
    return _require_sentences(path, sentences)


def _read_columns(path, separator: str | None, n_columns: int, word_col: int, tag_col: int,
                  skip: Callable[[list[str]], bool] = lambda columns: False,
                  check_tag: Callable[[str], object] = lambda tag: None) -> list[Sentence]:
    """Read blank-line separated sentences of one token per line in fixed columns;
    ``check_tag`` raises ValueError for a tag the format does not allow."""
    sentences = []
    for block in _blocks(path):
        words, tags = [], []
        for number, text in block:
            columns = text.split(separator)
            if skip(columns):
                continue
            if len(columns) != n_columns:
                raise DataFormatError(path, f"expected {n_columns} columns, found {len(columns)}", number)
            word, tag = columns[word_col], columns[tag_col]
            if not word:
                raise DataFormatError(path, "tag without a token", number)
            if not tag:
                raise DataFormatError(path, "token without a tag", number)
            try:
                check_tag(tag)
            except ValueError as err:
                raise DataFormatError(path, str(err), number) from None
            words.append(word)
            tags.append(tag)
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags)))
    return _require_sentences(path, sentences)


def read_twitter(path: str | Path) -> list[Sentence]:
    """Read the ark Twitter POS format: ``token<TAB>tag`` per line, a blank line between tweets."""
    return _read_columns(path, "\t", 2, 0, 1)


def read_ptb(path: str | Path) -> list[Sentence]:
    """Read the ``word TAG`` format of ``ptb/wsj_full/enw.gold`` (one space, blank line between
    sentences)."""
    return _read_columns(path, " ", 2, 0, 1)


def read_conll2003(path: str | Path) -> list[Sentence]:
    """Read CoNLL-2003 NER (``word POS chunk NER``), skip ``-DOCSTART-``, convert IOB1 to BIOES."""
    iob1 = _read_columns(path, " ", 4, 0, 3, skip=lambda columns: columns[0] == DOCSTART,
                         check_tag=split_iob1_tag)
    return [Sentence(sentence.words, iob1_to_bioes(sentence.tags)) for sentence in iob1]


@lru_cache(maxsize=1)
def _tweet_tokenizer():
    from nltk.tokenize import TweetTokenizer

    return TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False)


_INVISIBLE = str.maketrans("", "", "\ufe0e\ufe0f\u200d")


def tokenize_tweet(text: str) -> list[str]:
    """Split a raw tweet into tokens with NLTK's ``TweetTokenizer``.

    Emoji variation selectors and zero-width joiners are removed first: the TweetEval text has
    its emoji deleted but these left behind, and alone they are not tokens.
    It keeps @mentions, #hashtags, URLs, emoticons and contractions ("I'm", "won't") whole,
    as the ark Twitter POS annotation does; unlike ark's twokenize it splits repeated
    punctuation ("!!!" -> "!", "!", "!").
    """
    return _tweet_tokenizer().tokenize(text.translate(_INVISIBLE))


@lru_cache(maxsize=1)
def _treebank_tokenizer():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


def tokenize_treebank(text: str) -> list[str]:
    """Split running text (news) into Penn Treebank tokens with NLTK's ``TreebankWordTokenizer``:
    punctuation split off ("rose," -> "rose", ","), contractions split ("don't" -> "do",
    "n't"), as CoNLL-2003 and WSJ are tokenized. Quotes become `` and ''."""
    return _treebank_tokenizer().tokenize(text)


def tokenize_whitespace(text: str) -> list[str]:
    """Split pre-tokenized text on whitespace."""
    return text.split()


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "whitespace": tokenize_whitespace,
    "tweet": tokenize_tweet,
    "treebank": tokenize_treebank,
}


def read_raw(path: str | Path, tokenizer: str = "whitespace") -> list[Sentence]:
    """Read unlabeled text, one sentence or tweet per line; blank lines separate nothing and are
    not sentences."""
    tokenize = TOKENIZERS[tokenizer]
    sentences = []
    for _, text in _lines(path):
        words = tokenize(text)
        if words:
            sentences.append(Sentence(tuple(words)))
    return _require_sentences(path, sentences)


READERS: dict[str, Callable[[str | Path], list[Sentence]]] = {
    "conllu": read_conllu,
    "twitter": read_twitter,
    "conll2003": read_conll2003,
    "ptb": read_ptb,
}
