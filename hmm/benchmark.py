"""Speed of exact HMM inference and of neural-HMM training, as ``scripts/bench.py`` reports it.

* Inference: forward + state posteriors on one batch of realistic float32 scores (``K = 45``,
  256 sentences of 40 tokens by default), by this package's scaled and log-space numerics and
  by two peers on the very same scores: pyro's ``DiscreteHMM`` and torch-struct's
  ``LinearChainCRF`` (posteriors as the gradient of their log-partition, the way both are used
  for marginals). Each peer's posteriors are checked against ours before it is timed.
* Training: Adam updates of a :class:`~hmm.models.NeuralHMM` with the paper's sizes on a real
  batch of WSJ sentences of at most 40 tokens, for each emission/transition variant.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from hmm.inference import log_partition, posteriors

K_STATES, BATCH, LENGTH = 45, 256, 40


class Scores(NamedTuple):
    log_init: Tensor  # (K,)
    log_trans: Tensor  # (K, K) or (B, T-1, K, K)
    log_emit: Tensor  # (B, T, K)
    lengths: Tensor  # (B,)

    def args(self):
        return self.log_init, self.log_trans, self.log_emit, self.lengths


def peaked_scores(lengths, length: int, states: int, *, shared: bool = True, seed: int = 0,
                  vocab: int = 1000) -> Scores:
    """Realistic float32 scores: peaked emission distributions over a vocabulary (log-softmax of
    randn * 5) gathered for random words, and softmax transitions."""
    generator = torch.Generator().manual_seed(seed)
    table = (5 * torch.randn(states, vocab, generator=generator)).log_softmax(-1)
    words = torch.randint(vocab, (len(lengths), length), generator=generator)
    log_emit = table[:, words].permute(1, 2, 0).contiguous()
    trans_shape = (states, states) if shared else (len(lengths), length - 1, states, states)
    log_trans = (2 * torch.randn(trans_shape, generator=generator)).log_softmax(-1)
    log_init = torch.randn(states, generator=generator).log_softmax(-1)
    return Scores(log_init, log_trans, log_emit, torch.tensor(lengths))


def pyro_log_partition(scores: Scores) -> Tensor:
    """log p(x) (B,) from pyro's DiscreteHMM, for full-length sentences. Its chain starts one
    step before the first observation, so the first transition carries log_init (every row)
    from a uniform start; a Delta at 0 whose log-density is log_emit makes the observation
    distribution return the gathered emission scores for the dummy observation 0."""
    import pyro.distributions as pdist

    B, T, K = scores.log_emit.shape
    first = scores.log_init.expand(B, K)[:, None, None, :].expand(B, 1, K, K)
    rest = scores.log_trans.expand(B, T - 1, K, K)
    hmm = pdist.DiscreteHMM(scores.log_init.new_zeros(K), torch.cat([first, rest], dim=1),
                            pdist.Delta(torch.zeros_like(scores.log_emit), log_density=scores.log_emit),
                            validate_args=False)
    return hmm.log_prob(scores.log_emit.new_zeros(B, T))


def torch_struct_log_partition(scores: Scores) -> Tensor:
    """log p(x) (B,) from torch-struct's LinearChainCRF: edge potential [n, j, i] (state i at n,
    j at n + 1) = log_trans[i, j] + log_emit[n + 1, j], plus log_init + log_emit[0] on the first."""
    from torch_struct import LinearChainCRF

    trans = scores.log_trans.expand(scores.log_emit.shape[0], scores.log_emit.shape[1] - 1, -1, -1)
    edges = (trans + scores.log_emit[:, 1:, None, :]).transpose(-1, -2).clone()
    edges[:, 0] = edges[:, 0] + (scores.log_init + scores.log_emit[:, 0])[:, None, :]
    return LinearChainCRF(edges, lengths=scores.lengths).partition


def _gradient_posteriors(log_z: Callable[[Scores], Tensor]) -> Callable[[Scores], Tensor]:
    def run(scores: Scores) -> Tensor:
        log_emit = scores.log_emit.detach().requires_grad_()
        (gamma,) = torch.autograd.grad(log_z(scores._replace(log_emit=log_emit)).sum(), log_emit)
        return gamma
    return run


INFERENCE: dict[str, Callable[[Scores], Tensor]] = {
    "ours-scaled": lambda s: posteriors(*s.args(), method="scaled"),
    "ours-log": lambda s: posteriors(*s.args(), method="log"),
    "ours-log-partition-gradient": _gradient_posteriors(lambda s: log_partition(*s.args(), method="scaled")),
    "pyro-discrete-hmm": _gradient_posteriors(pyro_log_partition),
    "torch-struct-linear-chain-crf": _gradient_posteriors(torch_struct_log_partition),
}


def time_inference(name: str, repeats: int = 5, batch: int = BATCH, length: int = LENGTH,
                   states: int = K_STATES) -> dict:
    """Forward + posteriors of ``INFERENCE[name]``: the best of ``repeats`` timings, and the
    largest difference of its posteriors from ours in log space."""
    scores = peaked_scores([length] * batch, length, states, seed=7)
    reference = posteriors(*scores.args(), method="log")
    best, error = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        gamma = INFERENCE[name](scores)
        best = min(best, time.perf_counter() - start)
        error = max(error, float((gamma - reference).abs().max()))
    return {"seconds": round(best, 5), "tokens_per_s": round(batch * length / best, 1),
            "max_posterior_difference": error, "batch": batch, "length": length, "states": states}


def time_nhmm_training(emission: str, transition: str, data_root: str | None = None, updates: int = 3,
                       batch: int = BATCH, max_length: int = LENGTH) -> dict:
    """Adam updates per second of a NeuralHMM variant (45 states, hidden 512, or 128 with the
    conv emission; 3-layer LSTM) on the first ``batch`` WSJ sentences of at most ``max_length``
    tokens, with the vocabulary of all of WSJ; the first update is not timed."""
    from hmm.config import HmmConfig
    from hmm.recipe import build_model
    from vsl.data.batching import Collator
    from vsl.data.registry import load_dataset, resolve_dataset
    from vsl.data.vocab import build_vocabularies
    from vsl.optimization import apply_update

    corpus = load_dataset(resolve_dataset("wsj", data_root), with_raw=False)
    vocabs = build_vocabularies(corpus.train)
    sentences = [s for s in corpus.train if len(s) <= max_length][:batch]
    data = Collator(vocabs)(sentences, range(len(sentences)), with_tags=False)
    config = HmmConfig(model="nhmm", emission=emission, transition=transition).resolved()
    torch.manual_seed(0)
    model = build_model(config, vocabs.words.items).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    apply_update(model, optimizer, model.loss(data), config.grad_clip)
    start = time.perf_counter()
    for _ in range(updates):
        apply_update(model, optimizer, model.loss(data), config.grad_clip)
    seconds = (time.perf_counter() - start) / updates
    return {"seconds_per_update": round(seconds, 4), "tokens_per_s": round(data.n_tokens / seconds, 1),
            "sentences": len(sentences), "tokens": data.n_tokens, "vocabulary": len(vocabs.words),
            "hidden": config.hidden}
