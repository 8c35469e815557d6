"""Gaussian heads, reparameterization, the closed-form KL and the per-token prior store."""

from __future__ import annotations

import errno
import io
import os

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vsl.checkpoint import LAST, PRIORS, load_tensors, read_training_checkpoint, save_tensors
from vsl.errors import VslError
from vsl.latent import GaussianHead, PriorStore, gaussian_kl, reparameterize

HALF = dict(atol=1e-2, rtol=1e-3)  # float16 storage precision


def _posterior(lengths, dim, seed=0):
    """Random (mean, logvar) of shape (B, max length, dim), non-zero at padding too."""
    generator = torch.Generator().manual_seed(seed)
    shape = (len(lengths), max(lengths), dim)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def _batch(indices, lengths):
    return torch.tensor(indices), torch.tensor(lengths)


def test_gaussian_head_shapes_and_single_linear_layer():
    head = GaussianHead(6, 4)
    mean, logvar = head(torch.randn(3, 5, 6))
    assert mean.shape == logvar.shape == (3, 5, 4)
    assert [p.shape for p in head.parameters()] == [(8, 6), (8,)]


def test_reparameterize_without_sampling_is_the_mean():
    mean, logvar = torch.randn(4, 3), torch.randn(4, 3)
    assert reparameterize(mean, logvar, sample=False) is mean


def test_reparameterize_samples_have_the_right_moments():
    torch.manual_seed(0)
    n = 200_000
    mean = torch.tensor([1.5, -2.0, 0.0]).expand(n, 3)
    logvar = torch.tensor([0.0, 1.0, -2.0]).expand(n, 3)
    draws = reparameterize(mean, logvar, sample=True)
    variance = logvar[0].exp()
    torch.testing.assert_close(draws.mean(0), mean[0], atol=float(5 * (variance / n).sqrt().max()), rtol=0)
    torch.testing.assert_close(draws.var(0), variance, atol=0, rtol=0.02)


def test_reparameterize_gradient_reaches_mean_and_logvar():
    torch.manual_seed(0)
    mean = torch.zeros(5, 2, requires_grad=True)
    logvar = torch.zeros(5, 2, requires_grad=True)
    reparameterize(mean, logvar, sample=True).pow(2).sum().backward()
    assert mean.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 4, 6)])
def test_gaussian_kl_matches_torch_distributions(shape):
    generator = torch.Generator().manual_seed(len(shape))
    mq, lq, mp, lp = (torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(4))
    expected = kl_divergence(Independent(Normal(mq, (0.5 * lq).exp()), 1),
                             Independent(Normal(mp, (0.5 * lp).exp()), 1))
    result = gaussian_kl(mq, lq, mp, lp)
    assert result.shape == shape[:-1]
    torch.testing.assert_close(result, expected)


def test_gaussian_kl_of_identical_gaussians_is_zero():
    mean, logvar = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(gaussian_kl(mean, logvar, mean, logvar), torch.zeros(4))


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mq, lq = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([-0.5, 0.2, 0.0])
    mp, lp = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, -0.3, 0.7])
    q, p = Independent(Normal(mq, (0.5 * lq).exp()), 1), Independent(Normal(mp, (0.5 * lp).exp()), 1)
    draws = q.sample((200_000,))
    log_ratios = q.log_prob(draws) - p.log_prob(draws)
    error = 5 * log_ratios.std() / len(log_ratios) ** 0.5
    assert abs(float(log_ratios.mean() - gaussian_kl(mq, lq, mp, lp))) < float(error)


def test_prior_store_layout_and_initial_gather_is_standard_normal():
    store = PriorStore([3, 1, 4], dim=2)
    assert store.offsets.tolist() == [0, 3, 4, 8]
    assert store.n_tokens == 8 and store.mean.dtype == torch.float16
    assert store.nbytes == 4 * 8 + 2 * (8 * 2 * 2) + 3 * 8
    mean, logvar = store.gather(*_batch([2, 0], [4, 3]), max_len=4)
    assert mean.shape == logvar.shape == (2, 4, 2) and mean.dtype == torch.float32
    assert not mean.any() and not logvar.any()


def test_update_every_visit_writes_the_right_tokens():
    lengths = [3, 1, 4, 2]
    store = PriorStore(lengths, dim=2)
    indices, batch_lengths = _batch([2, 0], [4, 3])
    mean, logvar = _posterior([4, 3], 2)
    written = store.update(indices, batch_lengths, mean, logvar)
    assert written.tolist() == [True, True]

    prior_mean, prior_logvar = store.gather(indices, batch_lengths, max_len=4)
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)[..., None]
    torch.testing.assert_close(prior_mean, mean * real, **HALF)
    torch.testing.assert_close(prior_logvar, logvar * real, **HALF)
    torch.testing.assert_close(store.mean[4:8].float(), mean[0], **HALF)  # sentence 2 = tokens 4..7
    torch.testing.assert_close(store.mean[0:3].float(), mean[1, :3], **HALF)  # sentence 0 = tokens 0..2
    assert not store.mean[3].any() and not store.mean[8:].any()  # sentences 1 and 3 untouched
    assert not store.logvar[3].any() and not store.logvar[8:].any()


def test_update_every_third_visit_per_sentence():
    store = PriorStore([2, 3], dim=1, update_every=3)
    history, stored = [], []
    for visit in range(1, 7):
        mean, logvar = torch.full((1, 2, 1), float(visit)), torch.full((1, 2, 1), -float(visit))
        history.append(store.update(*_batch([0], [2]), mean, logvar).item())
        prior_mean, prior_logvar = store.gather(*_batch([0], [2]), max_len=2)
        stored.append((prior_mean.flatten().tolist(), prior_logvar.flatten().tolist()))
    assert history == [False, False, True, False, False, True]
    assert [m for m, _ in stored] == [[0.0] * 2] * 2 + [[3.0] * 2] * 3 + [[6.0] * 2]
    assert [v for _, v in stored] == [[0.0] * 2] * 2 + [[-3.0] * 2] * 3 + [[-6.0] * 2]
    assert not store.mean[2:].any()  # sentence 1 never visited

    # sentence 0 is at 6 visits, sentence 1 at 0: their counts run independently
    both, lengths = _batch([0, 1], [2, 3])
    written = []
    for value in (7.0, 8.0, 9.0, 10.0):
        mean, logvar = torch.full((2, 3, 1), value), torch.full((2, 3, 1), -value)
        written.append(store.update(both, lengths, mean, logvar).tolist())
        if value == 7.0:
            store.update(*_batch([1], [3]), mean[1:], logvar[1:])
    assert store.visits.tolist() == [10, 5]
    assert written == [[False, False], [False, True], [True, False], [False, False]]
    assert store.mean.flatten().tolist() == [9.0] * 2 + [8.0] * 3


def test_store_takes_no_gradient():
    store = PriorStore([2, 3], dim=2)
    head = GaussianHead(4, 2)
    mean, logvar = head(torch.randn(2, 3, 4))
    assert mean.requires_grad
    store.update(*_batch([0, 1], [2, 3]), mean, logvar)
    prior_mean, prior_logvar = store.gather(*_batch([0, 1], [2, 3]), max_len=3)
    assert not store.mean.requires_grad and not store.logvar.requires_grad
    assert not prior_mean.requires_grad and not prior_logvar.requires_grad


def test_state_dict_round_trip_with_weights_only():
    store = PriorStore([2, 1, 3], dim=3, update_every=2)
    mean, logvar = _posterior([3, 1], 3)
    for _ in range(3):
        store.update(*_batch([2, 1], [3, 1]), mean, logvar)
    buffer = io.BytesIO()
    torch.save(store.state_dict(), buffer)
    buffer.seek(0)
    restored = PriorStore([2, 1, 3], dim=3, update_every=2)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for name, tensor in store.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    assert restored.mean[3:].any()


@pytest.mark.parametrize("lengths, dim", [([2, 1, 4], 3), ([2, 1, 3], 2), ([2, 1], 3)])
def test_load_state_dict_rejects_other_shapes(lengths, dim):
    state = PriorStore([2, 1, 3], dim=3).state_dict()
    with pytest.raises(ValueError):
        PriorStore(lengths, dim=dim).load_state_dict(state)


def test_gather_and_update_check_lengths_against_the_store():
    store = PriorStore([2, 3], dim=1)
    with pytest.raises(ValueError):
        store.gather(*_batch([0], [3]), max_len=3)
    with pytest.raises(ValueError):
        store.update(*_batch([1], [2]), *_posterior([2], 1))
    assert store.visits.tolist() == [0, 0]


def test_length_one_sentences_and_mixed_lengths():
    lengths = [1, 5, 1, 2, 4]
    store = PriorStore(lengths, dim=2)
    indices, batch_lengths = _batch([4, 0, 2, 1, 3], [4, 1, 1, 5, 2])
    mean, logvar = _posterior(batch_lengths.tolist(), 2, seed=3)
    store.update(indices, batch_lengths, mean, logvar)
    prior_mean, prior_logvar = store.gather(indices, batch_lengths, max_len=5)
    real = (torch.arange(5)[None, :] < batch_lengths[:, None])[..., None]
    torch.testing.assert_close(prior_mean, mean * real, **HALF)
    torch.testing.assert_close(prior_logvar, logvar * real, **HALF)

    # the two length-one sentences, alone and in reverse order, with extra padding
    alone_mean, _ = store.gather(*_batch([2, 0], [1, 1]), max_len=3)
    torch.testing.assert_close(alone_mean[:, 0], torch.stack([mean[2, 0], mean[1, 0]]), **HALF)
    assert not alone_mean[:, 1:].any()


def _updates(store, seed):
    """Visit random batches of ``store``'s sentences, each sentence once per batch; returns the
    priors gathered before every update and which sentences each update wrote."""
    generator = torch.Generator().manual_seed(seed)
    lengths = store.offsets.diff()
    seen = []
    for _ in range(12):
        indices = torch.randperm(len(lengths), generator=generator)[:3]
        mean, logvar = _posterior(lengths[indices].tolist(), store.dim, seed=int(indices.sum()))
        seen += [*store.gather(indices, lengths[indices], int(lengths[indices].max())),
                 store.update(indices, lengths[indices], mean, logvar)]
    return seen


def test_a_store_on_disk_gathers_and_updates_exactly_as_one_in_memory(tmp_path):
    lengths = [3, 1, 4, 2, 5, 2]
    memory = PriorStore(lengths, dim=3, update_every=2)
    disk = PriorStore(lengths, dim=3, update_every=2, path=tmp_path / "priors" / "labeled-y")
    assert disk.nbytes == memory.nbytes
    seen_in_memory, seen_on_disk = _updates(memory, seed=1), _updates(disk, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(seen_in_memory, seen_on_disk, strict=True))
    assert memory.mean.any() and torch.equal(disk.visits, memory.visits)
    for name in ("mean", "logvar"):  # the values live in the files
        on_file = np.fromfile(tmp_path / "priors" / f"labeled-y.{name}.float16", np.float16).reshape(-1, 3)
        assert torch.equal(torch.from_numpy(on_file), getattr(memory, name))


def test_a_store_on_disk_checkpoints_as_snapshots_and_keeps_only_the_last_saved(tmp_path):
    lengths = [3, 1, 4, 2]
    store = PriorStore(lengths, dim=2, update_every=2, path=tmp_path / PRIORS / "labeled-y")
    _updates(store, seed=2)
    at_3 = {name: tensor.clone() for name, tensor in store._tensors().items()}
    save_tensors(tmp_path / LAST, {"priors": store.state_dict(step=3)})
    store.remove_stale_snapshots()
    saved = load_tensors(tmp_path / LAST)["priors"]
    assert saved["mean"] == {"snapshot": "labeled-y.mean.step3.float16", "shape": [10, 2], "dtype": "float16",
                             "crc32": saved["mean"]["crc32"]}
    _updates(store, seed=3)
    store.state_dict(step=5)  # as if the run stopped before last.pt was replaced: it still reads step 3
    for restored in (PriorStore(lengths, 2, 2), PriorStore(lengths, 2, 2, path=tmp_path / "other" / "labeled-y")):
        restored.load_state_dict(read_training_checkpoint(tmp_path / LAST)["priors"])
        assert all(torch.equal(tensor, at_3[name]) for name, tensor in restored._tensors().items())

    (tmp_path / PRIORS / ".labeled-y.mean.step7.float16.x1y2").write_bytes(b"cut short")  # a killed write
    save_tensors(tmp_path / LAST, {"priors": store.state_dict(step=5)})
    store.remove_stale_snapshots()
    assert sorted(p.name for p in (tmp_path / PRIORS).iterdir()) == [
        "labeled-y.logvar.float16", "labeled-y.logvar.step5.float16", "labeled-y.mean.float16",
        "labeled-y.mean.step5.float16"]


def test_a_store_on_disk_reserves_its_space_and_names_its_file_when_it_cannot(tmp_path, monkeypatch):
    PriorStore([3000, 2000], dim=100, path=tmp_path / "labeled-z")
    assert os.stat(tmp_path / "labeled-z.mean.float16").st_blocks * 512 >= 5000 * 100 * 2  # allocated, not a hole

    def full_disk(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    with pytest.raises(VslError, match="labeled-z.mean.float16: cannot reserve the disk space of the priors "
                                       r"\(No space left on device\)"):
        PriorStore([3, 2], dim=4, path=tmp_path / "labeled-z")
