"""The BiGRU baseline: loss, prediction, and that it can fit a small real set."""

from __future__ import annotations

import torch

from vsl.data.batching import BatchStream
from vsl.models import BiGRUTagger, build_encoder
from vsl.prediction import evaluate, predict_tags
from vsl.training import fit


def _tagger(collate):
    torch.manual_seed(0)
    vocabs = collate.vocabs
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=16, char_dim=8,
                            char_hidden=8, hidden=32)
    return BiGRUTagger(encoder, len(vocabs.tags))


def test_loss_is_mean_token_cross_entropy(twitter_slice, twitter_collator):
    model = _tagger(twitter_collator)
    batch = twitter_collator(twitter_slice[0][:5], range(5))
    logits = model(batch)
    manual = []
    for row in range(5):
        for t in range(int(batch.lengths[row])):
            manual.append(-torch.log_softmax(logits[row, t], -1)[batch.tags[row, t]])
    torch.testing.assert_close(model.loss(batch), torch.stack(manual).mean())
    predicted = model.predict(batch)
    assert torch.all(predicted[~batch.mask] == -1)


def test_baseline_overfits_a_small_real_set(twitter_slice, twitter_collator):
    train = twitter_slice[0][:20]
    model = _tagger(twitter_collator)
    batches = BatchStream(train, twitter_collator, 10, seed=0)
    result = fit(model, batches, lambda: evaluate(model, train, twitter_collator, "pos"),
                 "accuracy", max_steps=150, eval_every=50, lr=1e-2, grad_clip=10.0, progress=False)
    assert result.best_dev["accuracy"] > 0.97
    tags = predict_tags(model, train, twitter_collator)
    assert [len(t) for t in tags] == [len(s) for s in train]


def test_interrupt_keeps_the_best_model_so_far(twitter_slice, twitter_collator):
    train = twitter_slice[0][:20]
    model = _tagger(twitter_collator)
    batches = BatchStream(train, twitter_collator, 10, seed=0)

    def interrupted_after(n):
        for step, batch in enumerate(batches):
            if step == n:
                raise KeyboardInterrupt
            yield batch

    scores = iter([0.5, 0.9, 0.7])
    result = fit(model, interrupted_after(35), lambda: {"accuracy": next(scores)}, "accuracy",
                 max_steps=1000, eval_every=10, lr=1e-2, grad_clip=10.0, progress=False)
    assert result.interrupted and result.steps == 35 and result.best_step == 20  # 35 steps completed
    assert result.best_dev == {"accuracy": 0.9}
