"""Train and evaluate a tagger on the shared encoder; write OUT/results.json and the model.

    scripts/run_vsl.py --latent hier                   # VSL-GG-Hier on Twitter + raw tweets
    scripts/run_vsl.py --latent hier --unlabeled none  # labeled data only
    scripts/run_vsl.py --latent none --data twitter
    scripts/run_vsl.py --latent none --data conll2003 --labeled-fraction 0.1 --seed 1
    scripts/run_vsl.py --config configs/vsl/twitter_baseline.yaml --max-steps 500
    scripts/run_vsl.py --resume runs/twitter-hier-s0      # continue a stopped or killed run

Settings come from the defaults of vsl.config.RunConfig, then --config (YAML, or the
config.json a run saved), then the flags given here. Ctrl-C or SIGTERM stops at the next step,
writes the training checkpoint OUT/last.pt and scores the best model so far; --resume OUT
continues from OUT/last.pt (also after SIGKILL: from the last periodic checkpoint) with the
run's saved settings, and ends with the same scores as a run never stopped.

A run writes into OUT: results.json (dev and test scores, the best step, data counts, the
config, seed, commit, changed files and command, and one segment per process that trained it),
metrics.jsonl (every dev evaluation), model.pt (the best dev model), last.pt (weights, Adam
state, best model, patience and annealing counters, prior stores, random state and data order,
every --checkpoint-every steps), config.json, vocab.json, and priors/ when the VSL prior stores
are on disk (--prior-storage: memory, disk, or auto = on disk above 256 MiB; VSL-GG-Hier keeps
500 bytes per token, about 665 MB per 100,000 tweets). Every file is written atomically and
weights load with torch.load(weights_only=True).

A NaN or infinite loss or gradient stops training before the parameters change, naming the step
and the batch's sentences; --on-nonfinite skip drops that batch instead and records it. Under
torchrun the processes train one model with DistributedDataParallel (gloo on CPU, nccl with
--device cuda): the training sentences are sharded between ranks, rank 0 scores dev and writes
the files, and such a run keeps no last.pt.

    torchrun --standalone --nproc_per_node 4 scripts/run_vsl.py --latent hier --out runs/hier-x4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from vsl.commands import (HelpFormatter, add_placement_arguments, add_run_folder_arguments, run_settings,
                          show_setting_defaults)
from vsl.config import RunConfig
from vsl.errors import VslError
from vsl.recipe import LATENTS, run
from vsl.optimization import StopRequest

def parse_args(argv=None) -> tuple[RunConfig, str, bool, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_run_folder_arguments(parser, "runs/<data>-<latent>-s<seed>")
    parser.add_argument("--latent", choices=LATENTS,
                        help="none = BiGRU baseline; gauss = VSL-G; flat = VSL-GG-Flat; hier = VSL-GG-Hier")
    parser.add_argument("--data", help="twitter, conll2003, wsj, ud/<Treebank>[@version] or a folder")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--format", help="format of a folder dataset: conllu, twitter, conll2003, ptb")
    parser.add_argument("--labeled-fraction", type=float)
    parser.add_argument("--unlabeled-fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--unlabeled", help="auto, none, a dataset name, or a raw-text file")
    parser.add_argument("--unlabeled-batch-size", type=int)
    parser.add_argument("--unlabeled-limit", type=int, help="train on this many unlabeled sentences (seeded, nested)")
    parser.add_argument("--unlabeled-weight", type=float, help="weight of the unlabeled loss")
    parser.add_argument("--alpha", type=float, help="weight of the ELBO against the cross-entropy")
    parser.add_argument("--y-dim", type=int)
    parser.add_argument("--z-dim", type=int)
    parser.add_argument("--decoded-words", type=int, help="words the decoder reconstructs (0: all)")
    parser.add_argument("--decoder", choices=("free", "tied"),
                        help="output layer of p(x|.): free (own weights and bias) or tied to the frozen word embeddings")
    parser.add_argument("--decoder-noise", type=float,
                        help="sd of the Gaussian noise on the decoder's output vector in training (0: none)")
    parser.add_argument("--decoder-precision", choices=("float32", "bfloat16"),
                        help="arithmetic of the decoder's vocabulary matmuls (bfloat16: mixed precision)")
    parser.add_argument("--classifier-on", choices=("y", "z"), help="latent the classifier reads")
    parser.add_argument("--no-vr", dest="variational", action="store_false", default=None,
                        help="deterministic counterpart: no sampling, no KL (Table 4)")
    parser.add_argument("--kl-annealing", choices=("exp", "linear", "constant"))
    parser.add_argument("--kl-rate", type=float, help="r of beta = min(exp(r * step) - 1, 1)")
    parser.add_argument("--kl-warmup", type=int, help="steps of linear annealing")
    parser.add_argument("--prior-update-every", type=int, help="visits between prior updates")
    parser.add_argument("--prior-storage", choices=("memory", "disk", "auto"),
                        help="where the per-token priors live: memory, memory-mapped files in OUT/priors, "
                             "or auto (disk above 256 MiB)")
    parser.add_argument("--no-first-visit-kl", dest="first_visit_kl", action="store_false", default=None,
                        help="no KL term while a sentence's prior is still the initial N(0, I)")
    parser.add_argument("--init-from", help="a VSL run folder to continue from (weights and priors); {seed} stands for the seed")
    parser.add_argument("--embeddings", help="word2vec (text/binary) or GloVe file; default: skip-gram on the task's text")
    parser.add_argument("--vector-text", nargs="+", metavar="SOURCE",
                        help="more raw text for the skip-gram vectors: files (one sentence a line) or dataset names")
    parser.add_argument("--vector-text-tokenizer", choices=("whitespace", "tweet", "treebank"),
                        help="tokenizer of the --vector-text files (default: the dataset's raw-text one)")
    parser.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the pretrained word vectors fixed (default: tuned for the baseline)")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--patience", type=int, help="evaluations without dev improvement before stopping")
    parser.add_argument("--checkpoint-every", type=int, help="steps between training checkpoints")
    parser.add_argument("--on-nonfinite", choices=("stop", "skip"),
                        help="a NaN/Inf loss or gradient stops training or skips its batch")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--hidden", type=int)
    add_placement_arguments(parser)
    show_setting_defaults(parser, RunConfig)
    args = parser.parse_args(argv)
    config, resume = run_settings(parser, args, RunConfig, "vsl")
    if resume:
        return config, args.resume, not args.no_progress, True, False
    if config.decoded_words == 0:
        config = dataclasses.replace(config, decoded_words=None)
    out = args.out or f"runs/{config.data.replace('/', '_')}-{config.latent}-s{config.seed}"
    return config, out, not args.no_progress, False, args.overwrite


def main(argv=None) -> int:
    stop = StopRequest().install()
    try:
        config, out, progress, resume, overwrite = parse_args(argv)
        command = " ".join(["scripts/run_vsl.py", *(sys.argv[1:] if argv is None else argv)])
        results = run(config, out, progress=progress, command=command, resume=resume, should_stop=stop,
                      overwrite=overwrite)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # another signal while the stopped run was being scored
        print(f"interrupted; `scripts/run_vsl.py --resume {out}` continues from its last.pt", file=sys.stderr)
        return StopRequest.EXIT_STATUS
    summary = {split: results[split] for split in ("dev", "test")}
    print(json.dumps({"out": out, "best_step": results["best_step"], **summary}, indent=2))
    if results["interrupted"]:
        print(f"stopped on request at step {results['steps']} (its best model is scored above); "
              f"`scripts/run_vsl.py --resume {out}` continues it", file=sys.stderr)
        return StopRequest.EXIT_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
