"""Score a trained run folder on a dataset split (or on a file of gold-tagged sentences) and
print the scores as JSON: accuracy or span F1 for a BiGRU/VSL run, many-to-one, one-to-one
and V-measure for an HMM run.

    vsl evaluate --model runs/hier --data twitter --split test
    vsl evaluate --model runs/ner --data conll2003 --split dev
    vsl evaluate --model runs/hier --file my_gold.conll --file-format twitter
"""

from __future__ import annotations

import argparse
import json
import sys

from vsl.api import SPLITS, load_tagger
from vsl.commands import HelpFormatter
from vsl.config import check_device, require_positive
from vsl.data.readers import READERS
from vsl.errors import VslError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="twitter, conll2003, wsj, ud/<Treebank>[@version] or a folder")
    source.add_argument("--file", help="one file of gold-tagged sentences")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split of --data")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--format", help="format of a folder dataset")
    parser.add_argument("--file-format", choices=tuple(READERS), default="conllu", help="format of --file")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        require_positive(batch_size=args.batch_size)
        check_device(args.device)
        tagger = load_tagger(args.model, args.device)
        data = READERS[args.file_format](args.file) if args.file else args.data
        scores = tagger.evaluate(data, args.split, args.data_root, args.format, args.batch_size, args.device)
    except (VslError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
