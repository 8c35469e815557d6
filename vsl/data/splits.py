"""Seeded, disjoint labeled / unlabeled splits of a training set (Chen et al. 2018, sec. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathlib import Path

from vsl.data.readers import Sentence, read_raw
from vsl.data.registry import Corpus, find_data_root, load_dataset, normalize_sentences, resolve_dataset
from vsl.errors import DatasetNotFoundError, SettingError


@dataclass
class LabeledSplit:
    """The labeled part of train and the unlabeled sentences (tags removed) used beside it."""

    labeled: list[Sentence]
    unlabeled: list[Sentence]
    from_train: int  # how many unlabeled sentences were taken from train; the rest is raw text


def split_train(train: list[Sentence], labeled_fraction: float, unlabeled_fraction: float,
                seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """Draw ``labeled_fraction`` of ``train`` as labeled and a disjoint ``unlabeled_fraction``
    as unlabeled, by a permutation seeded with ``seed``; both keep the file order."""
    if not 0 < labeled_fraction <= 1 or not 0 <= unlabeled_fraction <= 1:
        raise SettingError(f"labeled_fraction must be in (0, 1] and unlabeled_fraction in [0, 1]; got "
                           f"{labeled_fraction} and {unlabeled_fraction}")
    if labeled_fraction + unlabeled_fraction > 1 + 1e-9:
        raise SettingError(f"labeled_fraction {labeled_fraction} + unlabeled_fraction {unlabeled_fraction} exceeds 1")
    n = len(train)
    n_labeled = max(1, int(round(labeled_fraction * n)))
    n_unlabeled = min(n - n_labeled, int(round(unlabeled_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    labeled = sorted(order[:n_labeled].tolist())
    unlabeled = sorted(order[n_labeled:n_labeled + n_unlabeled].tolist())
    return [train[i] for i in labeled], [Sentence(train[i].words) for i in unlabeled]


def raw_text(corpus: Corpus, source: str = "auto", data_root=None, tokenizer: str | None = None) -> list[Sentence]:
    """Unlabeled sentences to add to a split: ``auto`` (or ``none``) the corpus's own raw text
    (tweets for Twitter, nothing otherwise); a dataset name, that dataset's training text and
    raw text; a file (a path, or one relative to the data root such as
    ``raw_text/en_tweets/tweeteval_other.txt``), its lines tokenized as the corpus's raw text is
    or by ``tokenizer`` (a name in :data:`~vsl.data.readers.TOKENIZERS`)."""
    if source in ("auto", "none"):
        return corpus.raw
    path = Path(source)
    if not path.is_file() and not path.is_absolute():
        try:
            path = find_data_root(data_root) / source
        except DatasetNotFoundError:
            pass
    if path.is_file():
        return normalize_sentences(read_raw(path, tokenizer or corpus.spec.tokenizer))
    try:
        other = load_dataset(resolve_dataset(source, data_root))
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(f"unlabeled text {source!r} is neither a file nor a dataset: {err}") from None
    return [Sentence(s.words) for s in other.train] + other.raw


def make_split(corpus: Corpus, labeled_fraction: float | None = None,
               unlabeled_fraction: float | None = None, seed: int = 0,
               raw: list[Sentence] | None = None) -> LabeledSplit:
    """Split a corpus as its dataset's defaults say, or with the given fractions; ``raw``
    sentences (default: the corpus's raw text, e.g. tweets) are appended to the unlabeled part."""
    spec = corpus.spec
    labeled, unlabeled = split_train(
        corpus.train,
        spec.labeled_fraction if labeled_fraction is None else labeled_fraction,
        spec.unlabeled_fraction if unlabeled_fraction is None else unlabeled_fraction,
        seed)
    raw = corpus.raw if raw is None else raw
    return LabeledSplit(labeled, unlabeled + raw, len(unlabeled))
