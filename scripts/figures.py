#!/usr/bin/env python
"""Draw the papers' figures from finished runs.

    scripts/figures.py tsne --data twitter --run "BiGRU h=runs/final/twitter_baseline_s0:h" \\
        --run "VSL-GG-Hier y=runs/final/twitter_hier_labeled_s0:y" --out results/figures/tsne_twitter.png
    scripts/figures.py confusion --run runs/wsj/nhmm_s0 --data wsj --out results/figures/nhmm_wsj_confusion.png
    scripts/figures.py curve --table results/unlabeled_size.json --xlabel "raw tweets" --out results/figures/unlabeled_size.png

tsne: per --run "TITLE=RUN_DIR:LATENT" (LATENT y or z for VSL runs, h for the baseline's BiGRU
states), the posterior means of the first --tokens test tokens, t-SNE'd and coloured by gold
tag (Chen et al. 2018, Figure 3). confusion: the clusters of an HMM run (its tags.txt) against
the gold tags of the test split. curve: a scripts/reproduce.py table (its JSON) whose rows have
an x value, e.g. dev accuracy against the number of raw tweets (Chen et al. 2018, Figure 4).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vsl.analysis import latent_vectors
from vsl.data.batching import Collator
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.errors import VslError
from vsl.experiment import load_run
from vsl.figures import cluster_confusion, latent_tsne, table_curve


def first_tokens(sentences, limit: int):
    """The leading sentences holding at most ``limit`` tokens in all."""
    kept, total = [], 0
    for sentence in sentences:
        if total + len(sentence) > limit:
            break
        kept.append(sentence)
        total += len(sentence)
    return kept


def tsne(args) -> None:
    corpus = load_dataset(resolve_dataset(args.data, args.data_root), with_raw=False)
    sentences = first_tokens(corpus.test, args.tokens)
    tags = [tag for s in sentences for tag in s.tags]
    panels = []
    for spec in args.run:
        title, sep, rest = spec.partition("=")
        folder, colon, latent = rest.rpartition(":")
        if not sep or not colon:
            raise VslError(f"--run takes TITLE=RUN_DIR:LATENT; got {spec!r}")
        model, vocabs, _ = load_run(folder)
        panels.append((title, latent_vectors(model, sentences, Collator(vocabs), latent)))
    latent_tsne(panels, tags, args.out, seed=args.seed)


def confusion(args) -> None:
    corpus = load_dataset(resolve_dataset(args.data, args.data_root), with_raw=False)
    tagged = Path(args.run) / "tags.txt"
    if not tagged.is_file():
        raise VslError(f"{tagged}: missing (an HMM run folder holds the tags it gave the test split)")
    lines = tagged.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(corpus.test):
        raise VslError(f"{args.run}/tags.txt has {len(lines)} sentences, the test split {len(corpus.test)}")
    clusters = [int(c) for line in lines for c in line.split()]
    gold = [tag for s in corpus.test for tag in s.tags]
    if len(clusters) != len(gold):
        raise VslError(f"{args.run}/tags.txt has {len(clusters)} tokens, the test split {len(gold)}")
    cluster_confusion(gold, np.array(clusters), args.out, args.title or f"{args.run}: clusters against gold tags")


def curve(args) -> None:
    try:
        table = json.loads(Path(args.table).read_text(encoding="utf-8"))
        table_curve(table, args.out, args.metric, args.xlabel, tuple(args.ylim) if args.ylim else None)
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as err:
        raise VslError(f"{args.table}: cannot draw its curve ({err})") from None


FIGURES = {"tsne": tsne, "confusion": confusion, "curve": curve}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="figure", required=True)
    for name in ("tsne", "confusion"):
        sub = commands.add_parser(name)
        sub.add_argument("--data", required=True)
        sub.add_argument("--data-root")
        sub.add_argument("--out", required=True)
    commands.choices["tsne"].add_argument("--seed", type=int, default=0)
    commands.choices["tsne"].add_argument("--run", action="append", required=True, metavar="TITLE=RUN_DIR:LATENT")
    commands.choices["tsne"].add_argument("--tokens", type=int, default=2000, help="test tokens to embed (2,000)")
    commands.choices["confusion"].add_argument("--run", required=True, help="an HMM run folder (tags.txt)")
    commands.choices["confusion"].add_argument("--title")
    drawing = commands.add_parser("curve")
    drawing.add_argument("--table", required=True, help="a results/NAME.json written by scripts/reproduce.py")
    drawing.add_argument("--metric", type=int, default=0, help="which of the table's metrics (0: the first)")
    drawing.add_argument("--xlabel", default="x")
    drawing.add_argument("--ylim", type=float, nargs=2, metavar=("LOW", "HIGH"), help="vertical range in %%")
    drawing.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        FIGURES[args.figure](args)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
