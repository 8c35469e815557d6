"""Looking inside trained VSL models: the posterior means of their latent variables per token,
and those of the tag-like variable y clustered into as many groups as there are tags, so that
VSL's y space can be scored like an unsupervised tagger (many-to-one, V-measure)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vsl.data.batching import Batch, Collator, iterate_batches
from vsl.data.readers import Sentence


@torch.no_grad()
def latent_vectors(model, sentences: Sequence[Sentence], collate: Collator, name: str = "y",
                   batch_size: int = 100) -> np.ndarray:
    """Posterior means of latent ``name`` for every token of ``sentences``, in sentence order,
    stacked (N_tokens, dim). ``model`` is a VariationalTagger (``latent_means``) or a BiGRU
    baseline, whose BiGRU states h_t stand in for the latent (paper Figure 3)."""
    rows: list[np.ndarray | None] = [None] * len(sentences)
    model.eval()
    for batch in iterate_batches(sentences, collate, batch_size, with_tags=False):
        vectors = _token_vectors(model, batch, name)
        for row, index in enumerate(batch.indices.tolist()):
            rows[index] = vectors[row, : len(sentences[index])].cpu().numpy()
    return np.concatenate(rows) if rows else np.zeros((0, 0))


def _token_vectors(model, batch: Batch, name: str) -> torch.Tensor:
    if hasattr(model, "latent_means"):
        means = model.latent_means(batch)
        if name not in means:
            raise ValueError(f"this model's latents are {', '.join(means)}; there is no {name!r}")
        return means[name]
    return model.encoder(batch)


def cluster_tokens(vectors: np.ndarray, n_clusters: int, lengths: Sequence[int], seed: int = 0) -> list[list[int]]:
    """k-means (k = ``n_clusters``, 10 initialisations) over token vectors, returned as one list
    of cluster ids per sentence of the given ``lengths``."""
    from sklearn.cluster import KMeans  # loads scipy.stats (about 1.5 s); most commands never cluster

    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(vectors)
    bounds = np.cumsum([0, *lengths])
    return [labels[start:end].tolist() for start, end in zip(bounds[:-1], bounds[1:])]
