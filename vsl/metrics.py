"""Scores for supervised tagging and for unsupervised tag induction.

Every function takes a sequence of sentences, each a sequence of labels (strings or ints), for
the gold side and for the predicted side, and scores the flattened tokens.

* Supervised tagging (Chen et al., 2018): token accuracy for POS tagging, and strict span
  precision/recall/F1 on BIOES tags for NER, computed by ``seqeval`` (``mode="strict"``,
  ``scheme=IOBES``), as in the CoNLL evaluation.
* Tag induction (Tran et al., 2016): many-to-one (M-1) accuracy, one-to-one (1-1) accuracy, both
  optimal and greedy, and V-measure (Rosenberg and Hirschberg, 2007); and, to read what the
  clusters hold, each cluster's size and main gold tags (:func:`cluster_contents`).

seqeval, scikit-learn and scipy are imported by the functions that use them: together they take
about 1.8 s to load, which every command would otherwise pay before it reads its arguments.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np

Sentences = Sequence[Sequence[Hashable]]

_BIOES_TAG = re.compile(r"O|[BIES]-.+")


def _flatten(gold: Sentences, pred: Sentences) -> tuple[list, list]:
    """Flatten two aligned corpora to token lists; raise ValueError if they are not aligned."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold labels but {len(p)} predicted ones")
    flat_gold = [label for sentence in gold for label in sentence]
    if not flat_gold:
        raise ValueError("no tokens to score")
    return flat_gold, [label for sentence in pred for label in sentence]


def accuracy(gold: Sentences, pred: Sentences) -> float:
    """Token accuracy in [0, 1]: the share of tokens whose predicted label equals the gold one."""
    from sklearn.metrics import accuracy_score

    flat_gold, flat_pred = _flatten(gold, pred)
    return float(accuracy_score(flat_gold, flat_pred))


def _check_bioes(sentences: Sentences) -> None:
    """Raise ValueError naming the first label that is not a BIOES tag (O, B-X, I-X, E-X, S-X)."""
    for i, sentence in enumerate(sentences):
        for tag in sentence:
            if not (isinstance(tag, str) and _BIOES_TAG.fullmatch(tag)):
                raise ValueError(f"sentence {i}: {tag!r} is not a BIOES tag")


def span_scores(gold: Sentences, pred: Sentences) -> dict[str, float]:
    """Strict span precision, recall and F1 in [0, 1] on BIOES tags, micro-averaged.

    A predicted span counts only if its type and both boundaries match a gold span exactly and it
    is well formed under BIOES (``seqeval.metrics`` with ``mode="strict", scheme=IOBES``). A score
    whose denominator is zero (no predicted or no gold spans) is 0.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOBES

    _flatten(gold, pred)
    _check_bioes(gold)
    _check_bioes(pred)
    y_true, y_pred = [list(s) for s in gold], [list(s) for s in pred]
    options = {"mode": "strict", "scheme": IOBES, "zero_division": 0}
    return {
        "precision": float(precision_score(y_true, y_pred, **options)),
        "recall": float(recall_score(y_true, y_pred, **options)),
        "f1": float(f1_score(y_true, y_pred, **options)),
    }


def _cluster_tag_counts(gold: Sentences, clusters: Sentences) -> tuple[np.ndarray, int]:
    """The cluster x tag count matrix (rows, columns in sorted label order) and the token count."""
    from sklearn.metrics.cluster import contingency_matrix

    flat_gold, flat_clusters = _flatten(gold, clusters)
    return contingency_matrix(flat_gold, flat_clusters).T, len(flat_gold)


def many_to_one(gold: Sentences, clusters: Sentences) -> float:
    """M-1 accuracy: each cluster is mapped to its most frequent gold tag (tags may repeat)."""
    counts, n_tokens = _cluster_tag_counts(gold, clusters)
    return float(counts.max(axis=1).sum() / n_tokens)


def one_to_one(gold: Sentences, clusters: Sentences) -> float:
    """1-1 accuracy under the optimal one-to-one cluster-to-tag mapping.

    The mapping maximises the matched token count (Hungarian algorithm,
    ``scipy.optimize.linear_sum_assignment``); tokens of unmatched clusters count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    counts, n_tokens = _cluster_tag_counts(gold, clusters)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / n_tokens)


def one_to_one_greedy(gold: Sentences, clusters: Sentences) -> float:
    """1-1 accuracy under the greedy mapping used by Tran et al. (2016) for the neural HMM.

    Repeatedly match the (cluster, tag) pair with the highest remaining count among unused
    clusters and tags, until the clusters or the tags run out; ties go to the lowest cluster, then
    the lowest tag, in sorted label order. Tokens of unmatched clusters count as wrong.
    """
    counts, n_tokens = _cluster_tag_counts(gold, clusters)
    remaining = counts.astype(np.int64)
    matched = 0
    for _ in range(min(remaining.shape)):
        cluster, tag = np.unravel_index(np.argmax(remaining), remaining.shape)
        matched += remaining[cluster, tag]
        remaining[cluster, :] = -1
        remaining[:, tag] = -1
    return float(matched / n_tokens)


def v_measure(gold: Sentences, clusters: Sentences) -> float:
    """V-measure (Rosenberg and Hirschberg, 2007) by ``sklearn.metrics.v_measure_score``.

    VM is a ratio of entropies, so it does not depend on the logarithm's base: sklearn's
    natural-log figure equals the base-2 one that Tran et al. (2016) report.
    """
    from sklearn.metrics import v_measure_score

    flat_gold, flat_clusters = _flatten(gold, clusters)
    return float(v_measure_score(flat_gold, flat_clusters))


def cluster_scores(gold: Sentences, clusters: Sentences) -> dict[str, float]:
    """All tag-induction scores: ``m1``, ``one_to_one``, ``one_to_one_greedy`` and ``vm``."""
    return {
        "m1": many_to_one(gold, clusters),
        "one_to_one": one_to_one(gold, clusters),
        "one_to_one_greedy": one_to_one_greedy(gold, clusters),
        "vm": v_measure(gold, clusters),
    }


def state_use(clusters: Sentences) -> dict[str, float]:
    """How the tokens spread over the induced clusters: how many clusters are used, and the
    share of the tokens in the largest one and in the largest four (a collapsed model puts most
    tokens in a few states)."""
    sizes = sorted(Counter(c for sentence in clusters for c in sentence).values(), reverse=True)
    total = sum(sizes)
    if not total:
        raise ValueError("no tokens")
    return {"used": len(sizes), "largest_share": sizes[0] / total, "largest_four_share": sum(sizes[:4]) / total}


class ClusterContents(NamedTuple):
    """One induced cluster: its id, its token count, and its main gold tags as (tag, the tag's
    tokens in the cluster, the tag's tokens in the whole corpus)."""

    cluster: Hashable
    tokens: int
    tags: list[tuple[Hashable, int, int]]


def cluster_contents(gold: Sentences, clusters: Sentences, top: int = 3) -> list[ClusterContents]:
    """Every cluster with its ``top`` most frequent gold tags, largest cluster first. A tag's
    count in the cluster against the cluster's size says how pure the cluster is; against the
    tag's count in the corpus, how much of the tag the cluster holds. Ties go to the lower id or
    tag in sorted order."""
    if top < 1:
        raise ValueError(f"top must be at least 1; got {top}")
    counts, _ = _cluster_tag_counts(gold, clusters)
    flat_gold, flat_clusters = _flatten(gold, clusters)
    tags, ids = np.unique(flat_gold).tolist(), np.unique(flat_clusters).tolist()
    tag_totals = counts.sum(axis=0)
    sizes = counts.sum(axis=1)
    contents = []
    for row in np.argsort(-sizes, kind="stable"):
        main = [column for column in np.argsort(-counts[row], kind="stable")[:top] if counts[row, column]]
        contents.append(ClusterContents(ids[row], int(sizes[row]),
                                        [(tags[c], int(counts[row, c]), int(tag_totals[c])) for c in main]))
    return contents


def tagging_scores(gold: Sentences, pred: Sentences, task: str) -> dict[str, float]:
    """Supervised scores: ``"pos"`` gives accuracy; ``"ner"`` adds strict span P/R/F1."""
    if task == "pos":
        return {"accuracy": accuracy(gold, pred)}
    if task == "ner":
        return {"accuracy": accuracy(gold, pred), **span_scores(gold, pred)}
    raise ValueError(f"unknown task {task!r}; expected 'pos' or 'ner'")
