"""Reading text to tag and writing tagged text (``scripts/tag.py``).

Input is streamed sentence by sentence, so a file of any size (or stdin) is tagged in constant
memory:

* ``text``: one sentence per line, split by the model's tokenizer; an empty line is an empty
  sentence (kept, so the output lines up with the input).
* ``conll``: one token per line, the word in the first column (tab- or space-separated), a
  blank line after each sentence. A line that starts with ``#`` is a token (hashtags and the
  ``#`` symbol are words in Twitter and CoNLL data) unless it is the ``# sent_id = N`` line that
  the ``conll`` output writes, so tagged output reads back; CoNLL-2003's ``-DOCSTART-`` lines
  are skipped.
* ``conllu``: CoNLL-U; ``#`` lines are comments; the word is the FORM column; multiword-token
  ranges (``1-2``) and empty nodes (``1.1``) are skipped.

Output formats: ``conll`` (``# sent_id = N``, then ``word<TAB>tag`` lines, then a blank line;
an empty sentence is its comment line alone), ``tsv`` (a ``sentence token word tag`` header and
one row per token) and ``json`` (one object per sentence: ``{"id", "words", "tags"}``).
Sentences are numbered from 1 in input order.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence, TextIO

from vsl.data.readers import DOCSTART, numbered_lines
from vsl.errors import DataFormatError

INPUT_FORMATS = ("text", "conll", "conllu")
OUTPUT_FORMATS = ("conll", "tsv", "json")
SENT_ID = "# sent_id = "  # the comment that opens each sentence of the conll output


def _conll_word(fields: list[str], conllu: bool, name: str, number: int) -> str | None:
    if not conllu:
        return _nonempty(fields[0], name, number)
    if len(fields) < 2:
        raise DataFormatError(name, f"a CoNLL-U token line needs at least 2 columns, found {len(fields)}", number)
    token_id = fields[0]
    if "-" in token_id or "." in token_id:
        return None
    if not token_id.isdigit():
        raise DataFormatError(name, f"token id {token_id!r} is not a number", number)
    return _nonempty(fields[1], name, number)


def _nonempty(word: str, name: str, number: int) -> str:
    if not word:
        raise DataFormatError(name, "the word column is empty", number)
    return word


def utf8_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """The lines of a byte stream as :func:`~vsl.data.readers.numbered_lines` splits them (any
    line break, no byte-order mark, UTF-8 errors naming ``name`` and the line)."""
    return (text for _, text in numbered_lines(handle, name))


def read_sentences(lines: Iterable[str], fmt: str, tokenize: Callable[[str], list[str]],
                   name: str = "<stdin>") -> Iterator[list[str]]:
    """Yield the token lists of ``lines`` (see :func:`utf8_lines`) in order; ``name`` labels
    errors."""
    if fmt not in INPUT_FORMATS:
        raise ValueError(f"input format {fmt!r} is not one of {', '.join(INPUT_FORMATS)}")
    if fmt == "text":
        for line in lines:
            yield tokenize(line)
        return
    comment = SENT_ID if fmt == "conll" else "#"
    words: list[str] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            if words:
                yield words
                words = []
            continue
        if text.startswith(comment):
            continue
        fields = text.split("\t") if fmt == "conllu" or "\t" in text else text.split()
        if fmt == "conll" and fields[0] == DOCSTART:
            continue
        word = _conll_word(fields, fmt == "conllu", name, number)
        if word is not None:
            words.append(word)
    if words:
        yield words


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def write_tagged(handle: TextIO, fmt: str, first_id: int, sentences: Sequence[Sequence[str]],
                 tags: Sequence[Sequence[str]]) -> None:
    """Write tagged sentences numbered from ``first_id`` in the output format ``fmt``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"output format {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    for number, (words, labels) in enumerate(zip(sentences, tags, strict=True), start=first_id):
        if fmt == "json":
            handle.write(json.dumps({"id": number, "words": list(words), "tags": list(labels)},
                                    ensure_ascii=False) + "\n")
        elif fmt == "tsv":
            handle.writelines(f"{number}\t{position}\t{word}\t{label}\n"
                              for position, (word, label) in enumerate(zip(words, labels), start=1))
        else:
            handle.write(f"{SENT_ID}{number}\n")
            handle.writelines(f"{word}\t{label}\n" for word, label in zip(words, labels))
            handle.write("\n")


TSV_HEADER = "sentence\ttoken\tword\ttag\n"
