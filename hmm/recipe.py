"""One tag-induction run end to end: data, HMM or neural HMM, training, Viterbi tags, scores,
files (what ``scripts/run_hmm.py`` calls): the HMM family's part of a run,
:func:`train_and_score`, inside the pipeline every family shares (:mod:`vsl.pipeline`).

``run(config, out_dir)`` writes ``results.json`` (M-1, 1-1 optimal and greedy, V-measure,
per-token log-likelihood, settings, data counts, commit and the files changed since it,
command, the code of each segment of a resumed run), ``tags.txt`` (one line per test sentence:
its cluster ids), ``segments.json`` and the model (``model.pt``, ``config.json``, ``vocab.json``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from hmm.config import HmmConfig
from hmm.models import CategoricalHMM, NeuralHMM, corpus_log_likelihood
from hmm.train import TrainingStopped, cap_length, tag_corpus, train_neural_hmm
from vsl.checkpoint import (LAST, RunMetadata, atomic_write_bytes, load_metadata, load_training_checkpoint,
                            load_weights, model_path, save_model, save_tensors)
from vsl.data.batching import Collator, bucketed_order, iterate_batches
from vsl.data.readers import Sentence, sentence_counts
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.data.splits import make_split, raw_text
from vsl.data.vocab import Vocabularies, build_vocabularies
from vsl.distributed import SINGLE_PROCESS, Cluster
from vsl.errors import VslError
from vsl.metrics import accuracy, cluster_scores, state_use
from vsl.optimization import stop_requested
from vsl.pipeline import Outcome, RunContext, run_in_folder
from vsl.prediction import TrainedTagger
from vsl.run_folder import PROBES, describe_probing, describe_progress, resume_checkpoint
from vsl.runtime import seed_everything


def build_model(config: HmmConfig, words: list[str]):
    if config.model == "hmm":
        return CategoricalHMM(config.states, len(words), seed=config.seed)
    return NeuralHMM(config.states, len(words), hidden=config.hidden, emission=config.emission,
                     transition=config.transition, words=words, char_dim=config.char_dim,
                     max_word_chars=config.max_word_chars, lstm_layers=config.lstm_layers,
                     dropout=config.dropout, hidden_layers=config.hidden_layers,
                     lstm_dropout_top=config.lstm_dropout_top, lstm_init=config.lstm_init)


def load_trained(directory: str | Path, device: str = "cpu") -> TrainedTagger:
    """The model of a finished run folder, tagging new text with its state ids."""
    metadata = load_metadata(directory, "hmm")
    config = HmmConfig.from_saved(metadata.config, str(Path(directory) / "config.json")).resolved()
    vocabs = Vocabularies.from_dict(metadata.vocabs)
    model = load_weights(build_model(config, vocabs.words.items), model_path(directory))
    model.to(device).eval()
    return TrainedTagger(model.tag, Collator(vocabs), lambda ids: [str(state) for state in ids], metadata.tokenizer)


def train(config: HmmConfig, model, labeled, unlabeled, collate: Collator, progress: bool,
          cluster: Cluster = SINGLE_PROCESS, out_dir: Path | None = None, resume: dict | None = None,
          should_stop: Callable[[], bool] | None = None,
          probes_state: dict | None = None) -> tuple[float | None, dict | None]:
    """Train ``model`` on ``labeled`` sentences (joint likelihood with their tags) and
    ``unlabeled`` ones (marginal likelihood); returns the final per-token log p(x) of all of them
    (on rank 0; other ranks of a data-parallel run get None) and, for a neural HMM trained with
    ``config.probes`` > 1, each probe's log-likelihood and the one kept (see :func:`probe`). A
    single-process neural HMM writes ``out_dir/last.pt`` every ``config.checkpoint_every``
    batches (while probing, ``out_dir/probes.pt``); ``resume`` continues from the one,
    ``probes_state`` from the other.
    Once ``should_stop()`` turns true, training raises :class:`~hmm.train.TrainingStopped`: the
    neural HMM between batches with its state saved, Baum-Welch (which keeps no checkpoint)
    after the current iteration."""
    everything = [*labeled, *unlabeled]
    if config.model == "hmm":
        batches = [b.to(config.device) for b in
                   iterate_batches(everything, collate, config.batch_size, with_tags=False)]
        bar = tqdm(total=config.epochs * config.restarts, disable=not progress, desc="EM", dynamic_ncols=True)

        def report(iteration: int, log_likelihood: float) -> None:
            bar.update(1)
            bar.set_postfix(ll=f"{log_likelihood:.4f}", refresh=False)
            if stop_requested(should_stop):
                bar.close()
                raise TrainingStopped(f"Baum-Welch stopped after iteration {iteration + 1}", saved=False)

        fit = model.fit(batches, config.epochs, config.restarts, config.seed, config.smoothing, report)
        bar.close()
        print(f"EM: kept restart {fit.restart} of {config.restarts}; log-likelihood per token "
              f"{fit.history[0]:.4f} -> {fit.history[-1]:.4f}", file=sys.stderr)
        return fit.history[-1], None

    parts = [(True, cluster.shard(labeled)), (False, cluster.shard(unlabeled))]
    size = cluster.local_batch_size(config.batch_size)

    def plan(epoch: int) -> list:  # this rank's shards, labeled and unlabeled batches shuffled together
        rng = np.random.default_rng([config.seed, epoch, cluster.rank])
        groups = [(tagged, group) for tagged, sentences in parts if sentences
                  for group in bucketed_order([len(s) for s in sentences], size, rng)]
        order = rng.permutation(len(groups))[: cluster.min(len(groups))]  # as many on every rank
        return [groups[i] for i in order]

    def batches(epoch: int):
        for tagged, group in plan(epoch):
            sentences = parts[0][1] if tagged else parts[1][1]
            yield collate([sentences[i] for i in group], group, with_tags=tagged)

    per_epoch = len(plan(0))  # the same every epoch

    log = (lambda line: print(line, file=sys.stderr)) if cluster.main else None

    def fit(candidate, epochs: int, noise_seed: int, **saving) -> list[float]:
        return train_neural_hmm(candidate, batches, epochs, lr=config.lr,
                                max_updates_per_batch=config.max_updates_per_batch, tolerance=config.tolerance,
                                stop_when_worse=config.stop_when_worse,
                                grad_clip=config.grad_clip, loss_scale=config.loss_scale,
                                gradient_noise=config.gradient_noise, noise_decay=config.noise_decay,
                                noise_seed=noise_seed, device=cluster.device, progress=progress,
                                batches_per_epoch=per_epoch, log=log,
                                cluster=cluster, should_stop=should_stop, **saving)

    checkpoints = out_dir is not None and not cluster.distributed
    save_last = (lambda state: save_tensors(out_dir / LAST, state)) if checkpoints else None
    if resume is None and config.probes > 1:
        resume = probe(config, model, lambda: build_model(config, collate.vocabs.words.items).to(cluster.device),
                       fit, log, saved=probes_state,
                       save=(lambda record: save_tensors(out_dir / PROBES, record)) if checkpoints else None)
        if checkpoints:  # from here on the run continues from last.pt
            save_last(resume)
            (out_dir / PROBES).unlink(missing_ok=True)
    fit(model, config.epochs, config.seed, checkpoint_every=config.checkpoint_every, save_checkpoint=save_last,
        resume=resume)
    trainer = {} if resume is None else resume["trainer"]
    probing = {"log_likelihoods": trainer["probe_log_likelihoods"], "kept": trainer["probe_kept"]} \
        if "probe_kept" in trainer else None
    if not cluster.main:
        return None, probing
    return corpus_log_likelihood(model, iterate_batches(everything, collate, config.eval_batch_size,
                                                        with_tags=False), cluster.device), probing


def probe(config: HmmConfig, model, new_model: Callable[[], object], fit: Callable,
          log: Callable[[str], None] | None, saved: dict | None = None,
          save: Callable[[dict], None] | None = None) -> dict:
    """The authors' code's "probing" (its README; not used in the paper): train
    ``config.probes`` initialisations (seeds ``seed``, ``seed + 1``, ...: ``model`` as built,
    then ``new_model()`` after reseeding) for one epoch each and return the training state,
    after that epoch, of the one whose log-likelihood per token was highest, for training to
    continue from (the probe's epoch counts as the first). Its trainer counters record every
    probe's log-likelihood and the one kept.

    ``save`` receives the probing so far (``scores`` of the probes done, the one ``kept``, its
    state ``best`` and the state ``current`` of the probe in progress) every
    ``config.checkpoint_every`` minibatches, when a stop is requested and as each probe ends;
    ``saved``, such a record, continues the probing where it stopped, to the same end."""
    record = saved or {"scores": [], "kept": 0, "best": None, "current": None}
    scores, kept, best, current = list(record["scores"]), record["kept"], record["best"], record["current"]
    for index in range(len(scores), config.probes):
        if index:
            seed_everything(config.seed + index)
        candidate = new_model() if index else model
        ended: dict = {}

        def checkpoint(state: dict) -> None:
            ended.update(state)
            if save is not None and state["trainer"]["epoch"] == 0:  # a finished probe is saved below
                save({"scores": scores, "kept": kept, "best": best, "current": state})

        try:
            history = fit(candidate, 1, config.seed + index, save_checkpoint=checkpoint, resume=current,
                          checkpoint_every=config.checkpoint_every if save is not None else None)
        except TrainingStopped:
            raise TrainingStopped(f"stopped in probe {index + 1} of {config.probes}",
                                  saved=save is not None) from None
        current = None
        scores.append(history[-1])
        if log is not None:
            log(f"probe {index + 1}/{config.probes} (seed {config.seed + index}): "
                f"log-likelihood per token {history[-1]:.4f}")
        if best is None or history[-1] > scores[kept]:
            best, kept = ended, index
        if save is not None:
            save({"scores": scores, "kept": kept, "best": best, "current": None})
    if log is not None:
        log(f"probing: continuing from probe {kept + 1}")
    best["trainer"].update(probe_log_likelihoods=scores, probe_kept=kept)
    return best


def run(config: HmmConfig, out_dir: str | Path, progress: bool = True, command: str | None = None,
        resume: bool = False, should_stop: Callable[[], bool] | None = None, overwrite: bool = False) -> dict | None:
    """Load, train, tag the test split, score, and write the run's files into ``out_dir``;
    ``resume=True`` continues a stopped neural-HMM run from its ``last.pt`` (or, stopped while
    probing, its ``probes.pt``); ``should_stop`` ends training early (see :func:`train`), with no
    results written. A folder that holds an earlier run is refused unless ``resume`` or
    ``overwrite`` (which empties it first), as is one another run is writing
    (:func:`vsl.pipeline.run_in_folder`).

    Started by ``torchrun``, the processes train one neural HMM data-parallel
    (:mod:`vsl.distributed`); rank 0 tags, scores, writes and returns the results, the other
    ranks return None."""
    config = config.resolved()

    def neural_hmm_from_the_start(cluster: Cluster) -> None:
        if cluster.distributed and (config.model != "nhmm" or resume):
            raise VslError("torchrun trains the neural HMM from the start; Baum-Welch and --resume run in one process")

    return run_in_folder(train_and_score, config, out_dir, progress, command, resume, should_stop, overwrite,
                         neural_hmm_from_the_start)


def train_and_score(config: HmmConfig, context: RunContext) -> Outcome:
    """The HMM family's part of a run (:func:`vsl.pipeline.run_in_folder`): data, model,
    training by EM or direct marginal likelihood, Viterbi tags of the test split and their
    scores (results on rank 0 only)."""
    cluster, out_dir, resume = context.cluster, context.folder, context.resume
    started = time.time()
    seed_everything(config.seed)
    corpus = load_dataset(resolve_dataset(config.data, config.data_root, config.format),
                          with_raw=config.unlabeled == "auto")
    corpus = dataclasses.replace(corpus, train=corpus.train[: config.max_sentences])
    test = corpus.test[: config.max_sentences]
    if not corpus.train or not test:
        raise VslError(f"{corpus.spec.name}: empty train or test split")
    if any(s.tags is None for s in test):
        raise VslError(f"{corpus.spec.name}: the test split has untagged sentences; cannot score")
    extra = [] if config.unlabeled == "none" else raw_text(corpus, config.unlabeled, config.data_root)
    if config.semi_supervised:
        split = make_split(corpus, config.labeled_fraction, config.unlabeled_fraction, config.seed, extra)
        labeled, unlabeled = split.labeled, split.unlabeled
    else:
        labeled, unlabeled = [], [Sentence(s.words) for s in corpus.train] + extra
    vocabs = build_vocabularies(labeled, unlabeled, evaluation=test)
    if config.semi_supervised:  # one state per tag
        config = dataclasses.replace(config, states=len(vocabs.tags))
    labeled_cap, unlabeled_cap = cap_length(labeled, config.max_length), cap_length(unlabeled, config.max_length)
    cap = f"at most {config.max_length} tokens" if config.max_length else "no length cap"
    print(f"training on {labeled_cap.kept} labeled and {unlabeled_cap.kept} unlabeled of "
          f"{len(labeled) + len(unlabeled)} sentences ({cap}); tagging {len(test)}; "
          f"vocabulary {len(vocabs.words)} words", file=sys.stderr)
    collate = Collator(vocabs)
    seed_everything(config.seed)
    model = build_model(config, vocabs.words.items).to(cluster.device)
    metadata = RunMetadata("hmm", config.to_dict(), vocabs.to_dict(), corpus.spec.tokenizer)
    checkpoint = probes_state = None
    if resume and resume_checkpoint(out_dir) == PROBES:  # stopped while probing
        probes_state = load_training_checkpoint(out_dir, metadata.vocabs, PROBES)
        print(f"resuming {describe_probing(metadata.config, probes_state)}", file=sys.stderr)
    elif resume:
        checkpoint = load_training_checkpoint(out_dir, metadata.vocabs)
        print(f"resuming {describe_progress('hmm', metadata.config, checkpoint['trainer'])}", file=sys.stderr)
    context.begin(metadata, config.device)
    log_likelihood, probing = train(config, model, labeled_cap.sentences, unlabeled_cap.sentences, collate,
                                    context.progress, cluster, out_dir, checkpoint, context.should_stop, probes_state)
    if not cluster.main:
        return Outcome(None, model, config)
    clusters = tag_corpus(model, test, collate, config.eval_batch_size, cluster.device)
    gold = [s.tags for s in test]
    scores = {**cluster_scores(gold, clusters), "state_use": state_use(clusters)}
    if config.semi_supervised:  # states are tags
        scores["accuracy"] = accuracy(gold, [vocabs.tags.decode(states) for states in clusters])
    neural = config.model == "nhmm"
    results = {
        **scores,
        "log_likelihood_per_token": log_likelihood,
        "probing": probing,
        "states": config.states,
        "model": config.model,
        "emission": config.emission if neural else None,
        "transition": config.transition if neural else None,
        "hidden": config.hidden if neural else None,
        "dataset": corpus.spec.name,
        "seed": config.seed,
        "seconds": round(time.time() - started, 1),
        "semi_supervised": config.semi_supervised,
        "data": {"train": sentence_counts(corpus.train), "labeled": sentence_counts(labeled_cap.sentences),
                 "trained_on": sentence_counts(labeled_cap.sentences + unlabeled_cap.sentences),
                 "dropped_by_length": labeled_cap.dropped + unlabeled_cap.dropped,
                 "max_length": config.max_length, "test": sentence_counts(test), "vocabulary": len(vocabs.words)},
        "resumed": resume,
    }
    save_model(out_dir, model.state_dict(), metadata)
    atomic_write_bytes(out_dir / "tags.txt",
                       "".join(" ".join(map(str, tags)) + "\n" for tags in clusters).encode("utf-8"))
    return Outcome(results, model, config)
