"""One tagging run end to end: data, embeddings, vocabularies, model, training, scores, files.

``run(config, out_dir)`` is what ``scripts/run_vsl.py`` calls: the taggers' part of a run,
:func:`train_and_score`, inside the pipeline every family shares (:mod:`vsl.pipeline`). It
writes into ``out_dir``:
``results.json`` (dev and test scores at the best dev step, the config, the seed, data counts),
``metrics.jsonl`` (every dev evaluation), the best dev model (``model.pt``, ``config.json``,
``vocab.json``; see :mod:`vsl.checkpoint`), the training checkpoint ``last.pt`` that
``resume=True`` continues from (for VSL with the prior stores, which ``--init-from`` takes),
``segments.json`` (the code of each process that trained the run,
:func:`vsl.provenance.record_segment`) and, for prior stores kept on disk, ``priors/`` (their
files and the snapshots of them that ``last.pt`` refers to).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from vsl import __version__
from vsl.checkpoint import (LAST, MODEL, PRIORS, RunMetadata, load_metadata, load_model, load_training_checkpoint,
                            load_weights, model_path, read_training_checkpoint, save_tensors)
from vsl.config import RunConfig, check_placement, require_positive
from vsl.data.batching import BATCH_ORDERS, BatchStream, Collator
from vsl.data.readers import READERS, TOKENIZERS, sentence_counts
from vsl.data.registry import Corpus, load_dataset, resolve_dataset
from vsl.data.splits import LabeledSplit, make_split, raw_text
from vsl.data.vocab import Vocabularies, build_vocabularies
from vsl.distributed import SINGLE_PROCESS, Cluster, loss_function
from vsl.embeddings import embedding_matrix, load_vectors, train_skipgram
from vsl.errors import SettingError, VslError
from vsl.latent import KLAnnealing, PriorStore
from vsl.linear_softmax import PRECISIONS
from vsl.models import BiGRUTagger, build_encoder
from vsl.objective import LOSS_AVERAGES, MixedStream, VariationalObjective
from vsl.pipeline import Outcome, RunContext, run_in_folder
from vsl.prediction import TrainedTagger, evaluate
from vsl.run_folder import describe_progress
from vsl.runtime import seed_everything
from vsl.training import SELECTION_METRIC, fit
from vsl.variational import DECODERS, LATENT_STRUCTURES, VariationalTagger

LATENTS = ("none", *LATENT_STRUCTURES)
PRIOR_STORAGES = ("memory", "disk", "auto")
PRIOR_DTYPES = {"float16": torch.float16, "float32": torch.float32}
AUTO_DISK_BYTES = 256 * 2**20  # prior_storage auto: a process's prior stores above this size go on disk

_POSITIVE = ("word_dim", "char_dim", "char_hidden", "hidden", "y_dim", "z_dim", "decoder_hidden",
             "batch_size", "unlabeled_batch_size", "eval_batch_size", "max_steps", "eval_every",
             "checkpoint_every", "prior_update_every", "skipgram_epochs", "skipgram_window",
             "alpha", "unlabeled_weight", "kl_rate", "lr", "grad_clip")


def check_config(config: RunConfig) -> None:
    """Refuse settings no run can use, naming the setting, before any data is read (a weight
    of 0 would make pyro's scaling fail mid-run, a size of 0 build an empty layer)."""
    choices = {"latent": LATENTS, "decoder": DECODERS, "decoder_precision": PRECISIONS,
               "kl_annealing": KLAnnealing.KINDS, "classifier_on": (None, "y", "z"),
               "vector_text_tokenizer": (None, *TOKENIZERS), "format": (None, *READERS),
               "prior_storage": PRIOR_STORAGES, "loss_average": LOSS_AVERAGES, "prior_dtype": tuple(PRIOR_DTYPES),
               "batch_order": tuple(BATCH_ORDERS)}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise SettingError(f"{name} {getattr(config, name)!r} is not one of "
                               f"{', '.join(str(a) for a in allowed if a is not None)}")
    if config.latent == "gauss" and config.classifier_on == "y":
        raise SettingError("classifier_on y: VSL-G (latent gauss) has only z")
    require_positive(**{name: getattr(config, name) for name in _POSITIVE})
    check_placement(config.seed, config.threads, config.device)
    for name in ("unlabeled_limit", "kl_warmup", "decoder_noise"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            raise SettingError(f"{name} must be >= 0; got {getattr(config, name)}")
    if config.decoded_words == 1 or (config.decoded_words or 0) < 0:
        raise SettingError(f"decoded_words must be 0 or null (all words) or at least 2 (PAD and UNK); "
                           f"got {config.decoded_words}")
    if config.patience is not None and config.patience < 1:
        raise SettingError(f"patience must be positive (or null for none); got {config.patience}")
    if any(source in ("auto", "none") for source in config.vector_text):
        raise SettingError("vector_text takes raw-text files or dataset names; the run's own text is always in")
    for name in ("dropout", "y_dropout"):
        if not 0 <= getattr(config, name) < 1:
            raise SettingError(f"{name} must be in [0, 1); got {getattr(config, name)}")
    if config.y_dropout and config.latent in ("none", "gauss"):
        raise SettingError(f"y_dropout acts on VSL-GG's y head; latent {config.latent} has none")


@dataclass
class PreparedData:
    corpus: Corpus
    split: LabeledSplit
    vocabs: Vocabularies
    embeddings: torch.Tensor
    embeddings_found: int


Log = Callable[[str], None] | None  # where a run's stages are reported (None: nowhere)


def word_vectors(config: RunConfig, corpus: Corpus, split: LabeledSplit, log: Log = None, progress: bool = False):
    """The pretrained vectors of a run: the given file, or skip-gram on the labeled and
    unlabeled training text (the labeled text alone if ``config.vectors_see_unlabeled`` is off)
    followed by each ``config.vector_text`` source (a raw-text file or a dataset's training and
    raw text, read as :func:`~vsl.data.splits.raw_text` reads them, with
    ``config.vector_text_tokenizer`` if set)."""
    if config.embeddings:
        if log:
            log(f"vectors: loading {config.embeddings}")
        return load_vectors(config.embeddings)
    text = [s.words for s in split.labeled]
    if config.vectors_see_unlabeled:
        text += [s.words for s in split.unlabeled]
    for source in config.vector_text:
        text += [s.words for s in raw_text(corpus, source, config.data_root, config.vector_text_tokenizer)]
    if log:
        own = "the run's training text" if config.vectors_see_unlabeled else "the run's labeled text"
        sources = " + ".join([own, *config.vector_text])
        log(f"vectors: skip-gram ({config.skipgram_epochs} epochs) on {len(text):,} sentences, "
            f"{sum(map(len, text)):,} tokens ({sources})")
    return train_skipgram(text, dim=config.word_dim, window=config.skipgram_window,
                          epochs=config.skipgram_epochs, seed=config.seed, log=log, progress=progress)


def prepare_data(config: RunConfig, log: Log = None, progress: bool = False) -> PreparedData:
    """Load and split the dataset, get word vectors, build vocabularies and the embedding
    matrix, reporting each stage to ``log`` (and skip-gram training with a bar if ``progress``)."""
    corpus = load_dataset(resolve_dataset(config.data, config.data_root, config.format))
    split = make_split(corpus, config.labeled_fraction, config.unlabeled_fraction, config.seed,
                       raw_text(corpus, config.unlabeled, config.data_root))
    if log:
        parts = {"labeled": split.labeled, "unlabeled": split.unlabeled, "dev": corpus.dev, "test": corpus.test}
        log(f"data: {corpus.spec.name}; " + ", ".join(
            f"{name} {len(part):,} sentences ({sum(map(len, part)):,} tokens)" for name, part in parts.items()))
    vectors = word_vectors(config, corpus, split, log, progress)
    if vectors.vector_size != config.word_dim:
        raise VslError(f"word vectors have {vectors.vector_size} dimensions, word_dim is {config.word_dim}")
    vocabs = build_vocabularies(split.labeled, split.unlabeled, corpus.dev + corpus.test, vectors)
    matrix, found = embedding_matrix(vocabs.words.items, vectors, seed=config.seed)
    matrix[0] = 0.0  # padding
    if log:
        log(f"vocabulary: {len(vocabs.words):,} words ({found:,} with a vector), {len(vocabs.chars):,} "
            f"characters, {len(vocabs.tags)} tags")
    return PreparedData(corpus, split, vocabs, torch.from_numpy(matrix), found)


def unlabeled_subset(sentences: list, config: RunConfig) -> list:
    """The unlabeled sentences VSL trains on: all, or ``config.unlabeled_limit`` of them drawn by
    a permutation seeded with the run's seed, so that smaller subsets nest in larger ones (the
    unlabeled-data curve of Chen et al. 2018, Figure 4). Vectors and vocabularies still come
    from all of them, so runs along the curve differ only in this."""
    if config.unlabeled_limit is None or config.unlabeled_limit >= len(sentences):
        return sentences
    order = np.random.default_rng([config.seed, len(sentences)]).permutation(len(sentences))
    return [sentences[i] for i in sorted(order[: config.unlabeled_limit])]


def build_model(config: RunConfig, vocabs: Vocabularies, embeddings: torch.Tensor | None = None):
    """The model a config names, with fresh (or the given pretrained) word embeddings."""
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars), config.word_dim, config.char_dim,
                            config.char_hidden, config.hidden, config.dropout, embeddings,
                            config.frozen_embeddings)
    if config.latent == "none":
        return BiGRUTagger(encoder, len(vocabs.tags))
    decoded = min(config.decoded_words or len(vocabs.words), len(vocabs.words))
    return VariationalTagger(encoder, len(vocabs.tags), decoded, config.latent, config.y_dim, config.z_dim,
                             config.decoder_hidden, config.classifier_on, config.variational,
                             config.decoder_precision, config.decoder, config.decoder_noise, config.y_dropout)


def trains_on_unlabeled(config: RunConfig, split: LabeledSplit) -> bool:
    return config.latent != "none" and config.unlabeled != "none" and config.unlabeled_limit != 0 \
        and bool(split.unlabeled)


def priors_on_disk(prior_storage: str, nbytes: int) -> bool:
    """Whether a process's prior stores, ``nbytes`` in all, go on disk under the setting
    ``prior_storage``: always for "disk", above :data:`AUTO_DISK_BYTES` for "auto"."""
    return prior_storage == "disk" or (prior_storage == "auto" and nbytes > AUTO_DISK_BYTES)


def build_objective(config: RunConfig, model, split: LabeledSplit, prior_folder: Path | None = None):
    """What the trainer optimises: the baseline itself, or a VSL model with its prior stores,
    as files ``<part>-<latent>.*`` in ``prior_folder`` where ``config.prior_storage`` puts
    them on disk (:func:`priors_on_disk`), else (and always without a folder) in memory."""
    if config.latent == "none":
        return model
    parts = {"labeled": split.labeled}
    if trains_on_unlabeled(config, split):
        parts["unlabeled"] = split.unlabeled
    lengths = {part: [len(s) for s in sentences] for part, sentences in parts.items()}
    dtype = PRIOR_DTYPES[config.prior_dtype]
    nbytes = sum(PriorStore.size(sum(lengths[part]), model.dims[name], dtype) for part in parts for name in model.names)
    on_disk = prior_folder is not None and priors_on_disk(config.prior_storage, nbytes)
    stores = {part: {name: PriorStore(lengths[part], model.dims[name], config.prior_update_every, dtype,
                                      path=Path(prior_folder, f"{part}-{name}") if on_disk else None)
                     for name in model.names} for part in parts}
    annealing = KLAnnealing(config.kl_annealing, config.kl_rate, config.kl_warmup)
    return VariationalObjective(model, stores["labeled"], stores.get("unlabeled"), annealing, config.alpha,
                                config.unlabeled_weight, config.first_visit_kl, config.unlabeled_trains_encoder,
                                config.unlabeled_trains_y, config.loss_average)


def training_batches(config: RunConfig, split: LabeledSplit, collate: Collator,
                     cluster: Cluster = SINGLE_PROCESS):
    """Endless shuffled batches of this rank's ``split``, resumable: labeled ones for the
    baseline, labeled + unlabeled pairs for VSL."""
    labeled = BatchStream(split.labeled, collate, cluster.local_batch_size(config.batch_size),
                          (config.seed, cluster.rank, 0), order=config.batch_order)
    if config.latent == "none":
        return labeled
    if not trains_on_unlabeled(config, split):
        return MixedStream(labeled)
    return MixedStream(labeled, BatchStream(split.unlabeled, collate, cluster.local_batch_size(config.unlabeled_batch_size),
                                            (config.seed, cluster.rank, 1), with_tags=False,
                                            order=config.batch_order))


class TrainingSetup(NamedTuple):
    """What a VSL run trains: its data, this rank's share of the split it trains on, the model
    and the objective over them."""

    data: PreparedData
    split: LabeledSplit
    model: torch.nn.Module
    objective: torch.nn.Module


def set_up_training(config: RunConfig, cluster: Cluster = SINGLE_PROCESS, log: Log = None,
                    progress: bool = False, folder: str | Path | None = None) -> TrainingSetup:
    """Data, split, model (on the cluster's device) and objective of a run from ``config``,
    seeded as every run is, so that a resumed run or a benchmark of one rebuilds exactly what
    its checkpoint was saved from. Rank 0 prepares (and caches) the word vectors first, and
    reports the stages to ``log`` (with a bar over skip-gram epochs if ``progress``). Prior
    stores kept on disk live in the run folder ``folder`` (``priors/``, in data-parallel
    training ``priors/rank<r>``); without one they are in memory."""
    seed_everything(config.seed)
    if not cluster.main:
        cluster.barrier()
    data = prepare_data(config, log if cluster.main else None, progress and cluster.main)
    if cluster.main:
        cluster.barrier()
    split = dataclasses.replace(data.split, labeled=cluster.shard(data.split.labeled),
                                unlabeled=cluster.shard(unlabeled_subset(data.split.unlabeled, config)))
    seed_everything(config.seed)
    model = build_model(config, data.vocabs, data.embeddings).to(cluster.device)
    priors = None if folder is None else Path(folder, PRIORS, f"rank{cluster.rank}" if cluster.distributed else "")
    return TrainingSetup(data, split, model, build_objective(config, model, split, priors))


def warm_start(objective, directory: str | Path, vocabs: Vocabularies) -> None:
    """Start from a finished VSL run's best weights and last priors (prior pre-training, paper
    sec. 6.4), in memory or on disk in either run; the run must share this one's vocabularies
    and data split. A labeled-only run can start one with unlabeled data, whose priors then
    start at N(0, I)."""
    if not isinstance(objective, VariationalObjective):
        raise VslError("--init-from continues a VSL run; the baseline has no priors")
    weights, _, saved_vocabs = load_model(directory)
    if saved_vocabs != vocabs.to_dict():
        raise VslError(f"{directory}: its vocabularies differ from this run's (other data, split or embeddings)")
    try:
        objective.model.load_state_dict(weights)
    except RuntimeError as err:
        raise VslError(f"{directory}: its weights do not fit this model ({err})") from None
    checkpoint = Path(directory) / LAST
    if not checkpoint.is_file():
        raise VslError(f"{directory}: no {LAST} with its priors (a run trained under torchrun keeps none)")
    try:
        objective.load_prior_state(read_training_checkpoint(checkpoint)["priors"], missing_ok=True)
    except (KeyError, ValueError) as err:
        raise VslError(f"{directory}: priors do not fit this run's sentences ({err})") from None


def load_run(directory: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, Vocabularies, RunMetadata]:
    """The best model of a finished (or stopped) run folder in eval mode, its vocabularies and
    its metadata."""
    metadata = load_metadata(directory, "vsl")
    config = RunConfig.from_saved(metadata.config, str(Path(directory) / "config.json"))
    vocabs = Vocabularies.from_dict(metadata.vocabs)
    model = load_weights(build_model(config, vocabs), model_path(directory))
    return model.to(device).eval(), vocabs, metadata


def load_trained(directory: str | Path, device: str = "cpu") -> TrainedTagger:
    """The best model of a run folder, ready to tag new text."""
    model, vocabs, metadata = load_run(directory, device)
    return TrainedTagger(model.predict, Collator(vocabs), vocabs.tags.decode, metadata.tokenizer)


def run(config: RunConfig, out_dir: str | Path, progress: bool = True, command: str | None = None,
        resume: bool = False, should_stop: Callable[[], bool] | None = None, overwrite: bool = False) -> dict:
    """Train, select on dev, score dev and test, and write the run's files into ``out_dir``;
    ``command`` (the command line that asked for the run) is recorded with the results.

    Training writes ``last.pt`` every ``config.checkpoint_every`` steps and when it ends;
    ``resume=True`` continues from it (the same settings, as ``vsl train --resume`` reads them).
    A folder that holds an earlier run is refused unless ``resume`` or ``overwrite`` (which
    empties it first), as is one that another run is writing (:func:`vsl.pipeline.run_in_folder`).
    Started by ``torchrun``, the processes train one model data-parallel
    (:mod:`vsl.distributed`); rank 0 writes the files and every rank returns the results.
    """
    check_config(config)

    def one_process_to_resume(cluster: Cluster) -> None:
        if resume and cluster.distributed:
            raise VslError("--resume continues a run in one process; start it without torchrun")

    return run_in_folder(train_and_score, config, out_dir, progress, command, resume, should_stop, overwrite,
                         one_process_to_resume)


def train_and_score(config: RunConfig, context: RunContext) -> Outcome:
    """The tagger family's part of a run (:func:`vsl.pipeline.run_in_folder`): data, model and
    objective, training with dev selection, and the dev and test scores of the best model."""
    cluster, out_dir, resume = context.cluster, context.folder, context.resume
    device = cluster.device
    data, split, model, objective = set_up_training(config, cluster, log=lambda line: print(line, file=sys.stderr),
                                                    progress=context.progress, folder=out_dir)
    task = data.corpus.spec.task
    checkpoint = load_training_checkpoint(out_dir, data.vocabs.to_dict()) if resume else None
    if checkpoint is not None:
        print(f"resuming {describe_progress('vsl', config.to_dict(), checkpoint['trainer'])}", file=sys.stderr)
    if not resume and config.init_from:
        warm_start(objective, config.init_from.replace("{seed}", str(config.seed)), data.vocabs)
    context.begin(RunMetadata("vsl", config.to_dict(), data.vocabs.to_dict(), data.corpus.spec.tokenizer),
                  config.device)
    collate = Collator(data.vocabs)

    def score(sentences) -> dict:
        return cluster.from_main(lambda: evaluate(model, sentences, collate, task, config.eval_batch_size, device))

    def save_best(step: int, dev: dict) -> None:
        save_tensors(out_dir / MODEL, model.state_dict())

    def save_last(state: dict) -> None:
        save_tensors(out_dir / LAST, state)  # after the prior snapshots it refers to, before older ones go
        if isinstance(objective, VariationalObjective):
            objective.remove_stale_snapshots()

    result = fit(objective, training_batches(config, split, collate, cluster),
                 lambda: score(data.corpus.dev), SELECTION_METRIC[task],
                 max_steps=config.max_steps, eval_every=config.eval_every, lr=config.lr,
                 grad_clip=config.grad_clip, patience=config.patience,
                 log_path=out_dir / "metrics.jsonl" if cluster.main else None,
                 on_improve=save_best if cluster.main else None, device=device, progress=context.progress,
                 on_nonfinite=config.on_nonfinite, checkpoint_every=config.checkpoint_every,
                 save_checkpoint=save_last if cluster.main and not cluster.distributed else None,
                 resume=checkpoint, should_stop=context.should_stop, loss_fn=loss_function(objective, cluster),
                 cluster=cluster)
    if cluster.main:  # the model scored below; model.pt of a resumed run may predate a damage
        save_tensors(out_dir / MODEL, model.state_dict())
    if isinstance(objective, VariationalObjective):  # what resuming needs is in last.pt's snapshots
        objective.remove_working_prior_files()
    results = {
        "dataset": data.corpus.spec.name,
        "task": task,
        "model": "bigru" if config.latent == "none" else f"vsl-{config.latent}",
        "trained_on_unlabeled": trains_on_unlabeled(config, data.split),
        "seed": config.seed,
        "dev": score(data.corpus.dev),
        "test": score(data.corpus.test),
        "best_step": result.best_step,
        "steps": result.steps,
        "interrupted": result.interrupted,
        "resumed_from_step": checkpoint["trainer"]["step"] if checkpoint else None,
        "skipped_steps": result.skipped,
        "train_seconds": round(result.seconds, 1),
        "train_tokens_per_second": round(result.tokens / max(result.seconds, 1e-9), 1),
        "data": {"labeled": sentence_counts(data.split.labeled), "unlabeled": sentence_counts(data.split.unlabeled),
                 "unlabeled_trained_on": sentence_counts(unlabeled_subset(data.split.unlabeled, config))
                 if trains_on_unlabeled(config, data.split) else sentence_counts([]),
                 "dev": sentence_counts(data.corpus.dev), "test": sentence_counts(data.corpus.test),
                 "vocabulary": len(data.vocabs.words), "with_vectors": data.embeddings_found},
        "vsl_version": __version__,
    }
    return Outcome(results, model, config)
