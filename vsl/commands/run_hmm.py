"""Induce part-of-speech clusters with an HMM (Tran et al. 2016) and score them against gold tags.

    scripts/run_hmm.py --data wsj --model hmm --epochs 50          # Baum-Welch, 50 EM iterations
    scripts/run_hmm.py --data wsj --model nhmm                     # neural HMM, embed + matrix
    scripts/run_hmm.py --data wsj --model nhmm --emission conv --transition lstm
    scripts/run_hmm.py --config configs/hmm/wsj_conv_lstm.yaml --device cuda
    scripts/run_hmm.py --data ud/English-EWT --model hmm --max-sentences 2000
    scripts/run_hmm.py --data twitter --model nhmm --unlabeled auto     # + the raw tweets
    scripts/run_hmm.py --data ud/English-EWT --model nhmm --semi-supervised   # 20% labeled + 50%

The model trains on the train split's sentences of at most --max-length tokens (40, as the
paper; the count kept is reported) and tags every sentence of the test split (for wsj, train =
test = the whole treebank). For --model hmm, --epochs counts EM iterations. Settings come from
the defaults below, then --config (YAML, or the config.json a run saved), then the flags.

Writes OUT/results.json (M-1, 1-1 optimal and greedy, V-measure, per-token log-likelihood,
settings, data counts, commit and any files changed since it), OUT/tags.txt (one line per test
sentence: its cluster ids) and the model (OUT/model.pt, config.json, vocab.json; see
vsl.checkpoint). A neural-HMM run also keeps OUT/last.pt, its training state every
--checkpoint-every batches (OUT/probes.pt until its --probes end): --resume OUT continues a
stopped or killed run from there with its saved settings. Ctrl-C or SIGTERM stops a neural HMM
at the next batch with its state saved (Baum-Welch after the current iteration, unsaved) and
exits with status 130; a second signal stops at once.

The neural HMM trains by direct marginal likelihood with Adam: up to 6 updates per batch, until
the relative change of the log-likelihood is below 1e-4 or it got worse. Its LSTM transitions
follow the paper's section 8 (dropout 0.5 between layers and on the top layer's output;
weights N(0, 1/(n_in + hidden)), zero biases, forget-gate bias 1; lstm_init: uniform is the
paper's U(-1e-4, 1e-4) ablation). The authors' code's tricks, which the paper did not use, are
options: --probes N (N initialisations trained for one epoch, the most likely continued),
--gradient-noise ETA and --loss-scale state (configs/hmm/wsj_nhmm_code_tricks.yaml).
--semi-supervised trains one state per tag on the VSL runs' labeled/unlabeled split of that
seed and also reports tagging accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys

from hmm.config import MODELS, HmmConfig
from hmm.recipe import run
from hmm.models import EMISSIONS, TRANSITIONS
from hmm.train import LOSS_SCALES, TrainingStopped
from vsl.commands import (HelpFormatter, add_placement_arguments, add_run_folder_arguments, run_settings,
                          show_setting_defaults)
from vsl.errors import VslError
from vsl.optimization import StopRequest


def parse_args(argv=None) -> tuple[HmmConfig, str | None, bool, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_run_folder_arguments(parser, "runs/hmm-<data>-<model>-s<seed>", "neural-HMM run")
    parser.add_argument("--data", help="wsj, twitter, ud/<Treebank>[@version] or a folder")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--format", help="format of a folder dataset: conllu, twitter, conll2003, ptb")
    parser.add_argument("--model", choices=MODELS, help="hmm: Baum-Welch; nhmm: neural HMM")
    parser.add_argument("--emission", choices=EMISSIONS, help="neural emission: word embeddings or Char-CNN")
    parser.add_argument("--transition", choices=TRANSITIONS, help="neural transition: one matrix or per-position LSTM")
    parser.add_argument("--states", type=int, help="number of hidden states")
    parser.add_argument("--epochs", type=int, help="EM iterations (hmm: 50) or epochs (nhmm: 5)")
    parser.add_argument("--hidden", type=int, help="hidden size (512; 128 with conv)")
    parser.add_argument("--hidden-layers", type=int,
                        help="neural HMM: extra ReLU layers in the tag and query networks (1 as the authors' code)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int, help="train on sentences of at most this many tokens (0: all)")
    parser.add_argument("--max-sentences", type=int, help="use the first N sentences of each split (quick runs)")
    parser.add_argument("--restarts", type=int, help="EM random restarts; the best log-likelihood is kept")
    parser.add_argument("--unlabeled", help="extra training text: none, auto (the dataset's raw text), "
                                            "a dataset name or a raw-text file")
    parser.add_argument("--semi-supervised", action="store_true", default=None,
                        help="neural HMM on the VSL split: labeled sentences clamped to their tags (one state per tag)")
    parser.add_argument("--labeled-fraction", type=float)
    parser.add_argument("--unlabeled-fraction", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--probes", type=int,
                        help="neural HMM: train this many initialisations one epoch each, continue the best")
    parser.add_argument("--loss-scale", choices=LOSS_SCALES,
                        help="neural HMM: gradient of -log p(x) per token (token) or summed over states (state)")
    parser.add_argument("--gradient-noise", type=float, help="neural HMM: annealed gradient noise size (0: none)")
    parser.add_argument("--checkpoint-every", type=int, help="neural HMM: batches between training checkpoints")
    parser.add_argument("--seed", type=int)
    add_placement_arguments(parser)
    show_setting_defaults(parser, HmmConfig)
    args = parser.parse_args(argv)
    config, resume = run_settings(parser, args, HmmConfig, "hmm")
    return config, args.resume or args.out, not args.no_progress, resume, args.overwrite


def main(argv=None) -> int:
    stop = StopRequest().install()
    try:
        config, out, progress, resume, overwrite = parse_args(argv)
        out = out or f"runs/hmm-{config.data.replace('/', '_')}-{config.model}-s{config.seed}"
        command = " ".join(["scripts/run_hmm.py", *(sys.argv[1:] if argv is None else argv)])
        results = run(config, out, progress=progress, command=command, resume=resume, should_stop=stop,
                      overwrite=overwrite)
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as stopped:
        after = f"`scripts/run_hmm.py --resume {out}` continues it" if stopped.saved else "nothing is saved"
        print(f"{stopped}; {after}", file=sys.stderr)
        return StopRequest.EXIT_STATUS
    except KeyboardInterrupt:  # a second signal, mid-batch
        print("interrupted; the run's last.pt, if any, holds its last periodic checkpoint", file=sys.stderr)
        return StopRequest.EXIT_STATUS
    if results is not None:  # rank 0 (or the only process)
        keys = ("m1", "one_to_one", "one_to_one_greedy", "vm", "state_use", "log_likelihood_per_token", "seconds")
        print(json.dumps({"out": out, **{k: results[k] for k in keys}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
