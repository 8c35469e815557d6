"""Gaussian latent variables of the VSL models (Chen et al. 2018, sec. 3).

* :class:`GaussianHead`: the diagonal Gaussian posteriors q(y|h), q(z|h) and q(z|y,h), whose
  means and log-variances are linear functions of their inputs.
* :func:`reparameterize`: one reparameterized sample in training (the mean at test).
* :func:`gaussian_kl`: the closed form of the ELBO's KL terms, written out independently of
  pyro (training takes the KLs from pyro's ``TraceMeanField_ELBO``; the tests check the two
  agree).
* :class:`PriorStore`: the per-token priors of the iterative prior updates (sec. 3.3,
  eqs. 10-11).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vsl.checkpoint import write_snapshot
from vsl.errors import VslError


class GaussianHead(nn.Module):
    """A diagonal Gaussian whose mean and log-variance are linear in the input (sec. 3):
    the form of q(y|h), q(z|h) and q(z|y,h)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, 2 * out_dim)
        self.out_dim = out_dim

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` (..., in_dim) -> (mean, logvar), each (..., out_dim)."""
        mean, logvar = self.linear(h).chunk(2, dim=-1)
        return mean, logvar


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, sample: bool) -> torch.Tensor:
    """mean + exp(logvar / 2) * eps with eps ~ N(0, I) when ``sample``, else the mean: the
    paper draws one sample per token in training and uses the mean at test."""
    if not sample:
        return mean
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def gaussian_kl(mean_q: torch.Tensor, logvar_q: torch.Tensor,
                mean_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, diag exp(logvar_q)) || N(mean_p, diag exp(logvar_p))) in closed form,
    summed over the last dimension: a KL term of the ELBO (sec. 3, eq. 9)."""
    ratio = torch.exp(logvar_q - logvar_p)
    distance = (mean_q - mean_p).pow(2) * torch.exp(-logvar_p)
    return 0.5 * (ratio + distance - 1.0 - (logvar_q - logvar_p)).sum(dim=-1)


class PriorStore:
    """Per-token Gaussian priors for one latent variable (iterative prior updates, sec. 3.3,
    eqs. 10-11).

    Every token of a dataset starts with the prior N(0, I). Each :meth:`update` counts one visit
    of each sentence in the batch; when a sentence's count reaches a multiple of
    ``update_every`` its tokens' priors become that visit's posterior means and log-variances.
    The prior seen at a visit is thus the posterior of the sentence's previous update visit.
    Stored values are detached copies: no gradient flows into the store.

    Storage is flat over all tokens and stays on the CPU: ``offsets`` (n_sentences + 1,) are the
    cumulative sentence lengths, ``mean`` and ``logvar`` (n_tokens, dim) hold the priors in
    ``dtype`` and ``visits`` (n_sentences,) the visit counts. With the default float16 a token
    costs 4 * dim bytes (mean and log-variance, 2 bytes each), half of float32.

    With ``path`` the store is on disk: ``mean`` and ``logvar`` are memory maps of the files
    ``<path>.mean.<dtype>`` and ``<path>.logvar.<dtype>`` (created afresh, all zeros), so they
    take the operating system's page cache rather than the process's memory; ``offsets`` and
    ``visits`` stay in memory.
    """

    TENSORS = ("mean", "logvar")  # the per-token tensors, on disk for a store with a path

    def __init__(self, lengths: Sequence[int], dim: int, update_every: int = 1,
                 dtype: torch.dtype = torch.float16, path: str | Path | None = None):
        lengths = torch.as_tensor(lengths, dtype=torch.int64)
        if lengths.dim() != 1 or (lengths < 0).any():
            raise ValueError("lengths must be a sequence of non-negative integers")
        if dim < 1 or update_every < 1:
            raise ValueError("dim and update_every must be positive")
        self.dim = dim
        self.update_every = update_every
        self.dtype = dtype
        self.path = None if path is None else Path(path)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        self.mean, self.logvar = (self._allocate(name) for name in self.TENSORS)
        self.visits = torch.zeros(len(lengths), dtype=torch.int64)
        self._snapshot_step: int | None = None  # of the snapshots the last state_dict wrote

    @staticmethod
    def size(n_tokens: int, dim: int, dtype: torch.dtype = torch.float16) -> int:
        """Bytes of the priors (mean and log-variance) of ``n_tokens`` tokens."""
        return 2 * n_tokens * dim * dtype.itemsize

    def _file(self, name: str, step: int | str | None = None) -> Path:
        """The file of tensor ``name`` ("mean" or "logvar") of a store on disk, or (with
        ``step``) its snapshot of that step."""
        tag = "" if step is None else f".step{step}"
        return self.path.with_name(f"{self.path.name}.{name}{tag}.{str(self.dtype).removeprefix('torch.')}")

    def _allocate(self, name: str) -> torch.Tensor:
        """Tensor ``name``, all zeros: in memory, or a memory map of its file, whose disk space
        is reserved first (a disk that fills up under a memory map kills the process)."""
        shape = (self.n_tokens, self.dim)
        if self.path is None:
            return torch.zeros(shape, dtype=self.dtype)
        path = self._file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = math.prod(shape) * self.dtype.itemsize
        with path.open("wb") as out:
            try:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(out.fileno(), 0, size)
                else:  # macOS: no reservation, the file is sparse until written
                    out.truncate(size)
            except OSError as err:
                raise VslError(f"{path}: cannot reserve the disk space of the priors ({err.strerror})") from None
        return torch.from_numpy(np.memmap(path, torch.empty(0, dtype=self.dtype).numpy().dtype, "r+", shape=shape))

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self._tensors().values())

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"offsets": self.offsets, "mean": self.mean, "logvar": self.logvar, "visits": self.visits}

    def _positions(self, indices: torch.Tensor, lengths: torch.Tensor,
                   width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat token rows (B, width), clamped into range, and the (B, width) real-token mask."""
        starts = self.offsets[indices]
        if not torch.equal(self.offsets[indices + 1] - starts, lengths):
            raise ValueError("batch lengths differ from the stored sentence lengths")
        steps = torch.arange(width)
        flat = (starts[:, None] + steps).clamp(max=max(self.n_tokens - 1, 0))
        return flat, steps < lengths[:, None]

    def gather(self, indices: torch.Tensor, lengths: torch.Tensor,
               max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The priors of sentences ``indices`` (B,): (mean, logvar), each (B, max_len, dim)
        float32 on the device of ``indices``; zero (N(0, I)) at padding positions."""
        flat, real = self._positions(indices.cpu(), lengths.cpu(), max_len)
        padding = ~real[..., None]
        mean = self.mean[flat].float().masked_fill(padding, 0.0)
        logvar = self.logvar[flat].float().masked_fill(padding, 0.0)
        return mean.to(indices.device), logvar.to(indices.device)

    def written(self, indices: torch.Tensor) -> torch.Tensor:
        """Whether each sentence in ``indices`` (B,) has had its prior written, i.e. holds a
        posterior rather than the initial N(0, I); (B,) bool on the device of ``indices``."""
        return (self.visits[indices.cpu()] >= self.update_every).to(indices.device)

    def update(self, indices: torch.Tensor, lengths: torch.Tensor, mean: torch.Tensor,
               logvar: torch.Tensor) -> torch.Tensor:
        """Count a visit of each sentence in ``indices`` (B,) and, where the new count is a
        multiple of ``update_every``, store the posterior ``mean`` and ``logvar`` (B, T, dim)
        at its tokens. Returns which sentences were written, (B,) bool on the device of
        ``indices``."""
        cpu_indices = indices.cpu()
        if cpu_indices.unique().numel() != cpu_indices.numel():
            raise ValueError("a sentence appears twice in one update")
        flat, real = self._positions(cpu_indices, lengths.cpu(), mean.shape[1])
        self.visits[cpu_indices] += 1
        written = self.visits[cpu_indices] % self.update_every == 0
        rows = real & written[:, None]
        self.mean[flat[rows]] = mean.detach()[rows.to(mean.device)].to("cpu", self.dtype)
        self.logvar[flat[rows]] = logvar.detach()[rows.to(logvar.device)].to("cpu", self.dtype)
        return written.to(indices.device)

    def state_dict(self, step: int = 0) -> dict:
        """The store as values that ``torch.load(..., weights_only=True)`` reads back: copies of
        its tensors; for a store on disk, ``mean`` and ``logvar`` are instead references to
        snapshots of their files written now, named with ``step``
        (:func:`vsl.checkpoint.write_snapshot`)."""
        on_disk = self.TENSORS if self.path is not None else ()
        state = {name: write_snapshot(self._file(name, step), tensor.numpy()) if name in on_disk else tensor.clone()
                 for name, tensor in self._tensors().items()}
        if on_disk:
            self._snapshot_step = step
        return state

    def remove_stale_snapshots(self) -> None:
        """Delete this store's snapshots other than those of the last :meth:`state_dict`, and the
        temporary files of any interrupted snapshot (call once the checkpoint holding that
        state is saved: no checkpoint refers to the others any more)."""
        if self._snapshot_step is None:
            return
        kept = {self._file(name, self._snapshot_step) for name in self.TENSORS}
        folder = self.path.parent
        stale = [*folder.glob(f".{self.path.name}.*")]
        for name in self.TENSORS:
            stale += [path for path in folder.glob(self._file(name, "*").name) if path not in kept]
        for path in stale:
            path.unlink(missing_ok=True)

    def remove_working_files(self) -> None:
        """Delete the files a store on disk works in (its snapshots stay): once training has
        ended and its last checkpoint is saved, they duplicate that checkpoint's snapshot. The
        store keeps its values while the process lives (the memory maps outlast the files)."""
        if self.path is not None:
            for name in self.TENSORS:
                self._file(name).unlink(missing_ok=True)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a :meth:`state_dict` (its snapshots read back as tensors, e.g. by
        :func:`vsl.checkpoint.read_training_checkpoint`) of a store over the same sentences and
        dimension into this one, in memory or on disk."""
        current = self._tensors()
        if set(state) != set(current):
            raise ValueError(f"prior store state has keys {sorted(state)}, expected {sorted(current)}")
        for name, tensor in current.items():
            if tuple(state[name].shape) != tuple(tensor.shape):
                raise ValueError(f"prior store {name}: shape {tuple(state[name].shape)} != {tuple(tensor.shape)}")
        if not torch.equal(state["offsets"].to(torch.int64), self.offsets):
            raise ValueError("prior store state covers sentences of different lengths")
        for name in (*self.TENSORS, "visits"):
            current[name].copy_(state[name])


class KLAnnealing:
    """The KL weight beta at a training step, rising from ~0 to 1.

    ``exp``: beta = min(exp(rate * step) - 1, 1), the authors' schedule (rate 1e-3 reaches 1
    after ~693 steps, 1e-4 after ~6,931). ``linear``: beta = min(step / warmup, 1).
    ``constant``: beta = 1 from the start.
    """

    KINDS = ("exp", "linear", "constant")

    def __init__(self, kind: str = "exp", rate: float = 1e-3, warmup: int = 1000):
        if kind not in self.KINDS:
            raise ValueError(f"KL annealing {kind!r} is not one of {', '.join(self.KINDS)}")
        self.kind, self.rate, self.warmup = kind, rate, warmup

    def __call__(self, step: int) -> float:
        if self.kind == "exp":
            return min(math.expm1(min(self.rate * step, 1.0)), 1.0)
        if self.kind == "linear":
            return min(step / max(self.warmup, 1), 1.0)
        return 1.0
