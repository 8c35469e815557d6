"""The step-based training loop of the taggers (BiGRU baseline and VSL models).

:func:`fit` runs step-based training as the authors' code does (Adam, gradient-norm clipping,
dev evaluation every ``eval_every`` steps), keeps the weights of the best dev score, stops after
``patience`` evaluations without improvement, and appends every evaluation to a JSON-lines log.
A model trains through two methods: ``loss(batch) -> scalar`` and ``predict(batch) -> (B, T)``.
The pieces it shares with the neural-HMM loop are in :mod:`vsl.optimization`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from vsl.distributed import SINGLE_PROCESS, Cluster
from vsl.optimization import (NonFiniteError, apply_update, make_optimizer, random_state, restore_random_state,
                              stop_requested)

SELECTION_METRIC = {"pos": "accuracy", "ner": "f1"}


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
