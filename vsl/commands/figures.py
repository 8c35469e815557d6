"""Draw the papers' figures from finished runs.

    scripts/figures.py tsne --data twitter --run "BiGRU h=runs/final/twitter_baseline_s0:h" \\
        --run "VSL-GG-Hier y=runs/final/twitter_hier_labeled_s0:y" --out results/figures/tsne_twitter.png
    scripts/figures.py confusion --run runs/wsj/nhmm_s0 --out results/figures/nhmm_wsj_confusion.png \\
        --summary results/figures/nhmm_wsj_clusters.md
    scripts/figures.py curve --table results/unlabeled_size.json --xlabel "raw tweets" --out results/figures/unlabeled_size.png

tsne: per --run "TITLE=RUN_DIR:LATENT" (LATENT y or z for VSL runs, h for the baseline's BiGRU
states), the posterior means of the first --tokens test tokens, t-SNE'd and coloured by gold tag
(Chen et al. 2018, Figure 3). confusion: the clusters of an HMM run (its tags.txt) against the
gold tags of the test split it tagged (its config's dataset and --max-sentences; --data and
--data-root say where that data is now); --summary also writes a Markdown table of each
cluster's size and main gold tags. curve: a scripts/reproduce.py table (its JSON) whose rows
have an x value, e.g. dev accuracy against the number of raw tweets (Chen et al. 2018, Figure
4).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from vsl.analysis import latent_vectors
from vsl.checkpoint import atomic_write_bytes, load_metadata
from vsl.commands import HelpFormatter
from vsl.data.batching import Collator
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.errors import VslError
from vsl.recipe import load_run
from vsl.figures import cluster_confusion, latent_tsne, table_curve
from vsl.metrics import cluster_contents, cluster_scores


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


def tagged_test_split(run: Path, data: str | None, data_root: str | None):
    """The gold tags and cluster ids, per sentence, of the test sentences an HMM run tagged: its
    config's dataset (``data`` and ``data_root`` override where to find it), cut to the run's
    ``max_sentences``, against its ``tags.txt``."""
    settings = load_metadata(run, "hmm").config
    spec = resolve_dataset(data or settings["data"], data_root or settings.get("data_root"), settings.get("format"))
    test = load_dataset(spec, with_raw=False).test[: settings.get("max_sentences")]
    tagged = run / "tags.txt"
    if not tagged.is_file():
        raise VslError(f"{tagged}: missing (a finished HMM run folder holds the tags it gave the test split)")
    lines = tagged.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(test):
        raise VslError(f"{tagged} has {len(lines)} sentences, the test split {len(test)}")
    clusters = []
    for number, (line, sentence) in enumerate(zip(lines, test), start=1):
        ids = line.split()
        if len(ids) != len(sentence) or not all(i.isdigit() for i in ids):
            raise VslError(f"{tagged}:{number}: expected {len(sentence)} cluster ids, got {line!r}")
        clusters.append([int(i) for i in ids])
    return [s.tags for s in test], clusters


def markdown_text(label) -> str:
    """``label`` with the characters that Markdown would read as table or code syntax escaped
    (WSJ's quote tags are `` and '')."""
    return re.sub(r"([`|\\])", r"\\\1", str(label))


def contents_markdown(title: str, gold, clusters, top: int) -> str:
    """A Markdown table of every cluster (largest first): its tokens, their share of all, and
    its main gold tags, each with its share of the cluster and (in brackets) of the tag."""
    contents = cluster_contents(gold, clusters, top)
    total = sum(c.tokens for c in contents)
    scores = cluster_scores(gold, clusters)
    majority = Counter(c.tags[0][0] for c in contents)
    lines = [f"# {title}", "",
             f"{total:,} tokens in {len(contents)} clusters; M-1 {100 * scores['m1']:.1f}, "
             f"1-1 {100 * scores['one_to_one']:.1f}, VM {100 * scores['vm']:.1f}.", "",
             "| cluster | tokens | share | main gold tags: share of the cluster (of the tag) |", "|---|---|---|---|"]
    for c in contents:
        tags = ", ".join(f"{markdown_text(tag)} {100 * n / c.tokens:.0f}% ({100 * n / of_tag:.0f}%)"
                         for tag, n, of_tag in c.tags)
        lines.append(f"| {c.cluster} | {c.tokens:,} | {100 * c.tokens / total:.1f}% | {tags} |")
    per_tag = "; ".join(f"{markdown_text(tag)} {n}" for tag, n in majority.most_common())
    lines += ["", f"Clusters per majority tag: {per_tag}."]
    return "\n".join(lines) + "\n"


def confusion(args) -> None:
    gold, clusters = tagged_test_split(Path(args.run), args.data, args.data_root)
    title = args.title or f"{args.run}: clusters against gold tags"
    flat_gold = [tag for sentence in gold for tag in sentence]
    cluster_confusion(flat_gold, np.array([c for sentence in clusters for c in sentence]), args.out, title)
    if args.summary:
        atomic_write_bytes(args.summary, contents_markdown(title, gold, clusters, args.top).encode("utf-8"))


def curve(args) -> None:
    try:
        table = json.loads(Path(args.table).read_text(encoding="utf-8"))
        table_curve(table, args.out, args.metric, args.xlabel, tuple(args.ylim) if args.ylim else None)
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as err:
        raise VslError(f"{args.table}: cannot draw its curve ({err})") from None


FIGURES = {"tsne": tsne, "confusion": confusion, "curve": curve}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="figure", required=True)
    for name in ("tsne", "confusion"):
        sub = commands.add_parser(name)
        sub.add_argument("--data", required=name == "tsne",
                         help=None if name == "tsne" else "the dataset the run tagged (default: its config's)")
        sub.add_argument("--data-root")
        sub.add_argument("--out", required=True)
    commands.choices["tsne"].add_argument("--seed", type=int, default=0)
    commands.choices["tsne"].add_argument("--run", action="append", required=True, metavar="TITLE=RUN_DIR:LATENT")
    commands.choices["tsne"].add_argument("--tokens", type=int, default=2000, help="test tokens to embed")
    commands.choices["confusion"].add_argument("--run", required=True, help="an HMM run folder (tags.txt)")
    commands.choices["confusion"].add_argument("--title")
    commands.choices["confusion"].add_argument("--summary", help="also write each cluster's size and main gold "
                                               "tags to this Markdown file")
    commands.choices["confusion"].add_argument("--top", type=int, default=4, help="gold tags listed per cluster")
    drawing = commands.add_parser("curve")
    drawing.add_argument("--table", required=True, help="a results/NAME.json written by scripts/reproduce.py")
    drawing.add_argument("--metric", type=int, default=0, help="which of the table's metrics (0: the first)")
    drawing.add_argument("--xlabel", default="x")
    drawing.add_argument("--ylim", type=float, nargs=2, metavar=("LOW", "HIGH"), help="vertical range in %%")
    drawing.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.figure == "confusion" and args.top < 1:
        parser.error(f"--top must be at least 1; got {args.top}")
    try:
        FIGURES[args.figure](args)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
