"""Tag new text with a trained model folder (a run of scripts/run_vsl.py or scripts/run_hmm.py).

    scripts/tag.py --model runs/twitter-hier-s0 --input tweets.txt
    cat sentences.txt | scripts/tag.py --model runs/ud-baseline --input - --format json
    scripts/tag.py --model runs/conll-hier --input test.conll --input-format conll --format tsv
    scripts/tag.py --model runs/wsj/nhmm_s0 --input wsj.txt        # HMMs write state ids

Input (--input-format): text (default; one sentence per line, split by the tokenizer the model
was trained with; an empty line is an empty sentence and stays one), conll (word in the first
column, blank line between sentences) or conllu. The input is read and tagged in chunks, so
stdin and files of any size stream through. Output (--format, to stdout or --output): conll
(default), tsv or json lines; see vsl.data.textio. NER models write BIOES tags.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from vsl.api import load_tagger
from vsl.commands import HelpFormatter
from vsl.config import check_device, require_positive
from vsl.data.readers import TOKENIZERS
from vsl.data.textio import (INPUT_FORMATS, OUTPUT_FORMATS, TSV_HEADER, chunks, read_sentences, utf8_lines,
                             write_tagged)
from vsl.errors import VslError


def check_arguments(args) -> None:
    """Refuse arguments that would tag nothing or destroy the input, before the model loads."""
    require_positive(batch_size=args.batch_size, chunk=args.chunk)
    check_device(args.device)
    if args.output and args.input != "-" and Path(args.output).resolve() == Path(args.input).resolve():
        raise VslError(f"--output {args.output} is the input file; writing it would erase the text to tag")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder (config.json, vocab.json and weights)")
    parser.add_argument("--input", required=True, help="a file, or - for stdin")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, default="text")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="conll", help="output format")
    parser.add_argument("--output", help="output file (stdout if not given)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=1024, help="sentences read and tagged at a time")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        tagger = load_tagger(args.model, args.device)
        with ExitStack() as files:
            source = sys.stdin.buffer if args.input == "-" else files.enter_context(open(args.input, "rb"))
            target = sys.stdout if not args.output else files.enter_context(open(args.output, "w", encoding="utf-8"))
            name = "<stdin>" if args.input == "-" else args.input
            if args.format == "tsv":
                target.write(TSV_HEADER)
            done = 0
            sentences = read_sentences(utf8_lines(source, name), args.input_format, TOKENIZERS[tagger.tokenizer], name)
            for chunk in chunks(sentences, args.chunk):
                write_tagged(target, args.format, done + 1, chunk, tagger.tag(chunk, args.batch_size, args.device))
                target.flush()
                done += len(chunk)
    except (VslError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"tagged {done} sentences", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
