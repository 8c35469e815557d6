"""Training and evaluating taggers.

:func:`fit` runs step-based training as the authors' code does (Adam, gradient-norm clipping,
dev evaluation every ``eval_every`` steps), keeps the weights of the best dev score, stops after
``patience`` evaluations without improvement, and appends every evaluation to a JSON-lines log.
A model trains through two methods: ``loss(batch) -> scalar`` and ``predict(batch) -> (B, T)``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from vsl.data.batching import Batch, Collator, iterate_batches
from vsl.data.readers import Sentence
from vsl.data.tagging import normalize_word
from vsl.distributed import SINGLE_PROCESS, Cluster
from vsl.errors import VslError
from vsl.metrics import tagging_scores

SELECTION_METRIC = {"pos": "accuracy", "ner": "f1"}


@torch.no_grad()
def predict_ids(predict: Callable[[Batch], torch.Tensor], sentences: Sequence[Sentence], collate: Collator,
                batch_size: int = 100, device: str = "cpu") -> list[list[int]]:
    """Run ``predict(batch) -> (B, T)`` over length-bucketed batches and return each sentence's
    ids, unpadded, in the order of ``sentences``."""
    predictions: list[list[int] | None] = [None] * len(sentences)
    for batch in iterate_batches(sentences, collate, batch_size, with_tags=False):
        ids = predict(batch.to(device)).cpu()
        for row, index in enumerate(batch.indices.tolist()):
            predictions[index] = ids[row, : len(sentences[index])].tolist()
    return predictions


def predict_tags(model, sentences: Sequence[Sentence], collate: Collator, batch_size: int = 100,
                 device: str = "cpu") -> list[list[str]]:
    """Tag every sentence (in input order) with the model's ``predict``, in eval mode."""
    was_training = model.training
    model.eval()
    ids = predict_ids(model.predict, sentences, collate, batch_size, device)
    model.train(was_training)
    return [collate.vocabs.tags.decode(row) for row in ids]


@dataclass
class TrainedTagger:
    """A trained model ready to tag new text (``scripts/tag.py``): ``predict(batch) -> (B, T)``
    ids, ``labels`` turning one sentence's ids into its tags, and the name of the tokenizer its
    training text went through."""

    predict: Callable[[Batch], torch.Tensor]
    collate: Collator
    labels: Callable[[list[int]], list[str]]
    tokenizer: str

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64, device: str = "cpu") -> list[list[str]]:
        """Tags of each token list, in order. Words are normalised as in training (digits to 0);
        unknown words and characters map to UNK; an empty sentence gets no tags."""
        prepared = [Sentence(tuple(normalize_word(w) for w in words)) for words in sentences]
        filled = [i for i, sentence in enumerate(prepared) if len(sentence)]
        tags: list[list[str]] = [[] for _ in prepared]
        ids = predict_ids(self.predict, [prepared[i] for i in filled], self.collate, batch_size, device)
        for index, row in zip(filled, ids):
            tags[index] = self.labels(row)
        return tags


def evaluate(model, sentences: Sequence[Sentence], collate: Collator, task: str,
             batch_size: int = 100, device: str = "cpu") -> dict:
    """Scores of the model's predictions against the gold tags (:func:`vsl.metrics.tagging_scores`)."""
    predicted = predict_tags(model, sentences, collate, batch_size, device)
    return tagging_scores([s.tags for s in sentences], predicted, task)


def make_optimizer(model, lr: float) -> torch.optim.Optimizer:
    """Adam over the trainable parameters. The fused kernel updates the large embedding matrix
    in one pass: the same algorithm, about 10x faster on CPU than the per-tensor loop for an
    80k-word vocabulary."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)


class StopRequest:
    """Turns Ctrl-C and SIGTERM into a request that :func:`fit` honours at the next step
    boundary, so the run ends with a consistent checkpoint; a second signal interrupts at once.
    A script that stops before its end on such a request exits with :attr:`EXIT_STATUS`."""

    EXIT_STATUS = 130  # 128 + SIGINT, the shell's status for an interrupted command

    def __init__(self):
        self.requested = False

    def install(self) -> "StopRequest":
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


def stop_requested(should_stop: Callable[[], bool] | None, cluster: Cluster = SINGLE_PROCESS) -> bool:
    """Whether ``should_stop()`` holds on any rank (a collective call in data-parallel training,
    so that every rank stops at the same step)."""
    return should_stop is not None and not cluster.all_true(not should_stop())


class NonFiniteError(VslError):
    """A loss or gradient norm that is NaN or infinite."""


def apply_update(model, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float,
                 where: str = "update", cluster: Cluster = SINGLE_PROCESS,
                 before_step: Callable[[], None] | None = None) -> None:
    """One optimizer step down ``loss`` with the gradient norm clipped to ``grad_clip``;
    ``before_step()`` runs on the clipped gradients just before the step (gradient noise).

    A non-finite loss or gradient norm raises :class:`NonFiniteError` (its message starts with
    ``where``) before the parameters change. In data-parallel training the ranks agree on the
    loss check first (a rank alone with a NaN would otherwise leave the others waiting), and
    the gradient norm is that of the averaged gradients, the same on every rank."""
    if not cluster.all_true(bool(torch.isfinite(loss))):
        raise NonFiniteError(f"{where}: the loss is {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteError(f"{where}: the gradient norm is {norm.item()}")
    if before_step is not None:
        before_step()
    optimizer.step()


def train_step(model, optimizer: torch.optim.Optimizer, batch, grad_clip: float, where: str = "update",
               loss_fn: Callable | None = None, cluster: Cluster = SINGLE_PROCESS) -> float:
    """One update on ``model.loss(batch)`` (or ``loss_fn(batch)``, e.g. the model's loss under
    DistributedDataParallel); returns the loss. A model with ``commit_step`` (the VSL
    objective's prior updates) is told once the step has been taken."""
    loss = (loss_fn or model.loss)(batch)
    apply_update(model, optimizer, loss, grad_clip, where, cluster)
    commit = getattr(model, "commit_step", None)
    if commit is not None:
        commit()
    return loss.item()


@dataclass
class FitResult:
    best_step: int
    best_dev: dict
    steps: int
    seconds: float
    tokens: int
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM before max_steps or patience
    skipped: list[int] = field(default_factory=list)  # steps whose batch was skipped (non-finite)


@dataclass
class TrainerState:
    """Everything :func:`fit` counts, as plain values (saved in checkpoints)."""

    step: int = 0
    best_score: float = float("-inf")
    best_step: int = 0
    best_dev: dict = field(default_factory=dict)
    stale: int = 0
    tokens: int = 0
    seconds: float = 0.0
    running: float | None = None
    history: list[dict] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    finished: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def random_state() -> dict:
    """torch's random state, of the CPU and of every visible GPU (dropout and sampling draw on
    both), as saved in training checkpoints."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict | torch.Tensor) -> None:
    """Set what :func:`random_state` saved; a bare tensor is a CPU state alone (neural-HMM
    checkpoints written before the GPU states were saved)."""
    state = {"torch": state} if isinstance(state, torch.Tensor) else state
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_checkpoint(model, optimizer, best_state, state: TrainerState, batches) -> dict:
    """The state that lets :func:`fit` continue exactly where it stopped: weights, optimizer,
    best weights so far, counters, the torch random state, the data order and, for VSL, the
    prior stores (those on disk as references to snapshots of their files, written now)."""
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best": best_state,
                  "trainer": state.to_dict(), "rng": random_state(), "batches": batches.state_dict()}
    if hasattr(model, "prior_state"):
        checkpoint["priors"] = model.prior_state()
    return checkpoint


def restore_checkpoint(checkpoint: dict, model, optimizer, batches) -> tuple[dict | None, TrainerState]:
    """Load :func:`training_checkpoint` into the objects; returns (best weights, counters). The
    priors are taken out of ``checkpoint`` once loaded, so that their copy (which may take
    gigabytes, or map snapshot files) is not kept for the rest of training."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    batches.load_state_dict(checkpoint["batches"])
    if hasattr(model, "load_prior_state"):
        model.load_prior_state(checkpoint.pop("priors"))
    restore_random_state(checkpoint["rng"])
    return checkpoint["best"], TrainerState(**checkpoint["trainer"])


def fit(model, batches, evaluate_dev: Callable[[], dict], select: str, *,
        max_steps: int, eval_every: int, lr: float, grad_clip: float, patience: int | None = None,
        log_path: str | Path | None = None, on_improve: Callable[[int, dict], None] | None = None,
        device: str = "cpu", progress: bool = True, on_nonfinite: str = "stop",
        checkpoint_every: int | None = None, save_checkpoint: Callable[[dict], None] | None = None,
        resume: dict | None = None, should_stop: Callable[[], bool] | None = None,
        loss_fn: Callable | None = None, cluster: Cluster = SINGLE_PROCESS) -> FitResult:
    """Train ``model`` on ``batches`` and leave it holding the weights of the best dev score.

    ``select`` names the dev score to maximise; ``on_improve(step, dev)`` is called at each
    new best (to save a checkpoint). Training ends early, keeping the best model so far, when
    ``should_stop()`` turns true between steps (see :class:`StopRequest`; a checkpoint is
    written) or on a KeyboardInterrupt (none is: the step it cut may be half done).

    A NaN or infinite loss or gradient stops training with :class:`NonFiniteError` naming the
    step and batch (``on_nonfinite="stop"``) or skips that batch (``"skip"``); either way the
    parameters are left as they were before it. ``save_checkpoint`` receives
    :func:`training_checkpoint` every ``checkpoint_every`` steps and when training ends
    (``batches`` must then have ``state_dict``); ``resume`` continues from one of those.

    Data-parallel training (:mod:`vsl.distributed`) passes the ``cluster`` and the wrapped
    ``loss_fn``; ``evaluate_dev`` must then give every rank the same scores, and stop requests
    are agreed on by all ranks.
    """
    if on_nonfinite not in ("stop", "skip"):
        raise VslError(f"on_nonfinite must be stop or skip; got {on_nonfinite!r}")
    optimizer = make_optimizer(model, lr)
    best_state, state = None, TrainerState()
    if resume is not None:
        best_state, state = restore_checkpoint(resume, model, optimizer, batches)
    log = Path(log_path).open("w", encoding="utf-8") if log_path else None
    if log:  # the log holds what the (possibly resumed) state has seen, then what follows
        log.writelines(json.dumps(record) + "\n" for record in state.history)
    begun = time.perf_counter() - state.seconds

    def checkpoint() -> None:
        if save_checkpoint is not None:
            state.seconds = time.perf_counter() - begun
            save_checkpoint(training_checkpoint(model, optimizer, best_state, state, batches))

    bar = tqdm(total=max_steps, initial=state.step, disable=not progress, dynamic_ncols=True, desc="train",
               mininterval=2.0)
    interrupted = False
    try:
        model.train()
        while state.step < max_steps and not state.finished:
            if stop_requested(should_stop, cluster):
                interrupted = True
                break
            batch = next(batches).to(device)
            state.step += 1
            step = state.step
            try:
                loss = train_step(model, optimizer, batch, grad_clip, f"step {step}", loss_fn, cluster)
            except NonFiniteError as err:
                message = f"{err} on {batch.describe()}"
                if on_nonfinite == "stop":
                    raise NonFiniteError(f"{message}; training stopped, checkpoints keep the last good state") from None
                state.skipped.append(step)
                _record(state, log, {"step": step, "skipped": message})
            else:
                state.tokens += batch.n_tokens
                state.running = loss if state.running is None else 0.98 * state.running + 0.02 * loss
            bar.update()
            bar.set_postfix(loss=f"{state.running or 0.0:.4f}", best=f"{state.best_score:.4f}", refresh=False)
            if step % eval_every == 0 or step == max_steps:
                _evaluate(state, evaluate_dev, select, patience, log, begun)
                if state.best_step == step:
                    best_state = copy.deepcopy(model.state_dict())
                    if on_improve:
                        on_improve(step, state.best_dev)
            state.finished = state.finished or step == max_steps
            if checkpoint_every and step % checkpoint_every == 0 and not state.finished:
                checkpoint()
        checkpoint()
    except KeyboardInterrupt:  # mid-step: the last periodic checkpoint stays the consistent one
        interrupted = True
    finally:
        bar.close()
        if log:
            log.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(state.best_step, state.best_dev, state.step, time.perf_counter() - begun, state.tokens,
                     state.history, interrupted, state.skipped)


def _evaluate(state: TrainerState, evaluate_dev, select: str, patience: int | None, log, begun: float) -> None:
    """Score dev at ``state.step``, log it, and update the best score and patience counters."""
    dev = evaluate_dev()
    _record(state, log, {"step": state.step, "loss": state.running, "seconds": time.perf_counter() - begun,
                         "dev": dev})
    if dev[select] > state.best_score:
        state.best_score, state.best_step, state.best_dev, state.stale = dev[select], state.step, dev, 0
    else:
        state.stale += 1
        state.finished = patience is not None and state.stale >= patience


def _record(state: TrainerState, log, record: dict) -> None:
    """Keep ``record`` (an evaluation or a skipped batch) in the state's history, which a
    resumed run writes back to its log, and append it to the open log."""
    state.history.append(record)
    if log:
        log.write(json.dumps(record) + "\n")
        log.flush()
