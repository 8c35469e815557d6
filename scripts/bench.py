#!/usr/bin/env python
"""Training throughput and peak memory, written as JSON.

Each case runs in a fresh process (so its peak resident memory is its own) on the real
Twitter training set with the vocabulary of a real run (train + raw tweets), batch 10, for
``--steps`` timed steps after ``--warmup`` untimed ones. Cases:

* ``bigru``: the BiGRU baseline as ``scripts/run_vsl.py --latent none`` trains it;
* ``bigru-char-loop``: the same model with the character BiGRU run once per sentence in a
  Python loop, as the authors' code does - the peer that batching by word type replaces;
* ``vsl-g``, ``vsl-hier``: VSL-G and VSL-GG-Hier on labeled batches only;
* ``vsl-hier-unlabeled``: VSL-GG-Hier with a batch of raw tweets beside each labeled batch.

The report carries the authors' code's throughput measured on this kind of machine
(``reference``) for comparison.

    scripts/bench.py --out results/bench.json [--steps 200] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from vsl.config import RunConfig
from vsl.data.batching import Batch, Collator
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.data.splits import LabeledSplit
from vsl.data.vocab import build_vocabularies
from vsl.encoders import WordCharEmbedding
from vsl.experiment import build_model, build_objective, git_commit, seed_everything, training_batches
from vsl.train import make_optimizer, train_step


class PerSentenceCharEmbedding(WordCharEmbedding):
    """The peer: characters encoded sentence by sentence, every token separately."""

    def forward(self, batch):
        rows = []
        for b in range(batch.words.shape[0]):
            types = batch.types[b]
            rows.append(self.chars(batch.chars[types], batch.char_lengths[types]))
        return torch.cat([self.words(batch.words), torch.stack(rows)], dim=-1)


# The authors' VSL code (PyTorch 0.3, patched to run on torch 2.13), one thread, batch 10 (+ 10
# unlabeled), ~17 tokens per sentence, measured on this kind of 2-core CPU.
REFERENCE = {"authors-vsl-g": {"sentences_per_s": 130},
             "authors-vsl-hier-unlabeled": {"sentences_per_s": 108}}

CASES = {
    "bigru": {"latent": "none"},
    "bigru-char-loop": {"latent": "none"},
    "vsl-g": {"latent": "gauss", "unlabeled": "none"},
    "vsl-hier": {"latent": "hier", "unlabeled": "none"},
    "vsl-hier-unlabeled": {"latent": "hier"},
}


def measure(case: str, threads: int, steps: int, warmup: int, data_root: str | None) -> dict:
    torch.set_num_threads(threads)
    seed_everything(0)
    config = RunConfig(data="twitter", data_root=data_root, **CASES[case])
    corpus = load_dataset(resolve_dataset("twitter", data_root))
    split = LabeledSplit(corpus.train, corpus.raw, 0)
    vocabs = build_vocabularies(split.labeled, split.unlabeled)
    model = build_model(config, vocabs)
    if case == "bigru-char-loop":
        old = model.encoder.embedding
        model.encoder.embedding = PerSentenceCharEmbedding(len(vocabs.words), old.words.embedding_dim, old.chars)
    objective = build_objective(config, model, split).train()
    optimizer = make_optimizer(objective, config.lr)
    batches = training_batches(config, split, Collator(vocabs))
    labeled = sentences = tokens = 0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        batch = next(batches)
        train_step(objective, optimizer, batch, config.grad_clip)
        if step >= warmup:
            parts = [batch] if isinstance(batch, Batch) else [b for b in (batch.labeled, batch.unlabeled) if b]
            labeled += parts[0].words.shape[0]
            sentences += sum(b.words.shape[0] for b in parts)
            tokens += batch.n_tokens
    seconds = time.perf_counter() - start
    return {"case": case, "threads": threads, "steps": steps, "batch_size": config.batch_size,
            "sentences_per_s": round(sentences / seconds, 1), "labeled_sentences_per_s": round(labeled / seconds, 1),
            "tokens_per_s": round(tokens / seconds, 1), "mean_tokens_per_sentence": round(tokens / sentences, 2),
            "vocabulary": len(vocabs.words), "decoded_words": getattr(model, "decoded_words", None),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench.json")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--data-root")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.steps, args.warmup, args.data_root)))
        return 0
    rows = []
    for case in args.cases:
        for threads in args.threads:
            command = [sys.executable, __file__, "--worker", case, str(threads), "--steps", str(args.steps),
                       "--warmup", str(args.warmup)] + (["--data-root", args.data_root] if args.data_root else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    report = {"commit": git_commit(), "machine": platform.processor() or platform.machine(),
              "reference": REFERENCE,
              "torch": torch.__version__, "command": " ".join(["scripts/bench.py", *(argv or sys.argv[1:])]),
              "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
