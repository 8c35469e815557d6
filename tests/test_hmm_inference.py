"""Exact HMM inference (hmm.inference) against brute-force enumeration, pyro's DiscreteHMM and
between its two numerics, on padded batches."""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hmm.benchmark import Scores, peaked_scores, pyro_log_partition
from hmm.inference import METHODS, baum_welch_statistics, log_partition, pair_posteriors, posteriors, viterbi
from vsl.runtime import configure_cpu, denormals_flushed

EXACT = dict(rtol=1e-9, atol=1e-9)  # float64 against enumeration


class Case(NamedTuple):
    log_init: torch.Tensor
    log_trans: torch.Tensor
    log_emit: torch.Tensor
    lengths: torch.Tensor

    def args(self):
        return self.log_init, self.log_trans, self.log_emit, self.lengths


def random_case(lengths, T, K, *, shared, batched_init, normalised, scale=2.0, seed=0) -> Case:
    """Random float64 log scores; unnormalised ones are plain Gaussians (HMM inference needs no
    normalisation), normalised ones are log-softmax rows and log-sigmoid emissions."""
    generator = torch.Generator().manual_seed(seed)
    B = len(lengths)

    def draw(*shape):
        return scale * torch.randn(shape, generator=generator, dtype=torch.float64)

    log_init = draw(B, K) if batched_init else draw(K)
    log_trans = draw(K, K) if shared else draw(B, T - 1, K, K)
    log_emit = draw(B, T, K)
    if normalised:
        log_init, log_trans = log_init.log_softmax(-1), log_trans.log_softmax(-1)
        log_emit = torch.nn.functional.logsigmoid(log_emit)
    return Case(log_init, log_trans, log_emit, torch.tensor(lengths))


def peaked_case(lengths, T, K, *, shared=True, seed=0, vocab=1000) -> Case:
    return Case(*peaked_scores(lengths, T, K, shared=shared, seed=seed, vocab=vocab))


@st.composite
def cases(draw) -> Case:
    K, T, B = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    return random_case(
        draw(st.lists(st.integers(1, T), min_size=B, max_size=B)), T, K,
        shared=draw(st.booleans()), batched_init=draw(st.booleans()),
        normalised=draw(st.booleans()), scale=draw(st.sampled_from([0.5, 2.0, 8.0])),
        seed=draw(st.integers(0, 2**31 - 1)))


# ----------------------------------------------------------------------------- enumeration


class Enumerated(NamedTuple):
    log_z: torch.Tensor        # (B,)
    gamma: torch.Tensor        # (B, T, K), 0 at padding
    xi: torch.Tensor           # (B, T-1, K, K), 0 where t+1 is padding
    best_score: torch.Tensor   # (B,)
    best_path: list            # per sentence, a tuple of L states
    margin: list               # per sentence, best score minus the runner-up's (inf if unique)


def path_score(case: Case, b: int, path) -> float:
    """Log joint score of one state sequence of sentence b."""
    init = case.log_init.expand(case.log_emit.shape[0], -1)[b].tolist()
    emit = case.log_emit[b].tolist()
    trans = case.log_trans
    total = init[path[0]] + emit[0][path[0]]
    for t in range(1, len(path)):
        matrix = trans if trans.dim() == 2 else trans[b, t - 1]
        total += float(matrix[path[t - 1], path[t]]) + emit[t][path[t]]
    return total


def enumerate_all(case: Case) -> Enumerated:
    """Sum and max over all K**L state sequences of every sentence, one by one."""
    B, T, K = case.log_emit.shape
    log_z, best_score, best_path, margin = [], [], [], []
    gamma, xi = np.zeros((B, T, K)), np.zeros((B, max(T - 1, 0), K, K))
    for b, length in enumerate(case.lengths.tolist()):
        paths = list(itertools.product(range(K), repeat=length))
        scores = np.array([path_score(case, b, path) for path in paths])
        top = scores.max()
        log_z.append(top + math.log(np.exp(scores - top).sum()))
        for path, weight in zip(paths, np.exp(scores - log_z[-1])):
            for t, state in enumerate(path):
                gamma[b, t, state] += weight
                if t:
                    xi[b, t - 1, path[t - 1], state] += weight
        order = np.argsort(scores)[::-1]
        best_score.append(top)
        best_path.append(paths[order[0]])
        margin.append(top - scores[order[1]] if len(paths) > 1 else math.inf)
    return Enumerated(torch.tensor(log_z), torch.tensor(gamma), torch.tensor(xi),
                      torch.tensor(best_score), best_path, margin)


def real_mask(lengths, T):
    return torch.arange(T) < lengths.unsqueeze(-1)


# ----------------------------------------------------------------------------- against enumeration


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(case=cases())
def test_sum_product_matches_enumeration(method, case):
    expected = enumerate_all(case)
    real = real_mask(case.lengths, case.log_emit.shape[1])

    torch.testing.assert_close(log_partition(*case.args(), method=method), expected.log_z, **EXACT)

    gamma = posteriors(*case.args(), method=method)
    torch.testing.assert_close(gamma, expected.gamma, **EXACT)
    torch.testing.assert_close(gamma.sum(-1)[real], torch.ones(int(real.sum()), dtype=gamma.dtype))
    assert torch.all(gamma[~real] == 0)

    xi = pair_posteriors(*case.args(), method=method)
    torch.testing.assert_close(xi, expected.xi, **EXACT)
    assert torch.all(xi[~real[:, 1:]] == 0)

    if case.log_trans.dim() == 2:  # the one-pass E-step statistics
        gamma, transitions, log_z = baum_welch_statistics(*case.args(), method=method)
        torch.testing.assert_close(gamma, expected.gamma, **EXACT)
        torch.testing.assert_close(transitions, expected.xi.sum(dim=(0, 1)), **EXACT)
        torch.testing.assert_close(log_z, expected.log_z, **EXACT)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(case=cases())
def test_gradient_of_log_partition_is_posteriors(method, case):
    """d log Z / d log_emit = gamma and, for per-position transitions, d log Z / d log_trans =
    xi (the pair marginals; 0 where position t+1 is padding)."""
    expected = enumerate_all(case)
    log_emit = case.log_emit.clone().requires_grad_()
    log_trans = case.log_trans.clone().requires_grad_()
    log_z = log_partition(case.log_init, log_trans, log_emit, case.lengths, method=method)
    emit_grad, trans_grad = torch.autograd.grad(log_z.sum(), (log_emit, log_trans),
                                                materialize_grads=True)
    torch.testing.assert_close(emit_grad, expected.gamma, **EXACT)
    if case.log_trans.dim() == 4:
        torch.testing.assert_close(trans_grad, expected.xi, **EXACT)
    else:
        torch.testing.assert_close(trans_grad, expected.xi.sum(dim=(0, 1)), **EXACT)


@settings(max_examples=30, deadline=None)
@given(case=cases())
def test_viterbi_matches_enumeration(case):
    expected = enumerate_all(case)
    paths, scores = viterbi(*case.args())
    assert paths.dtype == torch.int64
    torch.testing.assert_close(scores, expected.best_score, **EXACT)
    for b, length in enumerate(case.lengths.tolist()):
        path = tuple(paths[b, :length].tolist())
        assert torch.all(paths[b, length:] == -1)
        assert path_score(case, b, path) == pytest.approx(float(scores[b]), abs=1e-9)
        if expected.margin[b] > 1e-6:
            assert path == expected.best_path[b]


# ----------------------------------------------------------------------------- padding


def _with_garbage_padding(case: Case, extra: int, seed: int = 1) -> Case:
    """The same sentences with ``extra`` more columns and garbage (huge, inf, nan) in every
    padded emission and per-position transition score."""
    generator = torch.Generator().manual_seed(seed)
    B, T, K = case.log_emit.shape
    real = real_mask(case.lengths, T + extra)

    def garbage(shape):
        values = 1e4 * torch.randn(shape, generator=generator, dtype=case.log_emit.dtype)
        values.view(-1)[::3] = math.nan
        values.view(-1)[1::3] = math.inf
        return values

    log_emit = garbage((B, T + extra, K))
    log_emit[:, :T] = torch.where(real[:, :T, None], case.log_emit, log_emit[:, :T])
    log_trans = case.log_trans
    if log_trans.dim() == 4:
        log_trans = garbage((B, T + extra - 1, K, K))
        log_trans[:, :T - 1] = torch.where(real[:, 1:T, None, None], case.log_trans,
                                           log_trans[:, :T - 1])
    return Case(case.log_init, log_trans, log_emit, case.lengths)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_padding_content_and_extent_change_nothing(method, shared):
    case = random_case([5, 2, 1, 4], 5, 3, shared=shared, batched_init=True, normalised=False)
    noisy = _with_garbage_padding(case, extra=3)
    T = case.log_emit.shape[1]

    torch.testing.assert_close(log_partition(*noisy.args(), method=method),
                               log_partition(*case.args(), method=method), **EXACT)
    gamma = posteriors(*noisy.args(), method=method)
    torch.testing.assert_close(gamma[:, :T], posteriors(*case.args(), method=method), **EXACT)
    assert torch.all(gamma[:, T:] == 0)
    xi = pair_posteriors(*noisy.args(), method=method)
    torch.testing.assert_close(xi[:, :T - 1], pair_posteriors(*case.args(), method=method), **EXACT)
    assert torch.all(xi[:, T - 1:] == 0)
    paths, scores = viterbi(*noisy.args())
    clean_paths, clean_scores = viterbi(*case.args())
    assert torch.equal(paths[:, :T], clean_paths) and torch.all(paths[:, T:] == -1)
    torch.testing.assert_close(scores, clean_scores, **EXACT)


def test_padding_gets_no_gradient_even_if_nan():
    case = _with_garbage_padding(
        random_case([4, 1, 3], 4, 3, shared=False, batched_init=False, normalised=True), extra=2)
    log_emit = case.log_emit.clone().requires_grad_()
    log_trans = case.log_trans.clone().requires_grad_()
    for method in METHODS:
        log_z = log_partition(case.log_init, log_trans, log_emit, case.lengths, method=method)
        grads = torch.autograd.grad(log_z.sum(), (log_emit, log_trans))
        assert all(torch.isfinite(grad).all() for grad in grads)
        assert torch.all(grads[0][~real_mask(case.lengths, 6)] == 0)


# ----------------------------------------------------------------------------- long sentences


@pytest.mark.parametrize("shared", [True, False])
def test_long_sentences_both_numerics_agree_in_float32(shared):
    case = peaked_case([500, 371, 1, 250], 500, 45, shared=shared)
    double = Case(*(tensor.double() for tensor in case.args()[:3]), case.lengths)
    results = {}
    for method in ("log", "scaled"):
        log_z = log_partition(*case.args(), method=method)
        gamma = posteriors(*case.args(), method=method)
        xi = pair_posteriors(*case.args(), method=method)
        assert all(torch.isfinite(x).all() for x in (log_z, gamma, xi))
        results[method] = log_z, gamma, xi
    for got, want in zip(results["scaled"], results["log"]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    assert torch.equal(log_partition(*case.args()), results["scaled"][0])  # auto = scaled here

    torch.testing.assert_close(results["log"][0].double(),
                               log_partition(*double.args(), method="log"), rtol=1e-5, atol=0)
    torch.testing.assert_close(results["log"][1].double(),
                               posteriors(*double.args(), method="log"), rtol=0, atol=1e-4)


def test_auto_falls_back_to_log_space_where_scaling_would_underflow():
    """A transition of -200 nats against emissions that force it: in float32 every scaled
    probability of the second step underflows, so 'scaled' fails and 'auto' must not use it."""
    case = Case(torch.tensor([0.0, -200.0]), torch.tensor([[0.0, -200.0], [-200.0, 0.0]]),
                torch.tensor([[[0.0, -200.0], [-300.0, 0.0]]]), torch.tensor([2]))
    double = Case(*(tensor.double() for tensor in case.args()[:3]), case.lengths)
    assert not torch.isfinite(log_partition(*case.args(), method="scaled")).all()
    torch.testing.assert_close(log_partition(*case.args()).double(),
                               log_partition(*double.args(), method="log"))
    torch.testing.assert_close(posteriors(*case.args()).double(),
                               posteriors(*double.args(), method="log"))


def test_scaled_numerics_agree_with_denormals_flushed():
    """Runs flush denormal floats to zero (vsl.runtime.configure_cpu). Emissions spread over
    150 nats put many scaled probabilities in float32's denormal range; flushed to zero, they
    must still leave log p(x) and the marginals as the float64 log-space recursions give them."""
    generator = torch.Generator().manual_seed(3)
    case = peaked_case([40, 17, 1, 33], 40, 45, shared=False)
    log_emit = -150 * torch.rand(case.log_emit.shape, generator=generator)
    case = Case(case.log_init, case.log_trans, log_emit, case.lengths)
    double = Case(*(tensor.double() for tensor in case.args()[:3]), case.lengths)
    if not torch.set_flush_denormal(False):  # also undoes a flush that an earlier test left on
        pytest.skip("this CPU cannot flush denormals")
    scaled = torch.exp(log_emit - log_emit.amax(-1, keepdim=True))
    assert (scaled < torch.finfo(torch.float32).tiny).logical_and(scaled > 0).sum() > 100
    try:
        configure_cpu(None)
        assert denormals_flushed()
        got = [function(*case.args(), method="scaled") for function in (log_partition, posteriors, pair_posteriors)]
    finally:
        torch.set_flush_denormal(False)
    want = [function(*double.args(), method="log") for function in (log_partition, posteriors, pair_posteriors)]
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-5, atol=0)
    for marginal, reference in zip(got[1:], want[1:]):
        torch.testing.assert_close(marginal.double(), reference, rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- pyro


@pytest.mark.parametrize("shared", [True, False])
def test_agrees_with_pyro_discrete_hmm(shared):
    case = peaked_case([25] * 256, 25, 45, shared=shared, seed=3)
    log_emit = case.log_emit.clone().requires_grad_()
    expected = pyro_log_partition(Scores(*case._replace(log_emit=log_emit)))
    (expected_gamma,) = torch.autograd.grad(expected.sum(), log_emit)
    for method in METHODS:
        torch.testing.assert_close(log_partition(*case.args(), method=method), expected.detach(),
                                   rtol=1e-5, atol=1e-3)
        torch.testing.assert_close(posteriors(*case.args(), method=method), expected_gamma,
                                   rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- autograd and errors


def test_works_under_no_grad_and_returns_constant_marginals():
    case = random_case([3, 2], 3, 2, shared=True, batched_init=False, normalised=True)
    with torch.no_grad():
        assert not log_partition(*case.args()).requires_grad
        assert posteriors(*case.args()).shape == (2, 3, 2)
        assert pair_posteriors(*case.args()).shape == (2, 2, 2, 2)
        assert viterbi(*case.args())[0].shape == (2, 3)
    trainable = case._replace(log_trans=case.log_trans.clone().requires_grad_())
    assert log_partition(*trainable.args()).requires_grad
    assert not posteriors(*trainable.args()).requires_grad
    assert not pair_posteriors(*trainable.args()).requires_grad
    assert not viterbi(*trainable.args())[1].requires_grad


def test_single_position_sentences():
    case = random_case([1, 1], 1, 3, shared=True, batched_init=True, normalised=False)
    first = case.log_init + case.log_emit[:, 0]
    for method in METHODS:
        torch.testing.assert_close(log_partition(*case.args(), method=method), first.logsumexp(-1))
        torch.testing.assert_close(posteriors(*case.args(), method=method)[:, 0], first.softmax(-1))
        assert pair_posteriors(*case.args(), method=method).shape == (2, 0, 3, 3)
    assert torch.equal(viterbi(*case.args())[0][:, 0], first.argmax(-1))


BAD_INPUTS = [
    (dict(log_emit=torch.zeros(2, 3)), r"log_emit must have shape \(B, T, K\)"),
    (dict(log_init=torch.zeros(4)), r"log_init must have shape"),
    (dict(log_init=torch.zeros(3, 3)), r"log_init must have shape"),
    (dict(log_trans=torch.zeros(2, 3, 3)), r"log_trans must have shape"),
    (dict(log_trans=torch.zeros(2, 3, 3, 3)), r"log_trans must have shape"),
    (dict(lengths=torch.tensor([3])), r"lengths must have shape \(B,\)"),
    (dict(lengths=torch.tensor([3.0, 2.0])), r"lengths must be integers"),
    (dict(lengths=torch.tensor([0, 2])), r"lengths must lie in 1..T = 1..3"),
    (dict(lengths=torch.tensor([4, 2])), r"lengths must lie in 1..T = 1..3"),
    (dict(log_init=torch.zeros(3, dtype=torch.float64)), r"log_init is torch.float64"),
    (dict(log_emit=torch.zeros(2, 3, 3, dtype=torch.int64)), r"must be floating point"),
]


@pytest.mark.parametrize("bad, message", BAD_INPUTS)
def test_bad_inputs_raise_value_errors(bad, message):
    args = dict(log_init=torch.zeros(3), log_trans=torch.zeros(3, 3),
                log_emit=torch.zeros(2, 3, 3), lengths=torch.tensor([3, 2]))
    args.update(bad)
    for function in (log_partition, posteriors, pair_posteriors, viterbi):
        with pytest.raises(ValueError, match=message):
            function(**args)


@pytest.mark.parametrize("function", [log_partition, posteriors, pair_posteriors])
def test_unknown_method_raises_value_error(function):
    with pytest.raises(ValueError, match="method must be one of"):
        function(torch.zeros(3), torch.zeros(3, 3), torch.zeros(2, 3, 3), torch.tensor([3, 2]),
                 method="fast")


# ----------------------------------------------------------------------------- device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    case = peaked_case([60, 17, 1], 60, 45, shared=False)
    cuda = Case(*(tensor.cuda() for tensor in case.args()[:3]), case.lengths)  # lengths on CPU
    for method in METHODS:
        torch.testing.assert_close(log_partition(*cuda.args(), method=method).cpu(),
                                   log_partition(*case.args(), method=method), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(pair_posteriors(*cuda.args(), method=method).cpu(),
                                   pair_posteriors(*case.args(), method=method), rtol=0, atol=1e-4)
    paths, scores = viterbi(*cuda.args())
    assert torch.equal(paths.cpu(), viterbi(*case.args())[0])
    torch.testing.assert_close(scores.cpu(), viterbi(*case.args())[1], rtol=1e-5, atol=1e-4)
