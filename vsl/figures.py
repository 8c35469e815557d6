"""Figures of the papers, drawn with matplotlib (Agg backend, PNG files).

* :func:`latent_tsne`: 2-D t-SNE of per-token vectors coloured by gold tag (Chen et al. 2018,
  Figure 3: the baseline's BiGRU states, VSL-G's z, and y and z of Flat and Hier).
* :func:`table_curve`: a table's metric (mean +- sd over seeds) against its rows' ``x`` (Chen et
  al. 2018, Figure 4: dev accuracy against the number of unlabeled tweets).
* :func:`cluster_confusion`: how induced clusters spread over gold tags (rows: clusters in the
  order of their most frequent tag; columns: tags by frequency), each row normalised.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402


def latent_tsne(panels: Sequence[tuple[str, np.ndarray]], tags: Sequence[str], out: str | Path,
                top_tags: int = 10, seed: int = 0) -> None:
    """One t-SNE panel per (title, vectors (N, dim)) over the same N tokens, coloured by their
    gold ``tags`` (the ``top_tags`` most frequent; the rest grey)."""
    frequent = [tag for tag, _ in Counter(tags).most_common(top_tags)]
    colours = {tag: plt.cm.tab10(i % 10) for i, tag in enumerate(frequent)}
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns + 1, 4 * rows), squeeze=False)
    for axis in axes.flat[len(panels):]:
        axis.axis("off")
    for axis, (title, vectors) in zip(axes.flat, panels):
        points = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(vectors)
        other = np.array([tag not in colours for tag in tags])
        axis.scatter(points[other, 0], points[other, 1], s=2, c="lightgrey")
        for tag in frequent:
            chosen = np.array([t == tag for t in tags])
            axis.scatter(points[chosen, 0], points[chosen, 1], s=2, color=colours[tag], label=tag)
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][-1].legend(markerscale=5, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="gold tag")
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)


def table_curve(table: dict, out: str | Path, metric: int = 0, xlabel: str = "x",
                ylim: tuple[float, float] | None = None) -> tuple[float, float]:
    """Plot ``table`` (a results/NAME.json of scripts/reproduce.py) as its rows' mean +- sd of
    metric number ``metric`` against their ``x``; rows not run yet are left out. ``ylim`` (in
    %) fixes the vertical range, so that differences within seed noise do not fill the plot.
    Returns the vertical range drawn."""
    points = sorted((row["x"], row["mean"][metric], row["sd"][metric] or 0.0) for row in table["rows"]
                    if row.get("x") is not None and row["mean"][metric] is not None)
    if not points:
        raise ValueError("the table has no finished rows with an x value")
    if ylim is not None and not ylim[0] < ylim[1]:
        raise ValueError(f"the vertical range must run from low to high; got {ylim}")
    xs, means, sds = (np.array(column) for column in zip(*points))
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.errorbar(xs, 100 * means, yerr=100 * sds, marker="o", capsize=3)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(f"{table['metrics'][metric]} (%)")
    axis.set_title(textwrap.fill(table.get("title", ""), 70), fontsize=8)
    if ylim is not None:
        axis.set_ylim(*ylim)
    axis.grid(alpha=0.3)
    drawn = axis.get_ylim()
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return drawn


def cluster_confusion(gold: Sequence[str], clusters: Sequence[int], out: str | Path, title: str) -> None:
    """Heat map of p(tag | cluster) for flat token sequences of gold tags and cluster ids."""
    tags = [tag for tag, _ in Counter(gold).most_common()]
    ids = sorted(set(clusters))
    column = {tag: j for j, tag in enumerate(tags)}
    row = {cluster: i for i, cluster in enumerate(ids)}
    counts = np.zeros((len(ids), len(tags)))
    for tag, cluster in zip(gold, clusters):
        counts[row[cluster], column[tag]] += 1
    order = np.lexsort((-counts.max(axis=1), counts.argmax(axis=1)))
    shares = counts[order] / counts[order].sum(axis=1, keepdims=True)
    figure, axis = plt.subplots(figsize=(max(6, 0.22 * len(tags)), max(5, 0.18 * len(ids))))
    image = axis.imshow(shares, aspect="auto", cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(tags)), tags, rotation=90, fontsize=6)
    axis.set_yticks(range(len(ids)), [str(ids[i]) for i in order], fontsize=6)
    axis.set_xlabel("gold tag (by frequency)")
    axis.set_ylabel("cluster")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, label="share of the cluster's tokens")
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
