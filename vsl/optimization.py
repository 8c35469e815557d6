"""The parts of a training loop that every model family shares (the VSL loop of
:mod:`vsl.training` and the neural-HMM loop of :mod:`hmm.train`):

* :func:`make_optimizer`: Adam over the trainable parameters;
* :func:`apply_update`: one clipped optimizer step that refuses a non-finite loss or gradient
  (:class:`NonFiniteError`) before the parameters change;
* :class:`StopRequest` and :func:`stop_requested`: Ctrl-C / SIGTERM as a request honoured at
  the next step boundary, on every rank at once;
* :func:`random_state` / :func:`restore_random_state`: torch's random state as checkpoints
  keep it.
"""

from __future__ import annotations

import signal
from typing import Callable

import torch

from vsl.distributed import SINGLE_PROCESS, Cluster
from vsl.errors import VslError


def make_optimizer(model, lr: float) -> torch.optim.Optimizer:
    """Adam over the trainable parameters. The fused kernel updates the large embedding matrix
    in one pass: the same algorithm, about 10x faster on CPU than the per-tensor loop for an
    80k-word vocabulary."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)


class StopRequest:
    """Turns Ctrl-C and SIGTERM into a request that a training loop (:func:`vsl.training.fit`,
    :func:`hmm.train.train_neural_hmm`) honours at the next step boundary, so the run ends with
    a consistent checkpoint; a second signal interrupts at once.
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
