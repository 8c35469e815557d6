"""Tagging with a trained model of either family: predictions over length-bucketed batches in
input order, the tags and scores of a set of sentences, and :class:`TrainedTagger`, what
``vsl tag`` and :func:`vsl.load_tagger` drive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from vsl.data.batching import Batch, Collator, iterate_batches
from vsl.data.readers import Sentence
from vsl.data.tagging import normalize_word
from vsl.metrics import tagging_scores


@torch.no_grad()
def predict_ids(predict: Callable[[Batch], torch.Tensor], sentences: Sequence[Sentence], collate: Collator,
                batch_size: int = 100, device: str = "cpu") -> list[list[int]]:
    """Run ``predict(batch) -> (B, T)`` over length-bucketed batches and return each sentence's
    ids, unpadded, in the order of ``sentences``."""
    predictions: list[list[int] | None] = [None] * len(sentences)
    for batch in iterate_batches(sentences, collate, batch_size, with_tags=False):
        ids = predict(batch.to(device)).cpu()
        for row, index in enumerate(batch.indices.tolist()):
            predictions[index] = ids[row, : len(sentences[index])].tolist()
    return predictions


def predict_tags(model, sentences: Sequence[Sentence], collate: Collator, batch_size: int = 100,
                 device: str = "cpu") -> list[list[str]]:
    """Tag every sentence (in input order) with the model's ``predict``, in eval mode."""
    was_training = model.training
    model.eval()
    ids = predict_ids(model.predict, sentences, collate, batch_size, device)
    model.train(was_training)
    return [collate.vocabs.tags.decode(row) for row in ids]


@dataclass
class TrainedTagger:
    """A trained model ready to tag new text (``scripts/tag.py``): ``predict(batch) -> (B, T)``
    ids, ``labels`` turning one sentence's ids into its tags, and the name of the tokenizer its
    training text went through."""

    predict: Callable[[Batch], torch.Tensor]
    collate: Collator
    labels: Callable[[list[int]], list[str]]
    tokenizer: str

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64, device: str = "cpu") -> list[list[str]]:
        """Tags of each token list, in order. Words are normalised as in training (digits to 0);
        unknown words and characters map to UNK; an empty sentence gets no tags."""
        prepared = [Sentence(tuple(normalize_word(w) for w in words)) for words in sentences]
        filled = [i for i, sentence in enumerate(prepared) if len(sentence)]
        tags: list[list[str]] = [[] for _ in prepared]
        ids = predict_ids(self.predict, [prepared[i] for i in filled], self.collate, batch_size, device)
        for index, row in zip(filled, ids):
            tags[index] = self.labels(row)
        return tags


def evaluate(model, sentences: Sequence[Sentence], collate: Collator, task: str,
             batch_size: int = 100, device: str = "cpu") -> dict:
    """Scores of the model's predictions against the gold tags (:func:`vsl.metrics.tagging_scores`)."""
    predicted = predict_tags(model, sentences, collate, batch_size, device)
    return tagging_scores([s.tags for s in sentences], predicted, task)
