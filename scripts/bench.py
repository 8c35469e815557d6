#!/usr/bin/env python
"""Training throughput and peak memory, written as JSON.

Each case runs in a fresh process (so its peak resident memory is its own) on the real
Twitter training set with the vocabulary of a real run (train + raw tweets), batch 10, for
``--steps`` timed steps after ``--warmup`` untimed ones. Cases:

* ``bigru``: the BiGRU baseline as ``scripts/run_vsl.py --latent none`` trains it;
* ``bigru-char-loop``: the same model with the character BiGRU run once per sentence in a
  Python loop, as the authors' code does - the peer that batching by word type replaces.

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

import numpy as np
import torch

from vsl.data.batching import Collator, endless_batches
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.data.vocab import build_vocabularies
from vsl.encoders import WordCharEmbedding
from vsl.experiment import git_commit
from vsl.models import BiGRUTagger, build_encoder
from vsl.train import make_optimizer, train_step


class PerSentenceCharEmbedding(WordCharEmbedding):
    """The peer: characters encoded sentence by sentence, every token separately."""

    def forward(self, batch):
        rows = []
        for b in range(batch.words.shape[0]):
            types = batch.types[b]
            rows.append(self.chars(batch.chars[types], batch.char_lengths[types]))
        return torch.cat([self.words(batch.words), torch.stack(rows)], dim=-1)


def measure(case: str, threads: int, steps: int, warmup: int, data_root: str | None) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    corpus = load_dataset(resolve_dataset("twitter", data_root))
    vocabs = build_vocabularies(corpus.train, corpus.raw)
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars))
    if case == "bigru-char-loop":
        old = encoder.embedding
        encoder.embedding = PerSentenceCharEmbedding(len(vocabs.words), old.words.embedding_dim, old.chars)
    model = BiGRUTagger(encoder, len(vocabs.tags))
    optimizer = make_optimizer(model, 1e-3)
    batches = endless_batches(corpus.train, Collator(vocabs), 10, np.random.default_rng(0))
    sentences = tokens = 0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        batch = next(batches)
        train_step(model, optimizer, batch, grad_clip=10.0)
        if step >= warmup:
            sentences += batch.words.shape[0]
            tokens += batch.n_tokens
    seconds = time.perf_counter() - start
    return {"case": case, "threads": threads, "steps": steps, "batch_size": 10,
            "sentences_per_s": round(sentences / seconds, 1), "tokens_per_s": round(tokens / seconds, 1),
            "mean_tokens_per_sentence": round(tokens / sentences, 2), "vocabulary": len(vocabs.words),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench.json")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", nargs="+", default=["bigru", "bigru-char-loop"])
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
              "torch": torch.__version__, "command": " ".join(["scripts/bench.py", *(argv or sys.argv[1:])]),
              "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
