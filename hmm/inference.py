"""Exact inference for first-order HMMs over batches of padded sentences.

Notation follows Rabiner (1989), "A tutorial on hidden Markov models and selected applications
in speech recognition", Proc. IEEE 77(2). All scores are logs and need not be normalised: with
unnormalised scores every "probability" below is the corresponding normalised weight and
:func:`log_partition` is the log of the total weight of all state sequences.

Inputs, shared by every function (positions t are 0-based, as the tensor indices):

* ``log_init`` (K,) or (B, K): log p(z_0 = k).
* ``log_trans`` (K, K), shared, or (B, T-1, K, K) per position:
  ``log_trans[b, t, i, j] = log p(z_{t+1} = j | z_t = i)``.
* ``log_emit`` (B, T, K): ``log_emit[b, t, k] = log p(x_t | z_t = k)``, already gathered for
  the observed words.
* ``lengths`` (B,) integers in 1..T. Positions ``t >= lengths[b]`` are padding: whatever
  ``log_emit`` and ``log_trans`` hold there (even inf or nan) affects no output.

Public functions:

* :func:`log_partition` -> (B,): log p(x), the forward algorithm. Differentiable.
* :func:`posteriors` -> (B, T, K): p(z_t = k | x), 0 at padding.
* :func:`pair_posteriors` -> (B, T-1, K, K): p(z_t = i, z_{t+1} = j | x), 0 where ``t + 1`` is
  padding: the expected transition counts of EM.
* :func:`viterbi` -> (paths (B, T) int64 with -1 at padding, scores (B,)): the best state
  sequence and its log joint score.
* :func:`baum_welch_statistics` -> (posteriors, summed pair marginals (K, K), log p(x)) from a
  single forward-backward pass, for a shared transition matrix: the E-step of EM.

The last three return constants (computed without autograd), whether or not the inputs require
gradients.

``method`` selects the numerics of the sum-product passes:

* ``"log"``: the recursions in log space with logsumexp, each forward and backward vector
  renormalised per step (log Z accumulates the forward normalisers). Accurate for any scores,
  -inf ones (structural zeros) included.
* ``"scaled"``: the recursions in probability space with matrix products, renormalising the
  forward vector at every step and accumulating the log of the normaliser (scaling, Rabiner
  1989 sec. V-A). Transition matrices are shifted by their largest entry and emissions by their
  per-position maximum before ``exp``; the shifts are added back to log p(x). Faster, because a
  step is one (batched) matmul instead of a K x K logsumexp.
* ``"auto"`` (default): ``"scaled"`` when the guard below holds, else ``"log"``.

Why the guard suffices. After the shifts, the best emission at each position is exactly 1 and
every transition entry lies in ``[exp(spread), 1]``, where ``spread`` is the smallest
``min - max`` over the transition matrices. Since the forward vector sums to 1, every step's
normaliser is at least ``exp(spread)``; every scaled backward value, a ratio of future
likelihoods, is at most ``exp(-spread)``, and the products formed before dividing by a
normaliser at most ``K * exp(-spread)``. Requiring ``exp(spread) >= K**2 * tiny / eps``
(``tiny`` and ``eps`` of the dtype) therefore keeps every normaliser so far above the underflow
threshold that the terms lost to underflow change it by a relative error below ``eps``, and
keeps every value below ``eps / (K * tiny)``, far from overflow. The bound is a spread of about
-64 nats in float32 with K = 45 (about -665 in float64), which softmax-parameterised transitions
meet in practice; the initial step is done in log space and needs no bound. Where the bound
fails (e.g. -inf structural zeros), ``"auto"`` uses ``"log"`` for the whole call.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

METHODS = ("auto", "log", "scaled")
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class _Batch(NamedTuple):
    """Validated inputs: ``init`` (B, K); ``trans`` (K, K) or (B, T-1, K, K) and ``emit``
    (B, T, K), both 0 at padding; ``real`` (B, T), True where ``t < length``."""

    init: Tensor
    trans: Tensor
    emit: Tensor
    real: Tensor


class _Scaled(NamedTuple):
    """Probability-space parameters of the scaled passes: ``trans`` = exp(log_trans - its max),
    ``emit`` = exp(log_emit - max_k log_emit), and ``shift`` (B, T-1): ``shift[:, t - 1]`` is
    the log of the factor taken out of the step into position t (emission max plus transition
    max)."""

    trans: Tensor
    emit: Tensor
    shift: Tensor


# ----------------------------------------------------------------------------- validation


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _check_scores(log_init: Tensor, log_trans: Tensor, log_emit: Tensor) -> None:
    """Raise ValueError unless the three score tensors have consistent shapes and one float dtype
    and device."""
    if log_emit.dim() != 3:
        raise ValueError(f"log_emit must have shape (B, T, K); got {_shape(log_emit)}")
    B, T, K = log_emit.shape
    if T < 1 or K < 1:
        raise ValueError(f"log_emit needs T >= 1 and K >= 1; got shape {_shape(log_emit)}")
    if _shape(log_init) not in ((K,), (B, K)):
        raise ValueError(f"log_init must have shape (K,) = {(K,)} or (B, K) = {(B, K)}; "
                         f"got {_shape(log_init)}")
    if _shape(log_trans) not in ((K, K), (B, T - 1, K, K)):
        raise ValueError(f"log_trans must have shape (K, K) = {(K, K)} or (B, T-1, K, K) = "
                         f"{(B, T - 1, K, K)}; got {_shape(log_trans)}")
    if not log_emit.dtype.is_floating_point:
        raise ValueError(f"scores must be floating point; got log_emit of dtype {log_emit.dtype}")
    for name, tensor in (("log_init", log_init), ("log_trans", log_trans)):
        if tensor.dtype != log_emit.dtype or tensor.device != log_emit.device:
            raise ValueError(f"{name} is {tensor.dtype} on {tensor.device} but log_emit is "
                             f"{log_emit.dtype} on {log_emit.device}")


def _check_lengths(lengths: Tensor, B: int, T: int) -> Tensor:
    """``lengths`` as a tensor on its own device, after checking shape (B,), dtype and range."""
    lengths = torch.as_tensor(lengths)
    if _shape(lengths) != (B,):
        raise ValueError(f"lengths must have shape (B,) = {(B,)}; got {_shape(lengths)}")
    if lengths.dtype not in _INTEGER_DTYPES:
        raise ValueError(f"lengths must be integers; got dtype {lengths.dtype}")
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must lie in 1..T = 1..{T}; got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    return lengths


def _prepare(log_init, log_trans, log_emit, lengths) -> _Batch:
    """Validate the inputs and zero the scores at padding, so that nothing stored there (even nan)
    reaches a result or a gradient."""
    _check_scores(log_init, log_trans, log_emit)
    B, T, K = log_emit.shape
    lengths = _check_lengths(lengths, B, T).to(log_emit.device)
    real = torch.arange(T, device=log_emit.device) < lengths.unsqueeze(-1)
    emit = log_emit.masked_fill(~real.unsqueeze(-1), 0.0)
    trans = log_trans
    if log_trans.dim() == 4:
        trans = log_trans.masked_fill(~real[:, 1:, None, None], 0.0)
    return _Batch(log_init.expand(B, K), trans, emit, real)


def _steps(trans: Tensor, T: int) -> list[Tensor]:
    """The transition scores into positions 1..T-1, element t-1 for position t: the shared
    (K, K) matrix T-1 times, or the (B, K, K) slices of per-position scores. One ``unbind``
    rather than an index per step: the backward of each index would write a zero-filled copy of
    the whole (B, T-1, K, K) tensor, which made that copying most of an LSTM-transition update."""
    return [trans] * (T - 1) if trans.dim() == 2 else list(trans.unbind(1))


# ----------------------------------------------------------------------------- numerics choice


def _scaled_is_safe(batch: _Batch) -> bool:
    """Whether the scaled passes keep full precision: every transition matrix must satisfy
    ``min - max >= log(K**2 * tiny / eps)`` (reasoning in the module docstring)."""
    info = torch.finfo(batch.emit.dtype)
    floor = math.log(batch.emit.shape[-1] ** 2 * info.tiny / info.eps)
    spread = batch.trans.amin(dim=(-2, -1)) - batch.trans.amax(dim=(-2, -1))
    return bool((spread >= floor).all())


def _resolve(method: str, batch: _Batch) -> str:
    """The concrete numerics, ``"log"`` or ``"scaled"``, for ``method``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method != "auto":
        return method
    return "scaled" if _scaled_is_safe(batch) else "log"


# ----------------------------------------------------------------------------- log space


def _log_forward(batch: _Batch) -> tuple[Tensor, Tensor]:
    """Forward algorithm in log space (Rabiner 1989, eqs. 19-21) with every log alpha_t
    renormalised to logsumexp 0: unnormalised log alphas reach -t nats or so, and their rounding
    in float32 would swamp the posteriors of long sentences. Returns the normalised log alphas
    (B, T, K) and log Z (B,), the sum of the log normalisers over each sentence's real
    positions; past them the recursion runs on over zeroed scores and adds nothing."""
    emits = batch.emit.unbind(1)
    trans = _steps(batch.trans, len(emits))
    step = batch.init + emits[0]
    alphas, norms = [], []
    for t in range(len(emits)):
        if t:
            scores = alphas[-1].unsqueeze(-1) + trans[t - 1]
            step = torch.logsumexp(scores, dim=-2) + emits[t]
        norms.append(torch.logsumexp(step, dim=-1))
        alphas.append(step - norms[-1].unsqueeze(-1))
    log_z = torch.where(batch.real, torch.stack(norms, dim=1), 0.0).sum(dim=-1)
    return torch.stack(alphas, dim=1), log_z


def _log_backward(batch: _Batch) -> Tensor:
    """Backward procedure in log space (Rabiner 1989, sec. III-A), each log beta_t shifted to
    logsumexp 0 (marginals are normalised per position, so the shifts cancel): (B, T, K), 0 at
    each last real position and at padding."""
    emits = batch.emit.unbind(1)
    trans = _steps(batch.trans, len(emits))
    beta = torch.zeros_like(emits[0])
    betas = [beta]
    for t in range(len(emits) - 1, 0, -1):
        scores = trans[t - 1] + (emits[t] + beta).unsqueeze(-2)
        step = torch.log_softmax(torch.logsumexp(scores, dim=-1), dim=-1)
        beta = torch.where(batch.real[:, t, None], step, 0.0)
        betas.append(beta)
    return torch.stack(betas[::-1], dim=1)


def _log_gamma(log_alpha: Tensor, log_beta: Tensor) -> Tensor:
    """gamma_t(k) proportional to alpha_t(k) beta_t(k) (eq. 27), normalised per position. Not
    masked."""
    return torch.softmax(log_alpha + log_beta, dim=-1)


def _log_xi(batch: _Batch, log_alpha: Tensor, log_beta: Tensor) -> Tensor:
    """xi_t(i, j) proportional to alpha_t(i) a_ij b_j(x_{t+1}) beta_{t+1}(j) (eq. 37),
    normalised per position. Not masked."""
    scores = log_alpha[:, :-1, :, None] + batch.trans + (batch.emit + log_beta)[:, 1:, None, :]
    return torch.softmax(scores.flatten(-2), dim=-1).view(scores.shape)


def _log_marginals(batch: _Batch, pairs: bool) -> Tensor:
    """gamma (eq. 27) or, with ``pairs``, xi (eq. 37) from the log-space passes. Not masked."""
    log_alpha, log_beta = _log_forward(batch)[0], _log_backward(batch)
    return _log_xi(batch, log_alpha, log_beta) if pairs else _log_gamma(log_alpha, log_beta)


# ----------------------------------------------------------------------------- scaled


def _rescale(batch: _Batch) -> _Scaled:
    """Shift scores by their maxima (detached: log Z does not depend on the shifts) and
    exponentiate."""
    emit_max = batch.emit.detach().amax(dim=-1, keepdim=True)
    trans_max = batch.trans.detach().amax(dim=(-2, -1), keepdim=True)
    B, T, _ = batch.emit.shape
    shift = emit_max[:, 1:, 0] + trans_max[..., 0, 0].expand(B, T - 1)
    return _Scaled(torch.exp(batch.trans - trans_max), torch.exp(batch.emit - emit_max), shift)


def _scaled_forward(batch: _Batch, scaled: _Scaled) -> tuple[Tensor, Tensor, Tensor]:
    """Scaled forward pass (Rabiner 1989, sec. V-A): alpha_t = normalise((alpha_{t-1} @ A_t) * e_t)
    with normalisers c_t, the first step done in log space. Returns the normalised alphas
    (B, T, K), the normalisers (B, T) (1 at t = 0) and log Z (B,), the log of the first step's
    normaliser plus, over each sentence's later real positions, log c_t and the shifts; past
    them the recursion runs on over zeroed scores and adds nothing."""
    emits = scaled.emit.unbind(1)
    trans = _steps(scaled.trans, len(emits))
    first = batch.init + batch.emit[:, 0]
    alpha = torch.softmax(first, dim=-1)
    alphas, norms = [alpha], [torch.ones_like(first[:, 0])]
    for t in range(1, len(emits)):
        step = (alpha.unsqueeze(-2) @ trans[t - 1]).squeeze(-2) * emits[t]
        norms.append(step.sum(dim=-1))
        alpha = step / norms[-1].unsqueeze(-1)
        alphas.append(alpha)
    norms = torch.stack(norms, dim=1)
    steps = torch.where(batch.real[:, 1:], norms[:, 1:].log() + scaled.shift, 0.0)
    return torch.stack(alphas, dim=1), norms, torch.logsumexp(first, dim=-1) + steps.sum(dim=-1)


def _scaled_backward(batch: _Batch, scaled: _Scaled, norms: Tensor) -> Tensor:
    """Scaled backward pass with the forward normalisers (Rabiner 1989, sec. V-A):
    beta_{t-1} = (A_t @ (e_t * beta_t)) / c_t, 1 at each last real position and at padding, so
    that alpha_t(k) beta_t(k) is the posterior of state k at t."""
    emits = scaled.emit.unbind(1)
    trans = _steps(scaled.trans, len(emits))
    beta = torch.ones_like(emits[0])
    betas = [beta]
    for t in range(len(emits) - 1, 0, -1):
        weighted = (emits[t] * beta).unsqueeze(-2)
        step = (weighted @ trans[t - 1].transpose(-2, -1)).squeeze(-2) / norms[:, t, None]
        beta = torch.where(batch.real[:, t, None], step, 1.0)
        betas.append(beta)
    return torch.stack(betas[::-1], dim=1)


def _scaled_marginals(batch: _Batch, pairs: bool) -> Tensor:
    """gamma (eq. 27) or, with ``pairs``, xi (eq. 37) from the scaled passes. Not masked."""
    scaled = _rescale(batch)
    alpha, norms, _ = _scaled_forward(batch, scaled)
    beta = _scaled_backward(batch, scaled, norms)
    if not pairs:
        return alpha * beta
    weighted = (scaled.emit * beta)[:, 1:, None, :]
    return alpha[:, :-1, :, None] * scaled.trans * weighted / norms[:, 1:, None, None]


# ----------------------------------------------------------------------------- public API


def log_partition(log_init: Tensor, log_trans: Tensor, log_emit: Tensor, lengths: Tensor,
                  method: str = "auto") -> Tensor:
    """log p(x) (B,) by the forward algorithm (Rabiner 1989, eqs. 19-21), in log space or scaled
    (sec. V-A) according to ``method``. Differentiable; its gradient with respect to ``log_emit``
    is :func:`posteriors`."""
    batch = _prepare(log_init, log_trans, log_emit, lengths)
    if _resolve(method, batch) == "log":
        return _log_forward(batch)[1]
    return _scaled_forward(batch, _rescale(batch))[2]


@torch.no_grad()
def posteriors(log_init: Tensor, log_trans: Tensor, log_emit: Tensor, lengths: Tensor,
               method: str = "auto") -> Tensor:
    """State marginals p(z_t = k | x) (B, T, K) by forward-backward (Rabiner 1989, eq. 27); they
    sum to 1 over k at real positions and are exactly 0 at padding."""
    batch = _prepare(log_init, log_trans, log_emit, lengths)
    marginals = _log_marginals if _resolve(method, batch) == "log" else _scaled_marginals
    return marginals(batch, pairs=False).masked_fill(~batch.real.unsqueeze(-1), 0.0)


@torch.no_grad()
def pair_posteriors(log_init: Tensor, log_trans: Tensor, log_emit: Tensor, lengths: Tensor,
                    method: str = "auto") -> Tensor:
    """Pair marginals p(z_t = i, z_{t+1} = j | x) (B, T-1, K, K) by forward-backward (Rabiner
    1989, eq. 37); exactly 0 where position t+1 is padding."""
    batch = _prepare(log_init, log_trans, log_emit, lengths)
    marginals = _log_marginals if _resolve(method, batch) == "log" else _scaled_marginals
    return marginals(batch, pairs=True).masked_fill(~batch.real[:, 1:, None, None], 0.0)


@torch.no_grad()
def baum_welch_statistics(log_init: Tensor, log_trans: Tensor, log_emit: Tensor, lengths: Tensor,
                          method: str = "auto") -> tuple[Tensor, Tensor, Tensor]:
    """What one E-step of Baum-Welch needs from a batch, in one forward-backward pass: the
    state marginals (B, T, K) as :func:`posteriors`, the pair marginals summed over sentences
    and positions (K, K), i.e. the expected transition counts (Rabiner 1989, eq. 37 summed as
    in eq. 39b), and log p(x) (B,). ``log_trans`` must be one shared (K, K) matrix.

    In scaled numerics the sum over positions is one matrix product,
    ``A * (alpha_{<T-1}^T @ (e * beta / c)_{>0})``, so the (B, T-1, K, K) pair marginals are never
    formed."""
    if log_trans.dim() != 2:
        raise ValueError("baum_welch_statistics needs one shared (K, K) transition matrix")
    batch = _prepare(log_init, log_trans, log_emit, lengths)
    pair_real = batch.real[:, 1:]
    if _resolve(method, batch) == "log":
        log_alpha, log_z = _log_forward(batch)
        log_beta = _log_backward(batch)
        gamma = _log_gamma(log_alpha, log_beta)
        pairs = _log_xi(batch, log_alpha, log_beta).masked_fill(~pair_real[..., None, None], 0.0).sum(dim=(0, 1))
    else:
        scaled = _rescale(batch)
        alpha, norms, log_z = _scaled_forward(batch, scaled)
        beta = _scaled_backward(batch, scaled, norms)
        gamma = alpha * beta
        K = alpha.shape[-1]
        before = alpha[:, :-1].masked_fill(~pair_real[..., None], 0.0).reshape(-1, K)
        after = ((scaled.emit * beta)[:, 1:] / norms[:, 1:, None]).reshape(-1, K)
        pairs = scaled.trans * (before.t() @ after)
    return gamma.masked_fill(~batch.real.unsqueeze(-1), 0.0), pairs, log_z


def _backtrack(pointers: list[Tensor], last: Tensor, real: Tensor) -> Tensor:
    """Follow the backpointers from each sentence's best last state; -1 at padding."""
    state = last
    states = [state]
    for t in range(real.shape[1] - 1, 0, -1):
        previous = pointers[t - 1].gather(1, state.unsqueeze(1)).squeeze(1)
        state = torch.where(real[:, t], previous, state)
        states.append(state)
    return torch.stack(states[::-1], dim=1).masked_fill(~real, -1)


@torch.no_grad()
def viterbi(log_init: Tensor, log_trans: Tensor, log_emit: Tensor,
            lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Most probable state sequences by the Viterbi algorithm (Rabiner 1989, sec. III-B), i.e.
    max-product in log space with backpointers, batched over sentences. Returns paths (B, T)
    int64, -1 at padding, and their log joint scores (B,). Ties are broken arbitrarily."""
    batch = _prepare(log_init, log_trans, log_emit, lengths)
    emits = batch.emit.unbind(1)
    trans = _steps(batch.trans, len(emits))
    delta = batch.init + emits[0]
    pointers = []
    for t in range(1, len(emits)):
        best, pointer = (delta.unsqueeze(-1) + trans[t - 1]).max(dim=-2)
        delta = torch.where(batch.real[:, t, None], best + emits[t], delta)
        pointers.append(pointer)
    scores, last = delta.max(dim=-1)
    return _backtrack(pointers, last, batch.real), scores
