"""Tests of vsl.metrics against small cases computed by hand."""

import re

import pytest

from vsl import metrics


def _corpus(cells):
    """Gold and cluster sentences holding ``count`` tokens of each (cluster, tag, count) cell."""
    gold, clusters = [], []
    for cluster, tag, count in cells:
        gold.append([tag] * count)
        clusters.append([cluster] * count)
    return gold, clusters


# Cluster x tag counts (14 tokens):
#          N  V  D
#   c0:    5  4  0
#   c1:    4  0  0
#   c2:    0  0  1
# M-1: c0->N (5), c1->N (4), c2->D (1)                       -> 10/14
# greedy 1-1: (c0,N)=5, then (c2,D)=1, then (c1,V)=0         ->  6/14
# optimal 1-1: c0->V (4), c1->N (4), c2->D (1)               ->  9/14
GREEDY_TRAP = [(0, "N", 5), (0, "V", 4), (1, "N", 4), (2, "D", 1)]


def test_many_to_one_by_hand():
    assert metrics.many_to_one(*_corpus(GREEDY_TRAP)) == pytest.approx(10 / 14)


def test_cluster_contents_by_hand():
    # GREEDY_TRAP plus c3 = 1 V + 1 D: sizes c0 9, c1 4, c3 2, c2 1; tag totals N 9, V 5, D 2.
    gold, clusters = _corpus([*GREEDY_TRAP, (3, "V", 1), (3, "D", 1)])
    contents = metrics.cluster_contents(gold, clusters, top=2)
    assert contents == [
        (0, 9, [("N", 5, 9), ("V", 4, 5)]),
        (1, 4, [("N", 4, 9)]),  # tags absent from the cluster are not listed
        (3, 2, [("D", 1, 2), ("V", 1, 5)]),  # a tie goes to the tag first in sorted order
        (2, 1, [("D", 1, 2)]),
    ]
    assert contents[0].tokens == 9 and metrics.cluster_contents(gold, clusters, top=1)[0].tags == [("N", 5, 9)]
    with pytest.raises(ValueError, match="top must be at least 1"):
        metrics.cluster_contents(gold, clusters, top=0)


def test_greedy_and_optimal_one_to_one_differ():
    gold, clusters = _corpus(GREEDY_TRAP)
    assert metrics.one_to_one_greedy(gold, clusters) == pytest.approx(6 / 14)
    assert metrics.one_to_one(gold, clusters) == pytest.approx(9 / 14)


def test_unmatched_clusters_count_as_wrong():
    # 3 clusters, 2 tags: c0 = 3 N, c1 = 2 V, c2 = 1 N. M-1 maps c2 -> N too: 6/6.
    # Both 1-1 mappings take c0->N, c1->V and leave c2 out: 5/6.
    gold, clusters = _corpus([(0, "N", 3), (1, "V", 2), (2, "N", 1)])
    assert metrics.many_to_one(gold, clusters) == pytest.approx(1.0)
    assert metrics.one_to_one(gold, clusters) == pytest.approx(5 / 6)
    assert metrics.one_to_one_greedy(gold, clusters) == pytest.approx(5 / 6)


def test_greedy_breaks_ties_by_lowest_cluster_then_tag():
    # c0 = 2 A + 2 B, c1 = 2 A: greedy takes (c0,A)=2 first, then (c1,B)=0 -> 2/6.
    # The optimum c0->B, c1->A gets 4/6.
    gold, clusters = _corpus([(0, "A", 2), (0, "B", 2), (1, "A", 2)])
    assert metrics.one_to_one_greedy(gold, clusters) == pytest.approx(2 / 6)
    assert metrics.one_to_one(gold, clusters) == pytest.approx(4 / 6)


def test_v_measure_by_hand():
    # gold [a a b b], clusters [0 0 0 1]: H(C)=1, H(C|K)=3/4*h(1/3)=0.6887, h=1-0.6887=0.3113;
    # H(K)=h(1/4)=0.8113, H(K|C)=1/2*h(1/2)=0.5, c=1-0.5/0.8113=0.3837; VM=2hc/(h+c)=0.3437.
    assert metrics.v_measure([["a", "a", "b", "b"]], [[0, 0, 0, 1]]) == pytest.approx(
        0.3437, abs=1e-4
    )


PERFECT = [["N", "V", "D", "N"], ["D", "N"]]


@pytest.mark.parametrize(
    "clusters",
    [PERFECT, [[0, 1, 2, 0], [2, 0]], [[7, 3, 5, 7], [5, 7]]],
    ids=["identical", "renamed", "permuted"],
)
def test_perfect_clustering_scores_one(clusters):
    names = ["m1", "one_to_one", "one_to_one_greedy", "vm"]
    assert metrics.cluster_scores(PERFECT, clusters) == pytest.approx(dict.fromkeys(names, 1.0))


def test_accuracy_by_hand():
    # 5 tokens, 3 right.
    assert metrics.accuracy([["a", "b", "c"], ["d", "e"]], [["a", "x", "c"], ["d", "x"]]) == 0.6
    assert metrics.accuracy([[1, 2]], [[1, 2]]) == 1.0


@pytest.mark.parametrize(
    "pred",
    [[["a", "b"]], [["a", "b"], ["c"], ["d"]], [["a", "b"], []]],
    ids=["fewer-sentences", "more-sentences", "shorter-sentence"],
)
def test_misaligned_inputs_raise(pred):
    gold = [["a", "b"], ["c"]]
    for score in (metrics.accuracy, metrics.many_to_one, metrics.cluster_scores):
        with pytest.raises(ValueError):
            score(gold, pred)


def test_empty_input_raises():
    with pytest.raises(ValueError, match="no tokens"):
        metrics.accuracy([[]], [[]])


def test_strict_spans_partial_span_is_wrong():
    # Gold spans: PER(0-1), LOC(3). Predicted: PER(0-2) has the wrong end, LOC(3) is right,
    # ORG(5) is spurious. P = 1/3, R = 1/2, F1 = 2*(1/3)(1/2)/(1/3+1/2) = 0.4.
    gold = [["B-PER", "E-PER", "O", "S-LOC"], ["O", "O"]]
    pred = [["B-PER", "I-PER", "E-PER", "S-LOC"], ["O", "S-ORG"]]
    assert metrics.span_scores(gold, pred) == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 2, "f1": 0.4}
    )


def test_strict_spans_ill_formed_prediction_is_not_a_span():
    # B-PER I-PER without E-PER is no span under strict BIOES: P = 0/0 -> 0, R = 0/1.
    gold = [["B-PER", "E-PER"]]
    pred = [["B-PER", "I-PER"]]
    assert metrics.span_scores(gold, pred) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("bad", ["PER", "X-LOC", "B", "S-", 3])
def test_invalid_bioes_tag_is_named(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        metrics.span_scores([["O", "S-LOC"]], [["O", bad]])


def test_tagging_scores_per_task():
    gold = [["B-PER", "E-PER", "O"]]
    pred = [["B-PER", "E-PER", "S-LOC"]]
    assert metrics.tagging_scores(gold, pred, "pos") == {"accuracy": pytest.approx(2 / 3)}
    # Spans: the PER is right, LOC spurious: P = 1/2, R = 1, F1 = 2/3.
    assert metrics.tagging_scores(gold, pred, "ner") == pytest.approx(
        {"accuracy": 2 / 3, "precision": 1 / 2, "recall": 1.0, "f1": 2 / 3}
    )
    with pytest.raises(ValueError, match="unknown task"):
        metrics.tagging_scores(gold, pred, "chunking")


def test_state_use_counts_clusters_and_the_largest_shares():
    clusters = [[0, 0, 1, 2], [0, 3, 4, 0, 5, 0]]  # 10 tokens: cluster 0 holds 5
    assert metrics.state_use(clusters) == {"used": 6, "largest_share": 0.5, "largest_four_share": 0.8}
    with pytest.raises(ValueError):
        metrics.state_use([[]])
