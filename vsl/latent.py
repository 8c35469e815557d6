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
from typing import Sequence

import torch
from torch import nn


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
    """

    def __init__(self, lengths: Sequence[int], dim: int, update_every: int = 1,
                 dtype: torch.dtype = torch.float16):
        lengths = torch.as_tensor(lengths, dtype=torch.int64)
        if lengths.dim() != 1 or (lengths < 0).any():
            raise ValueError("lengths must be a sequence of non-negative integers")
        if dim < 1 or update_every < 1:
            raise ValueError("dim and update_every must be positive")
        self.dim = dim
        self.update_every = update_every
        self.dtype = dtype
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        self.mean = torch.zeros(self.n_tokens, dim, dtype=dtype)
        self.logvar = torch.zeros(self.n_tokens, dim, dtype=dtype)
        self.visits = torch.zeros(len(lengths), dtype=torch.int64)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in (self.offsets, self.mean, self.logvar, self.visits))

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

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only, so ``torch.load(..., weights_only=True)`` can read it back."""
        return {"offsets": self.offsets.clone(), "mean": self.mean.clone(),
                "logvar": self.logvar.clone(), "visits": self.visits.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a :meth:`state_dict` of a store over the same sentences and dimension."""
        current = self.state_dict()
        if set(state) != set(current):
            raise ValueError(f"prior store state has keys {sorted(state)}, expected {sorted(current)}")
        for name, tensor in current.items():
            if tuple(state[name].shape) != tuple(tensor.shape):
                raise ValueError(f"prior store {name}: shape {tuple(state[name].shape)} != {tuple(tensor.shape)}")
        if not torch.equal(state["offsets"].to(torch.int64), self.offsets):
            raise ValueError("prior store state covers sentences of different lengths")
        self.mean = state["mean"].to("cpu", self.dtype).clone()
        self.logvar = state["logvar"].to("cpu", self.dtype).clone()
        self.visits = state["visits"].to("cpu", torch.int64).clone()


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
