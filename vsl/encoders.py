"""The shared encoder layer of both model families.

* :class:`CharBiGRU` and :class:`WordCharEmbedding`: a word's vector is its word embedding
  concatenated with the final states of a character BiGRU (forward state after the last
  character, backward state after the first), as in Chen et al. (2018, sec. 4).
* :class:`SentenceEncoder`: a one-layer BiGRU over those vectors gives the contextual states
  h_t that every VSL model and the baseline read.
* :class:`CharCNN`: the character CNN of Tran et al. (2016, sec. 4.1; after Kim et al. 2016)
  with kernel widths 1..7, used by the neural HMM's emission network.
* :class:`PrefixLSTM`: a stacked unidirectional LSTM whose output at position t has read words
  1..t-1 only: the neural HMM's per-position transition query (Tran et al. 2016, eq. 9).

Character encoders run once over the distinct words of a batch (see
:class:`vsl.data.batching.Batch`); nothing loops over sentences in Python.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vsl.data.batching import Batch


class CharBiGRU(nn.Module):
    """Final forward and backward states of a BiGRU over each word's characters."""

    def __init__(self, n_chars: int, char_dim: int = 50, hidden: int = 50):
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.rnn = nn.GRU(char_dim, hidden, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``chars`` (U, L) padded ids, ``lengths`` (U,) >= 1 -> (U, 2 * hidden)."""
        packed = pack_padded_sequence(self.embed(chars), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.rnn(packed)  # (2, U, hidden), already in the input order
        return torch.cat([final[0], final[1]], dim=-1)


class WordCharEmbedding(nn.Module):
    """Token vectors: word embedding (optionally pretrained and frozen) ++ char BiGRU states."""

    def __init__(self, n_words: int, word_dim: int, chars: CharBiGRU,
                 pretrained: torch.Tensor | None = None, freeze: bool = False):
        super().__init__()
        self.words = nn.Embedding(n_words, word_dim, padding_idx=0)
        if pretrained is not None:
            if tuple(pretrained.shape) != (n_words, word_dim):
                raise ValueError(f"pretrained shape {tuple(pretrained.shape)} != {(n_words, word_dim)}")
            self.words.weight.data.copy_(pretrained)
        self.words.weight.requires_grad_(not freeze)
        self.chars = chars
        self.output_dim = word_dim + chars.output_dim

    def forward(self, batch: Batch) -> torch.Tensor:
        """-> (B, T, word_dim + char output)."""
        per_type = self.chars(batch.chars, batch.char_lengths)
        return torch.cat([self.words(batch.words), per_type[batch.types]], dim=-1)


class SentenceEncoder(nn.Module):
    """h_t: a one-layer BiGRU over the word+char token vectors (padding-safe via packing)."""

    def __init__(self, embedding: WordCharEmbedding, hidden: int = 100, dropout: float = 0.0):
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embedding.output_dim, hidden, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden

    def forward(self, batch: Batch) -> torch.Tensor:
        """-> (B, T, 2 * hidden), zero at padding."""
        inputs = self.dropout(self.embedding(batch))
        packed = pack_padded_sequence(inputs, batch.lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.shape[1])
        return self.dropout(states)


class CharCNN(nn.Module):
    """Word vectors from characters: convolutions of widths 1..7, tanh, max over time,
    concatenated and projected to ``output_dim`` (Tran et al. 2016, sec. 4.1).

    A window may not run past the end of the word; a word shorter than a kernel uses that
    kernel's first window (padding contributes zero embeddings). Words are convolved in groups
    of one length each, so no window is computed over padding past a word's end and no mask is
    needed; tanh is applied after the max over time, which gives the same value and gradient
    (tanh is increasing) at a fraction of the cost. Each convolution is one matrix product of
    the unfolded windows with the kernel (weights kept in ``nn.Conv1d``'s layout): with 15
    input channels that is about 1.5x faster on CPU, forward and backward, than ``conv1d``.
    """

    def __init__(self, n_chars: int, char_dim: int = 15, widths=(1, 2, 3, 4, 5, 6, 7),
                 maps=(50, 100, 128, 128, 128, 128, 128), output_dim: int = 128):
        super().__init__()
        if len(widths) != len(maps):
            raise ValueError("one feature-map count per kernel width")
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.widths = tuple(widths)
        self.convs = nn.ModuleList(nn.Conv1d(char_dim, m, w) for w, m in zip(widths, maps))
        self.project = nn.Linear(sum(maps), output_dim)
        self.output_dim = output_dim

    def _pool(self, chars: torch.Tensor, length: int) -> torch.Tensor:
        """Max-over-time features (n, sum(maps)) of words that all have ``length`` characters,
        ``chars`` (n, >= length)."""
        span = max(length, max(self.widths))
        chars = nn.functional.pad(chars[:, :length], (0, span - length))
        inputs = self.embed(chars)  # (n, span, char_dim)
        pooled = []
        for width, conv in zip(self.widths, self.convs):
            positions = max(length - width + 1, 1)
            windows = inputs.unfold(1, width, 1)[:, :positions]  # (n, positions, char_dim, width)
            maps = torch.addmm(conv.bias, windows.reshape(-1, conv.weight[0].numel()), conv.weight.flatten(1).t())
            pooled.append(maps.view(len(inputs), positions, -1).max(dim=1).values)
        return torch.tanh(torch.cat(pooled, dim=-1))

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``chars`` (U, L), ``lengths`` (U,) -> (U, output_dim)."""
        distinct = lengths.unique().tolist()
        groups = [(lengths == length).nonzero().squeeze(1) for length in distinct]
        pooled = torch.cat([self._pool(chars[rows], length) for length, rows in zip(distinct, groups)])
        order = torch.cat(groups).argsort()
        return self.project(pooled[order])


LSTM_INITS = ("paper", "torch", "uniform")


class PrefixLSTM(nn.Module):
    """A stacked LSTM read left to right; output t has seen inputs 0..t-1 only.

    Output 0 is a learned start state (nothing read yet). Causality makes padding at the end
    harmless, so no packing is needed. ``dropout`` acts between the layers and, with
    ``dropout_top``, on the top layer's output as well ("dropout over the vertical
    connections", Tran et al. 2016, sec. 8; ``nn.LSTM`` alone drops only between layers).
    ``init="paper"`` draws every weight from N(0, 1 / (n_in + hidden)) and sets the biases to 0
    but the forget gate's to 1 (Tran et al. sec. 8, with their code's n_in + hidden); ``"torch"``
    keeps PyTorch's U(+-1/sqrt(hidden)); ``"uniform"`` draws every weight and bias from
    U(-1e-4, 1e-4), the initialization of Tran et al.'s Table 3 ablation.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int = 3, dropout: float = 0.5,
                 dropout_top: bool = False, init: str = "torch"):
        super().__init__()
        if init not in LSTM_INITS:
            raise ValueError(f"init {init!r} is not one of {', '.join(LSTM_INITS)}")
        self.rnn = nn.LSTM(input_dim, hidden, num_layers=layers, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)
        self.top_dropout = nn.Dropout(dropout if dropout_top else 0.0)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.output_dim = hidden
        if init == "paper":
            for layer in range(layers):
                fan = (input_dim if layer == 0 else hidden) + hidden
                for kind in ("ih", "hh"):
                    nn.init.normal_(getattr(self.rnn, f"weight_{kind}_l{layer}"), std=fan ** -0.5)
                    nn.init.zeros_(getattr(self.rnn, f"bias_{kind}_l{layer}"))
                with torch.no_grad():  # gates in PyTorch's order: input, forget, cell, output
                    getattr(self.rnn, f"bias_ih_l{layer}")[hidden:2 * hidden] = 1.0
        elif init == "uniform":
            for parameter in self.rnn.parameters():
                nn.init.uniform_(parameter, -1e-4, 1e-4)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` (B, T, D) -> (B, T, hidden)."""
        start = self.start.expand(inputs.shape[0], 1, -1)
        if inputs.shape[1] == 1:
            return start
        states, _ = self.rnn(inputs[:, :-1])
        return torch.cat([start, self.top_dropout(states)], dim=1)
