#!/usr/bin/env python
"""Train and evaluate a tagger on the shared encoder; write OUT/results.json and the model.

    scripts/run_vsl.py --latent none --data twitter
    scripts/run_vsl.py --latent none --data conll2003 --labeled-fraction 0.1 --seed 1
    scripts/run_vsl.py --config configs/vsl/twitter_baseline.yaml --max-steps 500

Settings come from the defaults of vsl.config.RunConfig, then --config (YAML, or the
config.json a run saved), then the flags given here.
"""

from __future__ import annotations

import argparse
import json
import sys

from vsl.config import RunConfig
from vsl.errors import VslError
from vsl.experiment import LATENTS, run


def parse_args(argv=None) -> tuple[RunConfig, str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML/JSON file of settings")
    parser.add_argument("--out", default=None, help="output folder (default runs/<data>-<latent>-s<seed>)")
    parser.add_argument("--latent", choices=LATENTS, help="latent structure; none = BiGRU baseline")
    parser.add_argument("--data", help="twitter, conll2003, wsj, ud/<Treebank>[@version] or a folder")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--format", help="format of a folder dataset: conllu, twitter, conll2003, ptb")
    parser.add_argument("--labeled-fraction", type=float)
    parser.add_argument("--unlabeled-fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--embeddings", help="word2vec (text/binary) or GloVe file; default: skip-gram on the task's text")
    parser.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the pretrained word vectors fixed (default: tuned for the baseline)")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--patience", type=int, help="evaluations without dev improvement before stopping")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    config = RunConfig.load(args.config) if args.config else RunConfig()
    overrides = {name: getattr(args, name) for name in RunConfig.field_names() if hasattr(args, name)}
    config = config.replace(**overrides)
    out = args.out or f"runs/{config.data.replace('/', '_')}-{config.latent}-s{config.seed}"
    return config, out, not args.no_progress


def main(argv=None) -> int:
    config, out, progress = parse_args(argv)
    try:
        command = " ".join(["scripts/run_vsl.py", *(sys.argv[1:] if argv is None else argv)])
        results = run(config, out, progress=progress, command=command)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {split: results[split] for split in ("dev", "test")}
    print(json.dumps({"out": out, "best_step": results["best_step"], **summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
