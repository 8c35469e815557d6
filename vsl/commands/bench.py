"""Training throughput and peak memory, written as JSON.

Each case runs in a fresh process (so its peak resident memory is its own) on the real
Twitter training set with the vocabulary of a real run (train + raw tweets), batch 10: after
``--warmup`` untimed steps, ``--repeats`` timed passes over the same ``--steps`` batches, of
which the fastest counts (the one least slowed by other load). Cases:

* ``bigru``: the BiGRU baseline as ``scripts/run_vsl.py --latent none`` trains it;
* ``bigru-char-loop``: the same model with the character BiGRU run once per sentence in a
  Python loop, as the authors' code does - the peer that batching by word type replaces;
* ``vsl-g``, ``vsl-hier``: VSL-G and VSL-GG-Hier on labeled batches only;
* ``vsl-hier-unlabeled``: VSL-GG-Hier with a batch of raw tweets beside each labeled batch;
  ``vsl-hier-unlabeled-bf16`` the same with the decoder's vocabulary matmuls in bfloat16;
* ``vsl-resumed``, ``vsl-resumed-denormals`` (with ``--from-run DIR``): the steps that follow
  a saved run's ``last.pt`` (its settings, vocabulary, optimizer and priors), with denormal
  floats flushed to zero as every run flushes them (:func:`vsl.runtime.configure_cpu`) and
  without: late in training the second is several times slower on x86.

The HMM family (see :mod:`hmm.benchmark`):

* ``hmm-<method>``: forward + state posteriors, K = 45, 256 sentences x 40 tokens, float32, on
  the same scores for ours (scaled, log space, and the gradient of our log-partition) and the
  peers pyro ``DiscreteHMM`` and torch-struct ``LinearChainCRF``;
* ``nhmm-<emission>-<transition>``: neural-HMM Adam updates on 256 real WSJ sentences.

The report carries the authors' code's throughput measured on this kind of machine
(``reference``) for comparison.

    scripts/bench.py --out results/bench.json [--family vsl|hmm|all] [--steps 200] [--threads 1 2] [--cases ...]
                     [--from-run runs/NAME]
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

from hmm.benchmark import INFERENCE, time_inference, time_nhmm_training
from hmm.models import EMISSIONS, TRANSITIONS
from vsl.checkpoint import load_metadata, load_training_checkpoint
from vsl.commands import HelpFormatter
from vsl.config import RunConfig
from vsl.data.batching import Batch, Collator
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.data.splits import LabeledSplit
from vsl.data.vocab import build_vocabularies
from vsl.encoders import WordCharEmbedding
from vsl.recipe import build_model, build_objective, set_up_training, training_batches
from vsl.provenance import git_commit
from vsl.runtime import configure_cpu, denormals_flushed, seed_everything
from vsl.optimization import make_optimizer
from vsl.training import restore_checkpoint, train_step


class PerSentenceCharEmbedding(WordCharEmbedding):
    """The peer: characters encoded sentence by sentence, every token separately."""

    def forward(self, batch):
        rows = []
        for b in range(batch.words.shape[0]):
            types = batch.types[b]
            rows.append(self.chars(batch.chars[types], batch.char_lengths[types]))
        return torch.cat([self.words(batch.words), torch.stack(rows)], dim=-1)


# The authors' VSL code (PyTorch 0.3, patched to run on torch 2.13), one thread, batch 10 (+ 10
# unlabeled), ~17 tokens per sentence, measured on this kind of 2-core CPU. Our sentences (real
# tweets) are shorter, so speed-ups are taken on tokens per second.
AUTHORS_TOKENS_PER_SENTENCE = 17
REFERENCE = {name: {"sentences_per_s": rate, "tokens_per_s": rate * AUTHORS_TOKENS_PER_SENTENCE}
             for name, rate in (("authors-vsl-g", 130), ("authors-vsl-hier-unlabeled", 108))}

VSL_CASES = {
    "bigru": {"latent": "none"},
    "bigru-char-loop": {"latent": "none"},
    "vsl-g": {"latent": "gauss", "unlabeled": "none"},
    "vsl-hier": {"latent": "hier", "unlabeled": "none"},
    "vsl-hier-unlabeled": {"latent": "hier"},
    "vsl-hier-unlabeled-bf16": {"latent": "hier", "decoder_precision": "bfloat16"},
}
HMM_CASES = [f"hmm-{method}" for method in INFERENCE]
NHMM_CASES = [f"nhmm-{emission}-{transition}" for emission in EMISSIONS for transition in TRANSITIONS]
RESUMED_CASES = ["vsl-resumed", "vsl-resumed-denormals"]
CASES = [*VSL_CASES, *RESUMED_CASES, *HMM_CASES, *NHMM_CASES]
SLOW_PEERS = {"hmm-torch-struct-linear-chain-crf": 1}  # ~1 min a call on this CPU: time it once


def measure(case: str, threads: int, steps: int, warmup: int, repeats: int, data_root: str | None,
            from_run: str | None) -> dict:
    configure_cpu(threads)
    if case == "vsl-resumed-denormals":
        torch.set_flush_denormal(False)
    if case in RESUMED_CASES:
        result = measure_resumed(from_run, steps, warmup, repeats, data_root)
    elif case in HMM_CASES:
        result = time_inference(case.removeprefix("hmm-"), repeats=SLOW_PEERS.get(case, 5))
    elif case in NHMM_CASES:
        _, emission, transition = case.split("-")
        result = time_nhmm_training(emission, transition, data_root)
    else:
        result = measure_vsl(case, steps, warmup, repeats, data_root)
    return {"case": case, "threads": threads, "denormals_flushed": denormals_flushed(), **result,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def measure_vsl(case: str, steps: int, warmup: int, repeats: int, data_root: str | None) -> dict:
    seed_everything(0)
    config = RunConfig(data="twitter", data_root=data_root, **VSL_CASES[case])
    corpus = load_dataset(resolve_dataset("twitter", data_root))
    split = LabeledSplit(corpus.train, corpus.raw, 0)
    vocabs = build_vocabularies(split.labeled, split.unlabeled)
    model = build_model(config, vocabs)
    if case == "bigru-char-loop":
        old = model.encoder.embedding
        model.encoder.embedding = PerSentenceCharEmbedding(len(vocabs.words), old.words.embedding_dim, old.chars)
    objective = build_objective(config, model, split).train()
    optimizer = make_optimizer(objective, config.lr)
    stream = training_batches(config, split, Collator(vocabs))
    batches = [next(stream) for _ in range(warmup + steps)]
    return {**time_steps(objective, optimizer, batches, warmup, repeats, config),
            "vocabulary": len(vocabs.words), "decoded_words": getattr(model, "decoded_words", None)}


def measure_resumed(run: str, steps: int, warmup: int, repeats: int, data_root: str | None) -> dict:
    """The steps that follow the VSL run ``run``'s last.pt, set up as ``run_vsl.py --resume``
    sets them up (same settings, data, vocabulary, optimizer state and priors)."""
    saved = load_metadata(run)
    config = RunConfig.from_saved(saved.config, f"{run}/config.json").replace(data_root=data_root)
    data, split, _, objective = set_up_training(config)
    stream = training_batches(config, split, Collator(data.vocabs))
    optimizer = make_optimizer(objective, config.lr)
    _, state = restore_checkpoint(load_training_checkpoint(run, data.vocabs.to_dict()), objective, optimizer, stream)
    batches = [next(stream) for _ in range(warmup + steps)]
    return {**time_steps(objective.train(), optimizer, batches, warmup, repeats, config),
            "run": run, "resumed_at_step": state.step}


def time_steps(objective, optimizer, batches: list, warmup: int, repeats: int, config: RunConfig) -> dict:
    """Train on the first ``warmup`` batches untimed, then time ``repeats`` passes over the rest;
    the fastest pass counts."""
    for batch in batches[:warmup]:
        train_step(objective, optimizer, batch, config.grad_clip)
    timed = batches[warmup:]
    parts = [[b] if isinstance(b, Batch) else [part for part in (b.labeled, b.unlabeled) if part] for b in timed]
    labeled = sum(step_parts[0].words.shape[0] for step_parts in parts)
    sentences = sum(part.words.shape[0] for step_parts in parts for part in step_parts)
    tokens = sum(b.n_tokens for b in timed)
    rounds = []  # seconds of each pass over the same timed batches
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in timed:
            train_step(objective, optimizer, batch, config.grad_clip)
        rounds.append(time.perf_counter() - start)
    seconds = min(rounds)  # the round least disturbed by anything else on the machine
    return {"steps": len(timed), "repeats": repeats, "round_seconds": [round(r, 3) for r in rounds],
            "batch_size": config.batch_size,
            "sentences_per_s": round(sentences / seconds, 1), "labeled_sentences_per_s": round(labeled / seconds, 1),
            "tokens_per_s": round(tokens / seconds, 1), "mean_tokens_per_sentence": round(tokens / sentences, 2)}


def speedups(rows: list[dict]) -> dict:
    """Our throughput over the peers' at each thread count, where both were measured."""
    by_case = {(row["case"], row["threads"]): row for row in rows}
    ratios = {}
    for (case, threads), row in by_case.items():
        if case == "hmm-ours-scaled" and ("hmm-pyro-discrete-hmm", threads) in by_case:
            peer = by_case["hmm-pyro-discrete-hmm", threads]["tokens_per_s"]
            ratios[f"hmm-scaled-over-pyro@{threads}"] = round(row["tokens_per_s"] / peer, 1)
        if case == "vsl-resumed" and ("vsl-resumed-denormals", threads) in by_case:
            peer = by_case["vsl-resumed-denormals", threads]["tokens_per_s"]
            ratios[f"flushed-over-denormals@{threads}"] = round(row["tokens_per_s"] / peer, 2)
        if case.startswith("vsl-hier-unlabeled"):
            peer = REFERENCE["authors-vsl-hier-unlabeled"]["tokens_per_s"]
            ratios[f"{case}-over-authors@{threads}"] = round(row["tokens_per_s"] / peer, 2)
    return ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--out", default="results/bench.json")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the same VSL batches; the fastest counts")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", nargs="+", choices=CASES, help="cases to run (default: every case of --family)")
    parser.add_argument("--family", choices=("vsl", "hmm", "all"), default="all",
                        help="the VSL cases (Twitter), the HMM and NHMM cases (WSJ), or all (default)")
    parser.add_argument("--data-root")
    parser.add_argument("--from-run", metavar="DIR",
                        help="a VSL run folder with last.pt: adds the cases that continue it (vsl family)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.steps, args.warmup, args.repeats,
                                 args.data_root, args.from_run)))
        return 0
    if not args.from_run and set(args.cases or []) & set(RESUMED_CASES):
        parser.error(f"{' and '.join(RESUMED_CASES)} need --from-run")
    vsl_cases = [*VSL_CASES, *(RESUMED_CASES if args.from_run else [])]
    family = {"vsl": vsl_cases, "hmm": [*HMM_CASES, *NHMM_CASES], "all": [*vsl_cases, *HMM_CASES, *NHMM_CASES]}[args.family]
    rows = []
    for case in args.cases or family:
        for threads in args.threads:
            command = [sys.executable, "-m", "vsl.commands.bench", "--worker", case, str(threads), "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
            command += ["--data-root", args.data_root] if args.data_root else []
            command += ["--from-run", args.from_run] if args.from_run else []
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
                print(f"error: case {case} at {threads} thread(s) failed: {reason}", file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    report = {"commit": git_commit(), "machine": platform.processor() or platform.machine(),
              "reference": REFERENCE, "speedups": speedups(rows),
              "torch": torch.__version__, "command": " ".join(["scripts/bench.py", *(argv or sys.argv[1:])]),
              "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
