"""Taggers on the shared encoder.

:class:`BiGRUTagger` is the baseline of Chen et al. (2018, sec. 5): a linear layer on the
BiGRU states h_t, trained by per-token cross-entropy with the word embeddings fine-tuned.
"""

from __future__ import annotations

import torch
from torch import nn

from vsl.data.batching import Batch
from vsl.encoders import CharBiGRU, SentenceEncoder, WordCharEmbedding


class BiGRUTagger(nn.Module):
    """p(l_t | x) = softmax(W h_t + b)."""

    def __init__(self, encoder: SentenceEncoder, n_tags: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.output_dim, n_tags)

    def forward(self, batch: Batch) -> torch.Tensor:
        """-> tag logits (B, T, n_tags)."""
        return self.classifier(self.encoder(batch))

    def loss(self, batch: Batch) -> torch.Tensor:
        """Cross-entropy averaged over the real tokens of the batch."""
        logits = self(batch)
        return nn.functional.cross_entropy(logits[batch.mask], batch.tags[batch.mask])

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Most probable tag per token (B, T); -1 at padding."""
        return self(batch).argmax(-1).masked_fill(~batch.mask, -1)


def build_encoder(n_words: int, n_chars: int, word_dim: int = 100, char_dim: int = 50,
                  char_hidden: int = 50, hidden: int = 100, dropout: float = 0.0,
                  pretrained: torch.Tensor | None = None, freeze: bool = False) -> SentenceEncoder:
    """The shared word+char BiGRU encoder with the given sizes."""
    chars = CharBiGRU(n_chars, char_dim, char_hidden)
    return SentenceEncoder(WordCharEmbedding(n_words, word_dim, chars, pretrained, freeze), hidden, dropout)
