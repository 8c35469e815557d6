"""Vocabularies of words, characters and tags, saved as plain JSON."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Iterable, Sequence

from vsl.data.readers import Sentence

PAD = "<pad>"
UNK = "<unk>"


class Vocabulary:
    """A bijection between items and contiguous ids; specials come first.

    Items outside the vocabulary map to ``UNK`` when the vocabulary has it, else raise
    ``KeyError`` (tag vocabularies are closed).
    """

    def __init__(self, items: Iterable[str], specials: Sequence[str] = (PAD, UNK)):
        self.items: list[str] = list(specials)
        self.specials = tuple(specials)
        seen = set(self.items)
        for item in items:
            if item not in seen:
                seen.add(item)
                self.items.append(item)
        self._ids = {item: i for i, item in enumerate(self.items)}
        self.unk_id = self._ids.get(UNK)

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int = 1, specials: Sequence[str] = (PAD, UNK)):
        """Items seen at least ``min_count`` times, most frequent first, ties alphabetical."""
        kept = sorted((item for item, n in counts.items() if n >= min_count),
                      key=lambda item: (-counts[item], item))
        return cls(kept, specials)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def index(self, item: str) -> int:
        found = self._ids.get(item, self.unk_id)
        if found is None:
            raise KeyError(f"{item!r} is not in this closed vocabulary of {len(self)} items")
        return found

    def encode(self, items: Iterable[str]) -> list[int]:
        return [self.index(item) for item in items]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.items[i] for i in ids]

    def to_dict(self) -> dict:
        return {"specials": list(self.specials), "items": self.items[len(self.specials):]}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        return cls(data["items"], data["specials"])

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.items == other.items and self.specials == other.specials


class Vocabularies:
    """The word, character and tag vocabularies of one model."""

    def __init__(self, words: Vocabulary, chars: Vocabulary, tags: Vocabulary):
        self.words, self.chars, self.tags = words, chars, tags

    def to_dict(self) -> dict:
        return {"words": self.words.to_dict(), "chars": self.chars.to_dict(), "tags": self.tags.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabularies":
        return cls(*(Vocabulary.from_dict(data[key]) for key in ("words", "chars", "tags")))


def build_vocabularies(labeled: Sequence[Sentence], unlabeled: Sequence[Sentence] = (),
                       evaluation: Sequence[Sentence] = (), known_words=None) -> Vocabularies:
    """Vocabularies for a run.

    Words: every word of the labeled and unlabeled training text, plus the words of the
    evaluation text that ``known_words`` (e.g. a pretrained embedding) covers - their vectors
    are learned without the labels. Characters: those of the training text. Tags: every tag
    of the labeled and evaluation sentences, so that scoring never meets an unknown tag (a
    warning lists the evaluation tags that no labeled sentence has: they can never be predicted).
    """
    training = [*labeled, *unlabeled]
    word_counts = Counter(w for s in training for w in s.words)
    if known_words is not None:
        word_counts.update(w for s in evaluation for w in s.words
                           if w not in word_counts and w in known_words)
    char_counts = Counter(c for s in training for w in s.words for c in w)
    tag_counts = Counter(t for s in [*labeled, *evaluation] if s.tags for t in s.tags)
    trained = {t for s in labeled if s.tags for t in s.tags}
    unseen = Counter(t for s in evaluation if s.tags for t in s.tags if t not in trained)
    if trained and unseen:
        listed = ", ".join(f"{tag} ({count})" for tag, count in unseen.most_common())
        warnings.warn(f"tags of the evaluation text that no labeled training sentence has, with their "
                      f"token counts: {listed}; the tagger can never predict them", stacklevel=2)
    return Vocabularies(Vocabulary.from_counts(word_counts), Vocabulary.from_counts(char_counts),
                        Vocabulary.from_counts(tag_counts, specials=()))
