"""The HMMs of Tran, Bisk, Vaswani, Marcu & Knight (2016), "Unsupervised Neural Hidden Markov
Models", for part-of-speech induction.

Both models define p(x, z) = p(z_0) p(x_0 | z_0) prod_t p(z_{t+1} | z_t) p(x_{t+1} | z_{t+1})
(paper eq. 1) and hand their log-probability tensors to :mod:`hmm.inference`:

* :class:`CategoricalHMM`: the classic HMM, every distribution a free categorical, trained by
  Baum-Welch (EM; Rabiner 1989, eqs. 40a-c) with random restarts.
* :class:`NeuralHMM`: the same model with neural parameterisations (paper sec. 3), trained by
  direct marginal likelihood (:func:`hmm.train.train_neural_hmm`):

  - emission ``"embed"``: p(w | k) = softmax_w(v_k . e_w + b_w), v_k = ReLU(tag embedding k)
    (eq. 7), e_w a learned word embedding;
  - emission ``"conv"``: the same with e_w = CharCNN(characters of w) (sec. 4.1), computed for
    the whole vocabulary at once;
  - transition ``"matrix"``: T = row-softmax(reshape(U^T q + b, K x K)), q a learned vector
    (eq. 8);
  - transition ``"lstm"``: the same with q_t the state of a 3-layer LSTM that has read words
    0..t, one K x K matrix per position (eq. 9).

  ``hidden_layers`` > 0 puts that many (Linear, ReLU) layers after ReLU(tag embedding) in v_k
  and after ReLU(q) in the matrix transition's query: the authors' released feed-forward
  emission and transition networks have one, the paper's equations none.

Word and character encoders come from :mod:`vsl.encoders`.
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from hmm.inference import baum_welch_statistics, log_partition, viterbi
from vsl.data.batching import Batch
from vsl.data.vocab import PAD, UNK, Vocabulary
from vsl.encoders import CharCNN, PrefixLSTM
from vsl.errors import VslError

EMISSIONS = ("embed", "conv")
TRANSITIONS = ("matrix", "lstm")
BOW, EOW = "<w>", "</w>"


class EMFit(NamedTuple):
    """The outcome of :meth:`CategoricalHMM.fit`: the per-token log-likelihood history of the
    kept restart (entry i: the parameters after i M-steps), which restart that was, and every
    restart's final per-token log-likelihood."""

    history: list[float]
    restart: int
    finals: list[float]


def _batches(batches) -> Iterable[Batch]:
    """``batches`` is a re-iterable collection of batches or a callable returning one."""
    return batches() if callable(batches) else batches


@torch.no_grad()
def corpus_log_likelihood(model, batches: Iterable[Batch], device: str | torch.device = "cpu") -> float:
    """Per-token log p(x) of ``batches`` under either HMM (dropout off)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        total += float(model.log_likelihood(batch).sum())
        tokens += batch.n_tokens
    model.train(was_training)
    return total / max(tokens, 1)


class CategoricalHMM(nn.Module):
    """A first-order HMM with categorical initial, transition and emission distributions, kept as
    log-probability buffers ``log_init`` (K,), ``log_trans`` (K, K) and ``log_emit`` (K, V)."""

    def __init__(self, n_states: int, n_words: int, seed: int = 0, dtype=torch.float64):
        super().__init__()
        if n_states < 1 or n_words < 1:
            raise VslError(f"an HMM needs at least one state and one word; got {n_states}, {n_words}")
        self.n_states, self.n_words = n_states, n_words
        self.register_buffer("log_init", torch.zeros(n_states, dtype=dtype))
        self.register_buffer("log_trans", torch.zeros(n_states, n_states, dtype=dtype))
        self.register_buffer("log_emit", torch.zeros(n_states, n_words, dtype=dtype))
        self.initialize(seed)

    def initialize(self, seed: int) -> None:
        """Random parameters: every row drawn from a flat Dirichlet (normalised exponentials),
        from a generator seeded with ``seed``."""
        generator = torch.Generator().manual_seed(seed)

        def rows(*shape) -> Tensor:
            draws = torch.empty(shape, dtype=torch.float64).exponential_(generator=generator)
            return torch.log(draws / draws.sum(-1, keepdim=True)).to(self.log_init)

        self.log_init.copy_(rows(self.n_states))
        self.log_trans.copy_(rows(self.n_states, self.n_states))
        self.log_emit.copy_(rows(self.n_states, self.n_words))

    def emission_scores(self, words: Tensor) -> Tensor:
        """``words`` (B, T) -> log p(x_t | z_t = k) (B, T, K)."""
        return self.log_emit.t()[words]

    def _scores(self, batch: Batch):
        words = batch.words.to(self.log_emit.device)
        return self.log_init, self.log_trans, self.emission_scores(words), batch.lengths.to(words.device)

    @torch.no_grad()
    def log_likelihood(self, batch: Batch) -> Tensor:
        """log p(x) (B,) by the forward algorithm."""
        return log_partition(*self._scores(batch))

    @torch.no_grad()
    def tag(self, batch: Batch) -> Tensor:
        """Viterbi states (B, T), -1 at padding."""
        return viterbi(*self._scores(batch))[0]

    @torch.no_grad()
    def expected_counts(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """E-step on one batch (Rabiner 1989, eqs. 38-39): expected initial (K,), transition
        (K, K) and emission (K, V) counts under p(z | x), and log p(x) (B,)."""
        device = self.log_emit.device
        words, lengths = batch.words.to(device), batch.lengths.to(device)
        gamma, transitions, log_likelihood = baum_welch_statistics(
            self.log_init, self.log_trans, self.emission_scores(words), lengths)
        real = torch.arange(words.shape[1], device=device) < lengths[:, None]
        emitted = torch.zeros(self.n_words, self.n_states, dtype=self.log_emit.dtype, device=device)
        emitted.index_add_(0, words[real], gamma[real])
        return gamma[:, 0].sum(0), transitions, emitted.t(), log_likelihood

    @torch.no_grad()
    def fit_em(self, batches, iterations: int, smoothing: float = 1e-8,
               progress: Callable[[int, float], None] | None = None) -> list[float]:
        """Baum-Welch from the current parameters: ``iterations`` E-steps over all ``batches``
        (a list, or a callable returning an iterable, of :class:`Batch`) and M-steps that
        normalise the expected counts plus ``smoothing`` (a Dirichlet pseudo-count, keeping
        unseen events off -inf). Returns the per-token log-likelihood of the data before each
        M-step; EM never decreases it (up to rounding and the effect of ``smoothing``)."""
        history = []
        for iteration in range(iterations):
            totals = [torch.zeros_like(self.log_init), torch.zeros_like(self.log_trans),
                      torch.zeros_like(self.log_emit)]
            log_likelihood, tokens = 0.0, 0
            for batch in _batches(batches):
                *counts, batch_log_likelihood = self.expected_counts(batch)
                for total, count in zip(totals, counts):
                    total += count
                log_likelihood += float(batch_log_likelihood.sum())
                tokens += int(batch.lengths.sum())
            if not tokens:
                raise VslError("EM needs at least one sentence")
            history.append(log_likelihood / tokens)
            for buffer, total in zip((self.log_init, self.log_trans, self.log_emit), totals):
                total += smoothing
                buffer.copy_(torch.log(total / total.sum(-1, keepdim=True)))
            if progress is not None:
                progress(iteration, history[-1])
        return history

    def fit(self, batches, iterations: int, restarts: int = 1, seed: int = 0, smoothing: float = 1e-8,
            progress: Callable[[int, float], None] | None = None) -> EMFit:
        """EM from ``restarts`` random initialisations (seeds ``seed``, ``seed + 1``, ...);
        keeps the parameters whose final log-likelihood is highest."""
        if restarts < 1 or iterations < 1:
            raise VslError(f"need restarts >= 1 and iterations >= 1; got {restarts}, {iterations}")
        best, finals = None, []
        for restart in range(restarts):
            self.initialize(seed + restart)
            history = self.fit_em(batches, iterations, smoothing, progress)
            finals.append(corpus_log_likelihood(self, _batches(batches), self.log_init.device))
            history.append(finals[-1])
            if best is None or finals[-1] > finals[best[0]]:
                best = (restart, history, {k: v.clone() for k, v in self.state_dict().items()})
        self.load_state_dict(best[2])
        return EMFit(best[1], best[0], finals)


# ----------------------------------------------------------------------------- neural HMM


def character_table(words: Sequence[str], max_chars: int = 15) -> tuple[Vocabulary, Tensor, Tensor]:
    """The character vocabulary of ``words`` (sorted, after the specials pad, unk and the word
    boundary markers) and every word's ids (V, L): begin marker, its first ``max_chars``
    characters, end marker. The special words ``<pad>`` and ``<unk>`` are spelt as the unknown
    character. Returns (vocabulary, ids, lengths)."""
    if not words:
        raise VslError("the character emission needs the word list of the vocabulary")
    chars = Vocabulary(sorted({c for w in words if w not in (PAD, UNK) for c in w}),
                       specials=(PAD, UNK, BOW, EOW))
    spelt = [[BOW, UNK, EOW] if w in (PAD, UNK) else [BOW, *w[:max_chars], EOW] for w in words]
    ids = torch.zeros(len(words), max(len(s) for s in spelt), dtype=torch.long)
    for row, symbols in enumerate(spelt):
        ids[row, : len(symbols)] = torch.tensor([chars.index(c) for c in symbols])
    return chars, ids, torch.tensor([len(s) for s in spelt])


def joint_log_likelihood(log_init: Tensor, log_trans: Tensor, log_emit: Tensor, lengths: Tensor,
                         states: Tensor) -> Tensor:
    """log p(x, z) (B,) for given state sequences ``states`` (B, T) (clamped states, paper eq. 1):
    log init of z_0, plus the log transitions along the path, plus the log emissions, over each
    sentence's real positions only. Inputs are shaped as in :mod:`hmm.inference`; ``states``
    may hold anything (e.g. -1) at padding."""
    B, T, K = log_emit.shape
    real = torch.arange(T, device=log_emit.device) < lengths.to(log_emit.device)[:, None]
    z = states.to(log_emit.device).masked_fill(~real, 0)
    emitted = log_emit.gather(-1, z.unsqueeze(-1)).squeeze(-1)
    total = log_init.expand(B, K).gather(-1, z[:, :1]).squeeze(-1)
    total = total + torch.where(real, emitted, 0.0).sum(-1)
    if T > 1:
        if log_trans.dim() == 2:
            steps = log_trans[z[:, :-1], z[:, 1:]]
        else:
            rows = log_trans.gather(-2, z[:, :-1, None, None].expand(B, T - 1, 1, K)).squeeze(-2)
            steps = rows.gather(-1, z[:, 1:, None]).squeeze(-1)
        total = total + torch.where(real[:, 1:], steps, 0.0).sum(-1)
    return total


def relu_layers(width: int, count: int) -> nn.Sequential:
    """``count`` (Linear(width, width), ReLU) pairs; the identity when ``count`` is 0."""
    return nn.Sequential(*(module for _ in range(count) for module in (nn.Linear(width, width), nn.ReLU())))


class NeuralHMM(nn.Module):
    """The neural HMM of Tran et al. (2016, sec. 3) with switchable emission (``"embed"``,
    ``"conv"``) and transition (``"matrix"``, ``"lstm"``) networks; see the module docstring.

    ``words`` (the vocabulary's items, id order) is needed by the ``"conv"`` emission, which
    spells every word once at construction (``max_word_chars`` characters at most, between
    boundary markers) and runs the CharCNN over all of them at every step.
    """

    def __init__(self, n_states: int, n_words: int, hidden: int = 512, emission: str = "embed",
                 transition: str = "matrix", words: Sequence[str] | None = None, char_dim: int = 15,
                 max_word_chars: int = 15, lstm_layers: int = 3, dropout: float = 0.5,
                 hidden_layers: int = 0, lstm_dropout_top: bool = False, lstm_init: str = "torch"):
        super().__init__()
        if emission not in EMISSIONS:
            raise VslError(f"emission {emission!r} is not one of {', '.join(EMISSIONS)}")
        if transition not in TRANSITIONS:
            raise VslError(f"transition {transition!r} is not one of {', '.join(TRANSITIONS)}")
        if n_states < 1 or n_words < 1 or hidden < 1:
            raise VslError(f"need states, words and hidden >= 1; got {n_states}, {n_words}, {hidden}")
        if hidden_layers < 0:
            raise VslError(f"hidden_layers must be >= 0; got {hidden_layers}")
        self.n_states, self.n_words, self.hidden = n_states, n_words, hidden
        self.hidden_layers = hidden_layers
        self.emission, self.transition = emission, transition
        K = n_states
        # Initial scales: tag embeddings N(0, 1) and word embeddings U(+-1/sqrt(hidden)) (as the
        # output layer of a network), so that v_k . e_w starts with variance about 1/6 whatever
        # the hidden size; the query has norm about 1. Larger word or query scales let Adam's
        # first steps hand most of the posterior mass to one state, which then explains the
        # unigram distribution alone (a poor local optimum).
        self.init_logits = nn.Parameter(torch.zeros(K))
        self.tag_embedding = nn.Parameter(torch.randn(K, hidden))
        self.tag_layers = relu_layers(hidden, hidden_layers)
        self.word_bias = nn.Parameter(torch.zeros(n_words))
        if emission == "embed":
            self.word_embedding = nn.Embedding(n_words, hidden)
            nn.init.uniform_(self.word_embedding.weight, -hidden ** -0.5, hidden ** -0.5)
        else:
            if words is None or len(words) != n_words:
                raise VslError(f"the conv emission needs the list of all {n_words} words")
            self.chars, ids, lengths = character_table(words, max_word_chars)
            self.register_buffer("char_ids", ids, persistent=False)
            self.register_buffer("char_lengths", lengths, persistent=False)
            self.char_cnn = CharCNN(len(self.chars), char_dim, output_dim=hidden)
        if transition == "matrix":
            self.query = nn.Parameter(torch.randn(hidden) / hidden ** 0.5)
            self.query_layers = relu_layers(hidden, hidden_layers)
        else:
            self.lstm_embedding = nn.Embedding(n_words, hidden)
            self.lstm = PrefixLSTM(hidden, hidden, layers=lstm_layers, dropout=dropout, dropout_top=lstm_dropout_top,
                                   init=lstm_init)
        self.transition_layer = nn.Linear(hidden, K * K)  # U and b of eq. 8

    # -- the three distributions

    def log_initial(self) -> Tensor:
        """log p(z_0 = k) (K,): a softmax over learned logits."""
        return torch.log_softmax(self.init_logits, dim=-1)

    def word_vectors(self) -> Tensor:
        """e_w for every word (V, hidden): the embedding, or the CharCNN over its characters."""
        if self.emission == "embed":
            return self.word_embedding.weight
        return self.char_cnn(self.char_ids, self.char_lengths)

    def log_emission_table(self) -> Tensor:
        """log p(w | k) (K, V) = log_softmax_w(v_k . e_w + b_w), v_k = ReLU(tag embedding k)
        (eq. 7), then the ``hidden_layers``."""
        tag_vectors = self.tag_layers(torch.relu(self.tag_embedding))
        logits = tag_vectors @ self.word_vectors().t() + self.word_bias
        return torch.log_softmax(logits, dim=-1)

    def log_transitions(self, words: Tensor) -> Tensor:
        """log p(z_{t+1} = j | z_t = i): (K, K) for ``"matrix"`` (eq. 8, T = reshape(U^T q + b)
        with a row softmax), else (B, T-1, K, K) with entry t from the LSTM state that has read
        words 0..t (eq. 9): PrefixLSTM's output t + 1."""
        K = self.n_states
        if self.transition == "matrix":
            query = self.query_layers(torch.relu(self.query)) if self.hidden_layers else self.query
            return torch.log_softmax(self.transition_layer(query).view(K, K), dim=-1)
        states = self.lstm(self.lstm_embedding(words))[:, 1:]  # (B, T-1, hidden)
        scores = self.transition_layer(states).view(*states.shape[:2], K, K)
        return torch.log_softmax(scores, dim=-1)

    def scores(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(log_init, log_trans, log_emit (B, T, K), lengths) of ``batch`` on the model's
        device, as :mod:`hmm.inference` takes them."""
        device = self.init_logits.device
        words = batch.words.to(device)
        log_emit = self.log_emission_table().t()[words]
        return self.log_initial(), self.log_transitions(words), log_emit, batch.lengths.to(device)

    # -- objectives and decoding

    def loss(self, batch: Batch) -> Tensor:
        """The training objective: -log p(x) per token of the batch (Tran et al. 2016, sec. 4),
        or -log p(x, z = tags) for a batch that carries gold tags (semi-supervised training)."""
        return -self.log_likelihood(batch, batch.tags).sum() / batch.n_tokens

    def log_likelihood(self, batch: Batch, tags: Tensor | None = None, method: str = "auto") -> Tensor:
        """log p(x) (B,) by the forward algorithm. With ``tags`` (B, T) gold state ids (states
        = the tag set), a sentence whose real positions all hold a tag >= 0 scores its joint
        log p(x, z = tags) instead (semi-supervised training); a row with a negative tag stays
        unlabeled (marginal)."""
        log_init, log_trans, log_emit, lengths = self.scores(batch)
        if tags is None:
            return log_partition(log_init, log_trans, log_emit, lengths, method)
        tags = tags.to(log_emit.device)
        if tuple(tags.shape) != tuple(log_emit.shape[:2]):
            raise VslError(f"tags of shape {tuple(tags.shape)} for words of shape {tuple(log_emit.shape[:2])}")
        real = torch.arange(tags.shape[1], device=tags.device) < lengths[:, None]
        labeled = ((tags >= 0) | ~real).all(dim=-1)
        if bool((tags[real & labeled[:, None]] >= self.n_states).any()):
            raise VslError(f"tag ids must be below the {self.n_states} states")
        clamped = torch.where(labeled[:, None], tags, 0)  # unlabeled rows: any path, discarded
        joint = joint_log_likelihood(log_init, log_trans, log_emit, lengths, clamped)
        if bool(labeled.all()):  # no forward pass for a batch of labeled sentences only
            return joint
        return torch.where(labeled, joint, log_partition(log_init, log_trans, log_emit, lengths, method))

    @torch.no_grad()
    def tag(self, batch: Batch) -> Tensor:
        """Viterbi states (B, T), -1 at padding, with dropout off."""
        was_training = self.training
        self.eval()
        try:
            return viterbi(*self.scores(batch))[0]
        finally:
            self.train(was_training)
