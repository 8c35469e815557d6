"""Turning sentences into padded, masked, length-bucketed tensor batches.

Characters are batched by word *type*: a batch carries each distinct word's characters once
(``chars``) and, per token, the row of its type (``types``), so the character encoder runs once
over every word of the batch with no per-sentence loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator, Sequence

import numpy as np
import torch

from vsl.data.readers import Sentence
from vsl.data.vocab import Vocabularies


@dataclass
class Batch:
    """A padded batch. ``B`` sentences, ``T`` the longest length, ``U`` distinct words,
    ``L`` the longest word in characters."""

    words: torch.Tensor  # (B, T) word ids, 0 at padding
    mask: torch.Tensor  # (B, T) bool, True at real tokens
    lengths: torch.Tensor  # (B,)
    types: torch.Tensor  # (B, T) row of each token in ``chars``
    chars: torch.Tensor  # (U, L) character ids, 0 at padding
    char_lengths: torch.Tensor  # (U,)
    indices: torch.Tensor  # (B,) position of each sentence in its dataset
    tags: torch.Tensor | None = None  # (B, T) tag ids, 0 at padding

    def to(self, device) -> "Batch":
        return Batch(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                        for f in fields(self)})

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def mask_in(self, width: int) -> torch.Tensor:
        """The mask padded (with False) to ``width`` positions, e.g. inside a stacked batch."""
        return _pad_to(self.mask, width)

    def describe(self) -> str:
        """Which sentences the batch holds, for error reports."""
        return "sentences " + ", ".join(map(str, self.indices.tolist()))


def _pad_to(tensor: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(tensor, (0, width - tensor.shape[1]))


def stack_batches(first: Batch, second: Batch) -> Batch:
    """One batch holding the rows of ``first`` then those of ``second`` (padded to the longer
    sentence and word), so that one encoder pass serves both; ``indices`` keep each row's
    position in its own dataset. Tags are kept only when both batches carry them."""
    width = max(first.words.shape[1], second.words.shape[1])
    letters = max(first.chars.shape[1], second.chars.shape[1])
    both = first.tags is not None and second.tags is not None
    return Batch(
        words=torch.cat([_pad_to(first.words, width), _pad_to(second.words, width)]),
        mask=torch.cat([_pad_to(first.mask, width), _pad_to(second.mask, width)]),
        lengths=torch.cat([first.lengths, second.lengths]),
        types=torch.cat([_pad_to(first.types, width), _pad_to(second.types, width) + first.chars.shape[0]]),
        chars=torch.cat([_pad_to(first.chars, letters), _pad_to(second.chars, letters)]),
        char_lengths=torch.cat([first.char_lengths, second.char_lengths]),
        indices=torch.cat([first.indices, second.indices]),
        tags=torch.cat([_pad_to(first.tags, width), _pad_to(second.tags, width)]) if both else None,
    )


class Collator:
    """Builds :class:`Batch` objects from sentences with fixed vocabularies."""

    def __init__(self, vocabs: Vocabularies, max_word_length: int | None = None):
        self.vocabs = vocabs
        self.max_word_length = max_word_length
        self._chars: dict[str, list[int]] = {}

    def _char_ids(self, word: str) -> list[int]:
        ids = self._chars.get(word)
        if ids is None:
            ids = self.vocabs.chars.encode(word[: self.max_word_length] if self.max_word_length else word)
            self._chars[word] = ids
        return ids

    def __call__(self, sentences: Sequence[Sentence], indices: Sequence[int], with_tags: bool = True) -> Batch:
        if any(len(s) == 0 for s in sentences):
            raise ValueError("cannot batch an empty sentence")
        size, longest = len(sentences), max(len(s) for s in sentences)
        words = np.zeros((size, longest), dtype=np.int64)
        types = np.zeros((size, longest), dtype=np.int64)
        tags = np.zeros((size, longest), dtype=np.int64) if with_tags else None
        type_rows: dict[str, int] = {}
        for row, sentence in enumerate(sentences):
            n = len(sentence)
            words[row, :n] = self.vocabs.words.encode(sentence.words)
            types[row, :n] = [type_rows.setdefault(w, len(type_rows)) for w in sentence.words]
            if with_tags:
                if sentence.tags is None:
                    raise ValueError(f"sentence {indices[row]} has no tags")
                tags[row, :n] = self.vocabs.tags.encode(sentence.tags)
        char_ids = [self._char_ids(word) for word in type_rows]
        chars = np.zeros((len(char_ids), max(len(c) for c in char_ids)), dtype=np.int64)
        for row, ids in enumerate(char_ids):
            chars[row, : len(ids)] = ids
        lengths = torch.tensor([len(s) for s in sentences])
        return Batch(
            words=torch.from_numpy(words),
            mask=torch.arange(longest)[None, :] < lengths[:, None],
            lengths=lengths,
            types=torch.from_numpy(types),
            chars=torch.from_numpy(chars),
            char_lengths=torch.tensor([len(c) for c in char_ids]),
            indices=torch.tensor(list(indices)),
            tags=None if tags is None else torch.from_numpy(tags),
        )


def bucketed_order(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None,
                   pool: int = 50) -> list[list[int]]:
    """Group sentence indices into batches of similar length.

    With ``rng``, sentences are shuffled, sorted by length within pools of ``pool`` batches,
    and the batches shuffled; without it, all sentences are sorted by length (for evaluation).
    Every index appears in exactly one batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start:start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def random_order(n_sentences: int, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Sentence indices in batches drawn uniformly at random, with no grouping by length (the
    authors' VSL code); every index appears in exactly one batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    order = rng.permutation(n_sentences)
    return [order[i:i + batch_size].tolist() for i in range(0, n_sentences, batch_size)]


BATCH_ORDERS = {"bucketed": bucketed_order,  # (lengths, batch_size, rng) -> batches of indices
                "random": lambda lengths, batch_size, rng: random_order(len(lengths), batch_size, rng)}


def iterate_batches(sentences: Sequence[Sentence], collate: Collator, batch_size: int,
                    rng: np.random.Generator | None = None, with_tags: bool = True) -> Iterator[Batch]:
    """One pass over ``sentences`` in bucketed batches (shuffled when ``rng`` is given)."""
    for group in bucketed_order([len(s) for s in sentences], batch_size, rng):
        yield collate([sentences[i] for i in group], group, with_tags)


class BatchStream:
    """Endless shuffled batches, epoch after epoch, for step-based training: of similar length
    (``order="bucketed"``, :func:`bucketed_order`) or drawn at random (``"random"``).

    Epoch ``e`` is ordered by a generator seeded with ``(*seed, e)`` (``seed`` an integer or a
    tuple of them, e.g. (run seed, rank, stream)), so the stream's position is
    two integers: :meth:`state_dict` saves them and :meth:`load_state_dict` continues from there
    without replaying the batches before it (resuming a killed run).
    """

    def __init__(self, sentences: Sequence[Sentence], collate: Collator, batch_size: int,
                 seed: int | Sequence[int], with_tags: bool = True, order: str = "bucketed"):
        if not sentences:
            raise ValueError("a batch stream needs at least one sentence")
        if order not in BATCH_ORDERS:
            raise ValueError(f"batch order {order!r} is not one of {', '.join(BATCH_ORDERS)}")
        self._batches = BATCH_ORDERS[order]
        self.sentences, self.collate, self.batch_size = sentences, collate, batch_size
        self.seed, self.with_tags = (seed,) if isinstance(seed, int) else tuple(seed), with_tags
        self._lengths = [len(s) for s in sentences]
        self.epoch, self.position = 0, 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> list[list[int]]:
        return self._batches(self._lengths, self.batch_size, np.random.default_rng([*self.seed, self.epoch]))

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> Batch:
        if self.position == len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._epoch_order()
        group = self._order[self.position]
        self.position += 1
        return self.collate([self.sentences[i] for i in group], group, self.with_tags)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._epoch_order()
        if not 0 <= self.position <= len(self._order):
            raise ValueError(f"batch position {self.position} is outside epoch {self.epoch}'s "
                             f"{len(self._order)} batches")
