"""Training and tagging for the HMM family (Tran et al. 2016, sec. 4).

* :func:`train_neural_hmm`: direct marginal likelihood. For every minibatch, up to
  ``max_updates_per_batch`` (6 in the paper) Adam steps on the mean per-token -log p(x), stopping
  early once the batch log-likelihood changes by a relative amount below ``tolerance``; gradient
  norm clipped to ``grad_clip``. Two tricks of the authors' released code, which its README says
  the paper did not use, are options: annealed gradient noise and the loss it is sized for.
* :func:`tag_corpus`: Viterbi states for every sentence, any length.
* :func:`cap_length`: the training length cap (the paper trains on sentences of at most 40
  tokens and tags them all), reported with its counts.
* :class:`TrainingStopped`: a stop request (Ctrl-C, SIGTERM; see :class:`vsl.optimization.StopRequest`)
  honoured between batches, after the training state is saved.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from tqdm import tqdm

from vsl.data.batching import Batch, Collator
from vsl.data.readers import Sentence
from vsl.distributed import SINGLE_PROCESS, Cluster, loss_function
from vsl.errors import VslError
from vsl.optimization import apply_update, random_state, restore_random_state, stop_requested
from vsl.prediction import predict_ids


class TrainingStopped(Exception):
    """Training ended on request before its last epoch; the message says where. ``saved``:
    whether the training state at that point was saved, so that a resumed run continues it."""

    def __init__(self, message: str, saved: bool):
        super().__init__(message)
        self.saved = saved


class LengthCap(NamedTuple):
    """Sentences kept by :func:`cap_length`, with the counts to report."""

    sentences: list[Sentence]
    kept: int
    dropped: int
    max_length: int | None


def cap_length(sentences: Sequence[Sentence], max_length: int | None) -> LengthCap:
    """The sentences of at most ``max_length`` tokens (all of them when ``None``), in order."""
    if max_length is not None and max_length < 1:
        raise VslError(f"max_length must be positive; got {max_length}")
    kept = [s for s in sentences if max_length is None or len(s) <= max_length]
    if sentences and not kept:
        raise VslError(f"no training sentence has at most {max_length} tokens")
    return LengthCap(kept, len(kept), len(sentences) - len(kept), max_length)


LOSS_SCALES = ("token", "state")


class GradientNoise:
    """Annealed Gaussian gradient noise (Neelakantan et al. 2015): at the t-th update (t from 0)
    every gradient entry gets noise of standard deviation ``eta / (1 + t) ** decay``. (The paper
    anneals the variance by that formula; the NHMM authors' code passes it to the sampler as the
    standard deviation, which is what this follows.) Draws come from a generator of their own,
    seeded with ``seed``, so every data-parallel rank adds the same noise and a resumed run
    continues the same stream."""

    def __init__(self, parameters, eta: float, decay: float, seed: int, device: str | torch.device):
        self.parameters = [p for p in parameters if p.requires_grad]
        self.eta, self.decay = eta, decay
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def add(self, step: int) -> None:
        std = self.eta / (1 + step) ** self.decay
        for parameter in self.parameters:
            if parameter.grad is not None:
                noise = torch.randn(parameter.grad.shape, generator=self.generator, device=parameter.grad.device,
                                    dtype=parameter.grad.dtype)
                parameter.grad.add_(noise, alpha=std)


def train_neural_hmm(model, batches_fn: Callable[[int], Iterable[Batch]], epochs: int, lr: float = 1e-3,
                     max_updates_per_batch: int = 6, tolerance: float = 1e-4, stop_when_worse: bool = False,
                     grad_clip: float = 5.0,
                     loss_scale: str = "token", gradient_noise: float = 0.0, noise_decay: float = 0.55,
                     noise_seed: int = 0,
                     device: str | torch.device = "cpu", progress: bool = True, batches_per_epoch: int | None = None,
                     log: Callable[[str], None] | None = print, cluster: Cluster = SINGLE_PROCESS,
                     checkpoint_every: int | None = None, save_checkpoint: Callable[[dict], None] | None = None,
                     resume: dict | None = None, should_stop: Callable[[], bool] | None = None) -> list[float]:
    """Maximise the marginal likelihood of a :class:`~hmm.models.NeuralHMM` (or any module whose
    ``loss(batch)`` is -log p(x) per token) with Adam.

    ``batches_fn(epoch)`` gives the epoch's batches, the same ones each time it is called for
    that epoch. Each batch gets up to ``max_updates_per_batch`` updates of the mean per-token
    log-likelihood; the loop moves on when ``|ll - ll_previous| < tolerance * |ll_previous|``
    between consecutive evaluations or, with ``stop_when_worse``, when ``ll < ll_previous``
    (Tran et al. 2016, sec. 8). The gradient is that of -log p(x) per token
    (``loss_scale="token"``), or of the batch's summed -log p(x) over the number of states
    (``"state"``, as the authors' code scales it, so that its clip norm and noise sizes mean the
    same). ``gradient_noise`` > 0 adds :class:`GradientNoise` (``noise_decay``, ``noise_seed``) to
    the clipped gradients. Returns, per epoch, the per-token log-likelihood of its
    batches as last evaluated (before the batch's last update, or after it when the tolerance
    ended the batch's updates). A non-finite
    log-likelihood or gradient raises :class:`~vsl.optimization.NonFiniteError` naming the epoch and
    batch, before any update from it.

    ``batches_per_epoch`` (how many ``batches_fn`` gives) is the total of the progress bar.

    ``save_checkpoint`` receives the training state (weights, Adam, position in the epoch,
    running sums, torch random state) every ``checkpoint_every`` batches; ``resume`` continues
    from one, skipping the batches its epoch had done, so the result is that of a run never
    stopped. When ``should_stop()`` turns true, the loop ends before the next batch: the state is
    saved (when ``save_checkpoint`` is given) and :class:`TrainingStopped` raised, so a resumed
    run loses no finished batch.

    In data-parallel training every rank passes its own batches (as many per epoch on every
    rank); the gradients are averaged by DistributedDataParallel and the stopping test reads
    the log-likelihood of all ranks' batches together, so the ranks stay in step; a stop request
    on any rank stops them all at the same batch.
    """
    if epochs < 0 or max_updates_per_batch < 1:
        raise VslError(f"need epochs >= 0 and max_updates_per_batch >= 1; got {epochs}, {max_updates_per_batch}")
    if loss_scale not in LOSS_SCALES:
        raise VslError(f"loss_scale {loss_scale!r} is not one of {', '.join(LOSS_SCALES)}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_function(model, cluster)
    noise = GradientNoise(model.parameters(), gradient_noise, noise_decay, noise_seed, device) \
        if gradient_noise > 0 else None
    state = {"epoch": 0, "batch": 0, "total": 0.0, "tokens": 0, "updates": 0, "steps": 0, "history": []}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        restore_random_state(resume["rng"])
        state = {"steps": 0, **resume["trainer"]}  # checkpoints before "steps" was kept: no noise was used
        if noise is not None and "noise_rng" in resume:
            noise.generator.set_state(resume["noise_rng"])
    model.train()
    while state["epoch"] < epochs:
        epoch = state["epoch"]
        bar = tqdm(itertools.islice(batches_fn(epoch), state["batch"], None), disable=not progress,
                   dynamic_ncols=True, desc=f"epoch {epoch + 1}", mininterval=2.0, initial=state["batch"],
                   total=batches_per_epoch)
        for batch in bar:
            if stop_requested(should_stop, cluster):
                bar.close()
                if save_checkpoint is not None:
                    save_checkpoint(_training_state(model, optimizer, state, noise))
                raise TrainingStopped(f"stopped in epoch {epoch + 1} of {epochs} after batch {state['batch']}",
                                      saved=save_checkpoint is not None)
            batch = batch.to(device)
            state["batch"] += 1
            previous = None
            scale = batch.n_tokens / model.n_states if loss_scale == "state" else 1.0
            for _ in range(max_updates_per_batch):
                loss = loss_fn(batch)
                summed, n_tokens = cluster.sum(-loss.item() * batch.n_tokens, batch.n_tokens)
                current = summed / n_tokens
                if previous is not None and (abs(current - previous) < tolerance * abs(previous)
                                             or (stop_when_worse and current < previous)):
                    break
                apply_update(model, optimizer, loss * scale, grad_clip,
                             f"epoch {epoch + 1}, batch {state['batch']} ({batch.describe()})", cluster,
                             before_step=None if noise is None else lambda: noise.add(state["steps"]))
                state["updates"] += 1
                state["steps"] += 1
                previous = current
            state["total"] += current * n_tokens
            state["tokens"] += n_tokens
            bar.set_postfix(ll=f"{state['total'] / state['tokens']:.4f}", refresh=False)
            if save_checkpoint is not None and checkpoint_every and state["batch"] % checkpoint_every == 0:
                save_checkpoint(_training_state(model, optimizer, state, noise))
        if not state["tokens"]:
            raise VslError("training needs at least one sentence")
        state["history"] = [*state["history"], state["total"] / state["tokens"]]
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: log-likelihood per token {state['history'][-1]:.4f} "
                f"({state['updates']} updates)")
        state.update(epoch=epoch + 1, batch=0, total=0.0, tokens=0, updates=0)
    if save_checkpoint is not None:  # trained: a resumed run goes straight to tagging
        save_checkpoint(_training_state(model, optimizer, state, noise))
    return state["history"]


def _training_state(model, optimizer, counters: dict, noise: GradientNoise | None) -> dict:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": random_state(),
             "trainer": dict(counters)}
    if noise is not None:
        state["noise_rng"] = noise.generator.get_state()
    return state


def tag_corpus(model, sentences: Sequence[Sentence], collate: Collator, batch_size: int = 256,
               device: str | torch.device = "cpu") -> list[list[int]]:
    """Viterbi states of every sentence (all lengths), in the order of ``sentences``."""
    return predict_ids(model.tag, sentences, collate, batch_size, device)
