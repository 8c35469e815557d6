"""Tag-scheme conversions and word normalisation shared by readers and taggers."""

from __future__ import annotations

import re
from typing import Sequence

_DIGIT = re.compile(r"\d")


def normalize_word(word: str) -> str:
    """Map every digit to ``0`` and keep the case, as both papers' preprocessing does."""
    return _DIGIT.sub("0", word)


def split_iob1_tag(tag: str) -> tuple[str, str]:
    """``"I-PER"`` -> ``("I", "PER")``, ``"O"`` -> ``("O", "")``; anything else is a ValueError."""
    if tag == "O":
        return "O", ""
    prefix, sep, entity = tag.partition("-")
    if not sep or not entity or prefix not in {"B", "I"}:
        raise ValueError(f"{tag!r} is not an IOB1 tag (O, I-TYPE or B-TYPE)")
    return prefix, entity


def iob1_to_bioes(tags: Sequence[str]) -> tuple[str, ...]:
    """Convert IOB1 tags (CoNLL-2003 on disk) to BIOES.

    In IOB1 a span starts with ``I-X`` unless it directly follows another ``X`` span, in which
    case it starts with ``B-X``. Spans are first delimited, then written as ``S-X`` (one token)
    or ``B-X I-X ... E-X``.
    """
    spans: list[tuple[int, int, str]] = []  # [start, end) and type
    previous = ""
    for position, tag in enumerate(tags):
        prefix, entity = split_iob1_tag(tag)
        if prefix == "O":
            previous = ""
            continue
        if prefix == "B" or entity != previous:
            spans.append((position, position + 1, entity))
        else:
            start, _, _ = spans[-1]
            spans[-1] = (start, position + 1, entity)
        previous = entity
    bioes = ["O"] * len(tags)
    for start, end, entity in spans:
        if end - start == 1:
            bioes[start] = f"S-{entity}"
            continue
        bioes[start] = f"B-{entity}"
        for inside in range(start + 1, end - 1):
            bioes[inside] = f"I-{entity}"
        bioes[end - 1] = f"E-{entity}"
    return tuple(bioes)
