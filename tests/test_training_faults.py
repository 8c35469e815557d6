"""The trainer's handling of non-finite values, stop requests and resumable data order."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from vsl.checkpoint import LAST, RunMetadata, save_metadata, save_tensors
from vsl.run_folder import training_progress
from vsl.data.batching import BatchStream
from vsl.models import BiGRUTagger, build_encoder
from vsl.optimization import NonFiniteError, StopRequest
from vsl.training import fit


def _tagger(collate):
    encoder = build_encoder(len(collate.vocabs.words), len(collate.vocabs.chars), 16, 8, 8, 16, 0.0)
    return BiGRUTagger(encoder, len(collate.vocabs.tags))


class PoisonedAt(torch.nn.Module):
    """Wraps a tagger; its loss is ``value`` (NaN, inf) at the given training steps."""

    def __init__(self, model, steps, value=float("nan")):
        super().__init__()
        self.model, self.steps, self.value, self.calls = model, set(steps), value, 0

    def loss(self, batch):
        self.calls += 1
        loss = self.model.loss(batch)
        return loss * self.value if self.calls in self.steps else loss

    def predict(self, batch):
        return self.model.predict(batch)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_training_at_its_step_before_any_update(value, twitter_slice, twitter_collator,
                                                                        tmp_path):
    train = twitter_slice[0]
    model = PoisonedAt(_tagger(twitter_collator), steps=[3], value=value)
    seen = []

    class Recording(BatchStream):
        def __next__(self):
            batch = super().__next__()
            seen.append(batch.indices.tolist())
            if len(seen) == 3:  # the weights just before the poisoned step
                seen.append(_weights(model))
            return batch

    with pytest.raises(NonFiniteError) as caught:
        fit(model, Recording(train, twitter_collator, 5, seed=0), lambda: {"accuracy": 0.0}, "accuracy",
            max_steps=10, eval_every=5, lr=1e-2, grad_clip=5.0, progress=False, log_path=tmp_path / "log")
    message = str(caught.value)
    assert message.startswith("step 3: the loss is") and "sentences " + ", ".join(map(str, seen[2])) in message
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, seen[3][name]), name


def test_a_non_finite_gradient_is_caught_too(twitter_slice, twitter_collator):
    train = twitter_slice[0]
    model = _tagger(twitter_collator)

    def sqrt_of_zero(batch):  # finite loss (0), infinite gradient (d sqrt(x)/dx at 0)
        return torch.sqrt(model.classifier.weight.sum() * 0.0)

    model.loss = sqrt_of_zero
    with pytest.raises(NonFiniteError, match=r"^step 1: the gradient norm is (inf|nan)"):
        fit(model, BatchStream(train, twitter_collator, 5, seed=0), lambda: {"accuracy": 0.0}, "accuracy",
            max_steps=3, eval_every=5, lr=1e-2, grad_clip=5.0, progress=False)


def test_skip_mode_drops_only_the_bad_batches_and_logs_them(twitter_slice, twitter_collator, tmp_path):
    train = twitter_slice[0]
    saved = []

    def run(log: str, poisoned_calls, resume=None):
        model = PoisonedAt(_tagger(twitter_collator), steps=poisoned_calls)
        result = fit(model, BatchStream(train, twitter_collator, 5, seed=0), lambda: {"accuracy": 0.5}, "accuracy",
                     max_steps=6, eval_every=3, lr=1e-2, grad_clip=5.0, progress=False, on_nonfinite="skip",
                     log_path=tmp_path / log, checkpoint_every=4, resume=resume,
                     save_checkpoint=lambda checkpoint: saved.append(copy.deepcopy(checkpoint)))
        return model, result, [json.loads(line) for line in (tmp_path / log).read_text().splitlines()]

    model, result, records = run("log", [2, 5])
    assert result.skipped == [2, 5] and result.steps == 6
    assert [r["step"] for r in records] == [2, 3, 5, 6]
    assert "the loss is nan on sentences" in records[0]["skipped"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # resumed from step 4, the log still holds the skip at step 2
    _, resumed, resumed_records = run("resumed", [1], resume=saved[0])  # its first step is step 5
    assert saved[0]["trainer"]["step"] == 4 and resumed.skipped == [2, 5]
    assert [r["step"] for r in resumed_records] == [2, 3, 5, 6] and "skipped" in resumed_records[0]


def test_a_stop_request_ends_at_a_step_boundary_with_a_checkpoint(twitter_slice, twitter_collator, tmp_path):
    train = twitter_slice[0]
    model = _tagger(twitter_collator)
    stop = StopRequest()
    saved = []
    batches = BatchStream(train, twitter_collator, 5, seed=0)

    class Counting:
        def __init__(self):
            self.steps = 0

        def __call__(self):
            self.steps += 1
            if self.steps == 8:
                stop._handle(None, None)  # as the signal handler would
            return stop()

    result = fit(model, batches, lambda: {"accuracy": 0.5}, "accuracy", max_steps=100, eval_every=5, lr=1e-2,
                 grad_clip=5.0, progress=False, save_checkpoint=saved.append, should_stop=Counting())
    assert result.interrupted and result.steps == 7
    assert len(saved) == 1 and saved[0]["trainer"]["step"] == 7 and not saved[0]["trainer"]["finished"]
    assert saved[0]["batches"] == {"epoch": 0, "position": 7}
    save_metadata(tmp_path, RunMetadata("vsl", {"max_steps": 100}, {}, "whitespace"))
    save_tensors(tmp_path / LAST, saved[0])
    assert training_progress(tmp_path) == "at step 7 of at most 100"
    with pytest.raises(KeyboardInterrupt):  # a second signal does not wait
        stop._handle(None, None)


def test_batch_stream_continues_from_its_state_across_epochs(twitter_slice, twitter_collator):
    train = twitter_slice[0]  # 40 sentences: 8 batches of 5 per epoch
    stream = BatchStream(train, twitter_collator, 5, seed=4)
    for _ in range(11):
        next(stream)
    state = stream.state_dict()
    assert state == {"epoch": 1, "position": 3}
    ahead = [next(stream).indices.tolist() for _ in range(10)]
    fresh = BatchStream(train, twitter_collator, 5, seed=4)
    fresh.load_state_dict(state)
    assert [next(fresh).indices.tolist() for _ in range(10)] == ahead
    epoch = BatchStream(train, twitter_collator, 5, seed=4)
    assert sorted(i for _ in range(8) for i in next(epoch).indices.tolist()) == list(range(40))
    with pytest.raises(ValueError, match="outside epoch"):
        fresh.load_state_dict({"epoch": 0, "position": 9})
