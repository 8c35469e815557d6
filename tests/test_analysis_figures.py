"""Latent vectors per token, their k-means clusters, and the figures drawn from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsl.analysis import cluster_tokens, latent_vectors
from vsl.figures import cluster_confusion, latent_tsne
from vsl.models import BiGRUTagger, build_encoder
from vsl.variational import VariationalTagger


def _encoder(collate):
    torch.manual_seed(0)
    vocabs = collate.vocabs
    return build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=12, char_dim=6, char_hidden=6, hidden=8)


def test_latent_vectors_follow_sentence_order_and_match_a_single_sentence_pass(twitter_slice, twitter_collator):
    sentences = twitter_slice[1][:7]
    model = VariationalTagger(_encoder(twitter_collator), len(twitter_collator.vocabs.tags),
                              len(twitter_collator.vocabs.words), "hier", y_dim=3, z_dim=4, decoder_hidden=5)
    vectors = latent_vectors(model, sentences, twitter_collator, "y", batch_size=3)
    assert vectors.shape == (sum(len(s) for s in sentences), 3)
    alone = latent_vectors(model, sentences[4:5], twitter_collator, "y")
    start = sum(len(s) for s in sentences[:4])
    np.testing.assert_allclose(vectors[start:start + len(sentences[4])], alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no 'h'"):
        latent_vectors(model, sentences, twitter_collator, "h")
    baseline = BiGRUTagger(_encoder(twitter_collator), len(twitter_collator.vocabs.tags))
    assert latent_vectors(baseline, sentences, twitter_collator, "h").shape[1] == 16


def test_cluster_tokens_regroups_by_sentence_and_finds_obvious_groups():
    vectors = np.array([[0.0, 0.0], [10.0, 10.0], [0.1, 0.0], [10.0, 9.9], [0.0, 0.1]])
    clusters = cluster_tokens(vectors, 2, [2, 3])
    assert [len(c) for c in clusters] == [2, 3]
    flat = [c for sentence in clusters for c in sentence]
    assert flat[0] == flat[2] == flat[4] != flat[1] == flat[3]


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    tags = ["N", "V", "D"] * 40
    latent_tsne([("a", rng.normal(size=(120, 5))), ("b", rng.normal(size=(120, 3)))], tags, tmp_path / "t.png")
    cluster_confusion(tags, rng.integers(0, 4, size=120), tmp_path / "c.png", "test")
    for name in ("t.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unlabeled_subsets_nest_and_zero_means_labeled_only():
    from vsl.config import RunConfig
    from vsl.data.splits import LabeledSplit
    from vsl.recipe import trains_on_unlabeled, unlabeled_subset

    sentences = list(range(100))
    small = unlabeled_subset(sentences, RunConfig(unlabeled_limit=10, seed=3))
    large = unlabeled_subset(sentences, RunConfig(unlabeled_limit=40, seed=3))
    assert len(small) == 10 and len(large) == 40 and set(small) <= set(large) and small == sorted(small)
    assert unlabeled_subset(sentences, RunConfig(unlabeled_limit=10, seed=3)) == small
    assert unlabeled_subset(sentences, RunConfig()) == sentences
    split = LabeledSplit([1], sentences, 0)
    assert not trains_on_unlabeled(RunConfig(latent="hier", unlabeled_limit=0), split)
    assert trains_on_unlabeled(RunConfig(latent="hier", unlabeled_limit=5), split)


def test_table_curve_plots_rows_with_an_x(tmp_path):
    from vsl.figures import table_curve

    table = {"title": "t", "metrics": ["dev.accuracy"], "rows": [
        {"x": 0, "mean": [0.85], "sd": [None]}, {"x": 10, "mean": [0.86], "sd": [0.01]},
        {"x": 20, "mean": [None], "sd": [None]}]}
    low, high = table_curve(table, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert low <= 85 and high >= 86 and high - low < 5  # fitted to the points
    assert table_curve(table, tmp_path / "fixed.png", ylim=(80, 90)) == (80, 90)
    with pytest.raises(ValueError, match="low to high"):
        table_curve(table, tmp_path / "bad.png", ylim=(90, 80))
    with pytest.raises(ValueError):
        table_curve({"metrics": ["m"], "rows": [{"x": 1, "mean": [None], "sd": [None]}]}, tmp_path / "x.png")
