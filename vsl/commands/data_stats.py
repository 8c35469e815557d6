"""Print JSON statistics of a dataset: sentences, tokens and tag-set size per split, and the
labeled / unlabeled counts of the split a run would use.

    scripts/data_stats.py --data twitter
    scripts/data_stats.py --data ud/English-EWT@r2.16 --labeled-fraction 0.2 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys

from vsl.commands import HelpFormatter
from vsl.config import check_seed
from vsl.data.readers import sentence_counts
from vsl.data.registry import SPLITS, load_dataset, resolve_dataset
from vsl.data.splits import make_split
from vsl.errors import VslError


def count(sentences) -> dict:
    stats = sentence_counts(sentences)
    tags = {t for s in sentences if s.tags for t in s.tags}
    if tags:
        stats["tags"] = len(tags)
    return stats


def dataset_stats(name: str, data_root=None, fmt=None, labeled_fraction=None,
                  unlabeled_fraction=None, seed: int = 0) -> dict:
    spec = resolve_dataset(name, data_root, fmt)
    corpus = load_dataset(spec)
    stats = {"dataset": spec.name, "task": spec.task,
             "files": {split: str(spec.files[split]) for split in SPLITS}}
    stats.update({split: count(corpus.split(split)) for split in SPLITS})
    if corpus.raw:
        stats["raw"] = count(corpus.raw)
    split = make_split(corpus, labeled_fraction, unlabeled_fraction, seed)
    stats["split"] = {"seed": seed, "labeled": count(split.labeled),
                      "unlabeled": count(split.unlabeled), "unlabeled_from_train": split.from_train}
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="dataset name or folder")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--format", dest="fmt", help="format of a folder dataset")
    parser.add_argument("--labeled-fraction", type=float)
    parser.add_argument("--unlabeled-fraction", type=float)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        check_seed(args.seed)
        stats = dataset_stats(args.data, args.data_root, args.fmt, args.labeled_fraction,
                              args.unlabeled_fraction, args.seed)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    json.dump(stats, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
