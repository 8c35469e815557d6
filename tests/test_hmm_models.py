"""The HMM family (hmm.models, hmm.train): Baum-Welch and direct marginal likelihood recover a
known synthetic HMM; the neural parts have the shapes, normalisation, causality and gradients
they promise; the clamped (semi-supervised) likelihood matches a hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from hmm.inference import log_partition
from hmm.models import CategoricalHMM, NeuralHMM, character_table, corpus_log_likelihood, joint_log_likelihood
from hmm.train import GradientNoise, TrainingStopped, cap_length, tag_corpus, train_neural_hmm
from vsl.checkpoint import LAST, RunMetadata, save_metadata, save_tensors
from vsl.run_folder import training_progress
from vsl.data.batching import Batch, Collator, iterate_batches
from vsl.data.readers import Sentence
from vsl.encoders import PrefixLSTM
from vsl.data.vocab import Vocabularies, Vocabulary
from vsl.errors import VslError
from vsl.metrics import many_to_one

K, WORDS = 3, 6  # states; real words, ids 2..7 after <pad> and <unk>
TRUE_INIT = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
TRUE_TRANS = torch.tensor([[0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.7, 0.2, 0.1]], dtype=torch.float64)


def true_emissions() -> torch.Tensor:
    """(K, V = 8): state k emits its own words 2 + 2k, 3 + 2k with 0.47 each, the others 0.015."""
    emit = torch.full((K, WORDS + 2), 0.015, dtype=torch.float64)
    emit[:, :2] = 0.0
    for k in range(K):
        emit[k, 2 + 2 * k: 4 + 2 * k] = 0.47
    return emit


def make_batch(sentences: list[list[int]]) -> Batch:
    """A batch from word ids alone (no characters), for models that read only words."""
    lengths = torch.tensor([len(s) for s in sentences])
    words = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.long)
    for row, ids in enumerate(sentences):
        words[row, : len(ids)] = torch.tensor(ids)
    mask = torch.arange(words.shape[1]) < lengths[:, None]
    return Batch(words, mask, lengths, torch.zeros_like(words), torch.ones(1, 1, dtype=torch.long),
                 torch.ones(1, dtype=torch.long), torch.arange(len(sentences)))


@pytest.fixture(scope="module")
def synthetic():
    """300 sentences of 6-10 tokens sampled from the true HMM with a seeded generator, as
    Sentences (words w0..w5, tags = true states) with their collator and batches of 50."""
    rng = np.random.default_rng(0)
    emit = true_emissions()
    sentences = []
    for _ in range(300):
        states = [rng.choice(K, p=TRUE_INIT.numpy())]
        for _ in range(rng.integers(6, 11) - 1):
            states.append(rng.choice(K, p=TRUE_TRANS[states[-1]].numpy()))
        words = [rng.choice(WORDS + 2, p=emit[z].numpy()) - 2 for z in states]
        sentences.append(Sentence(tuple(f"w{w}" for w in words), tuple(str(z) for z in states)))
    vocabs = Vocabularies(Vocabulary([f"w{i}" for i in range(WORDS)]), Vocabulary("w012345"),
                          Vocabulary([str(k) for k in range(K)], specials=()))
    collate = Collator(vocabs)
    batches = list(iterate_batches(sentences, collate, 50))
    tokens = sum(b.n_tokens for b in batches)
    true_ll = sum(float(log_partition(TRUE_INIT.log(), TRUE_TRANS.log(), emit.log().t()[b.words],
                                      b.lengths).sum()) for b in batches) / tokens
    return sentences, collate, batches, true_ll


@pytest.fixture(scope="module")
def em_fit(synthetic):
    _, _, batches, _ = synthetic
    hmm = CategoricalHMM(K, WORDS + 2)
    return hmm, hmm.fit(batches, iterations=100, restarts=3, seed=0)


def match_states(learned_emit: torch.Tensor) -> np.ndarray:
    """For each true state, the learned state whose emissions overlap most (Hungarian)."""
    similarity = (true_emissions()[:, None, :] * learned_emit[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(similarity.numpy(), maximize=True)
    return cols[np.argsort(rows)]


def gold_and_predicted(model, sentences, collate):
    gold = [[int(t) for t in s.tags] for s in sentences]
    return gold, tag_corpus(model, sentences, collate, batch_size=64)


# ----------------------------------------------------------------------------- EM


def test_em_recovers_transitions_and_emissions_up_to_a_permutation(em_fit):
    hmm, _ = em_fit
    order = torch.as_tensor(match_states(hmm.log_emit.exp()))
    emit, trans, init = hmm.log_emit.exp()[order], hmm.log_trans.exp()[order][:, order], hmm.log_init.exp()[order]
    assert (emit - true_emissions()).abs().max() < 0.1
    assert (trans - TRUE_TRANS).abs().max() < 0.1
    assert (init - TRUE_INIT).abs().max() < 0.15  # only 300 draws of z_0
    for table in (emit, trans):
        assert torch.allclose(table.sum(-1), torch.ones(K, dtype=torch.float64))


def test_em_log_likelihood_never_decreases_and_reaches_the_true_models(em_fit, synthetic):
    hmm, fit = em_fit
    _, _, batches, true_ll = synthetic
    steps = np.diff(fit.history)
    assert len(fit.history) == 101 and steps.min() > -1e-9, steps.min()
    assert fit.history[-1] > fit.history[0] + 0.3
    assert fit.history[-1] >= true_ll - 0.01  # the MLE fits its sample at least as well
    assert fit.history[-1] == pytest.approx(corpus_log_likelihood(hmm, batches), abs=1e-12)
    assert len(fit.finals) == 3 and fit.finals[fit.restart] == max(fit.finals)

    fresh = CategoricalHMM(K, WORDS + 2, seed=7)
    history = fresh.fit_em(batches, iterations=15)
    assert np.diff(history).min() > -1e-9


def test_em_restarts_are_seeded(synthetic):
    _, _, batches, _ = synthetic
    first, second = CategoricalHMM(K, WORDS + 2), CategoricalHMM(K, WORDS + 2)
    assert first.fit(batches, 3, restarts=2, seed=4).history == second.fit(batches, 3, restarts=2, seed=4).history
    assert not torch.equal(CategoricalHMM(K, 8, seed=1).log_emit, CategoricalHMM(K, 8, seed=2).log_emit)


def test_em_viterbi_tags_match_the_true_states(em_fit, synthetic):
    sentences, collate, _, _ = synthetic
    gold, predicted = gold_and_predicted(em_fit[0], sentences, collate)
    assert [len(p) for p in predicted] == [len(s) for s in sentences]
    assert many_to_one(gold, predicted) > 0.9


# ----------------------------------------------------------------------------- neural HMM


@pytest.mark.parametrize("hidden_layers", [0, 1])
def test_neural_hmm_by_direct_marginal_likelihood_fits_the_synthetic_hmm(synthetic, hidden_layers):
    sentences, collate, batches, true_ll = synthetic
    torch.manual_seed(0)
    model = NeuralHMM(K, WORDS + 2, hidden=32, hidden_layers=hidden_layers)
    history = train_neural_hmm(model, lambda epoch: batches, epochs=20, lr=0.005, progress=False, log=None)
    assert len(history) == 20 and history[-1] > history[0]
    model.eval()
    with torch.no_grad():
        ll = sum(float(model.log_likelihood(b).sum()) for b in batches) / sum(b.n_tokens for b in batches)
    assert abs(ll - true_ll) < 0.05, (ll, true_ll)
    gold, predicted = gold_and_predicted(model, sentences, collate)
    assert many_to_one(gold, predicted) > 0.9


def test_lstm_transitions_are_per_position_normalised_and_causal():
    torch.manual_seed(0)
    model = NeuralHMM(4, 12, hidden=8, transition="lstm").eval()
    words = torch.randint(2, 12, (2, 6))
    log_trans = model.log_transitions(words)
    assert log_trans.shape == (2, 5, 4, 4)
    assert torch.allclose(log_trans.logsumexp(-1), torch.zeros(2, 5, 4), atol=1e-6)
    for t in range(5):  # the matrix for z_t -> z_{t+1} has read words 0..t exactly
        later = words.clone()
        later[:, t + 1:] = (later[:, t + 1:] + 3) % 10 + 2
        assert torch.equal(model.log_transitions(later)[:, : t + 1], log_trans[:, : t + 1])
        current = words.clone()
        current[:, t] = (current[:, t] + 3) % 10 + 2
        assert not torch.allclose(model.log_transitions(current)[:, t], log_trans[:, t])
    assert model.log_transitions(words[:, :1]).shape == (2, 0, 4, 4)


def test_lstm_log_likelihood_is_the_sum_over_all_state_paths():
    torch.manual_seed(1)
    model = NeuralHMM(2, 7, hidden=6, transition="lstm").eval().double()
    batch = make_batch([[2, 5, 3, 6], [4, 2]])
    with torch.no_grad():
        log_init, log_trans, log_emit, lengths = model.scores(batch)
        for b, n in enumerate(batch.lengths.tolist()):
            paths = torch.tensor(list(itertools.product(range(2), repeat=n)))
            padded = torch.nn.functional.pad(paths, (0, 4 - n), value=-1)
            joints = joint_log_likelihood(log_init, log_trans[b:b + 1].expand(len(paths), -1, -1, -1),
                                          log_emit[b:b + 1].expand(len(paths), -1, -1),
                                          lengths[b:b + 1].expand(len(paths)), padded)
            assert float(joints.logsumexp(0)) == pytest.approx(float(model.log_likelihood(batch)[b]), abs=1e-10)


def test_dropout_makes_lstm_training_stochastic_but_tagging_deterministic():
    torch.manual_seed(0)
    model = NeuralHMM(3, 9, hidden=8, transition="lstm", dropout=0.5).train()
    batch = make_batch([[2, 3, 4, 5, 6], [7, 8, 2]])
    assert not torch.equal(model.log_likelihood(batch), model.log_likelihood(batch))
    assert torch.equal(model.tag(batch), model.tag(batch)) and model.training


def test_top_dropout_acts_on_the_lstm_output_in_training_only():
    torch.manual_seed(0)
    inputs = torch.randn(3, 6, 8)
    plain = PrefixLSTM(8, 10, layers=1, dropout=0.5).train()  # one layer: nn.LSTM drops nothing
    assert torch.equal(plain(inputs), plain(inputs))
    top = PrefixLSTM(8, 10, layers=1, dropout=0.5, dropout_top=True)
    top.load_state_dict(plain.state_dict())
    dropped = top.train()(inputs)
    assert not torch.equal(dropped, top(inputs)) and (dropped[:, 1:] == 0).float().mean() > 0.3
    assert torch.equal(dropped[:, 0], top.start.expand(3, -1))  # the start state is not an LSTM output
    assert torch.equal(top.eval()(inputs), plain.eval()(inputs))


def test_paper_lstm_initialization_statistics():
    torch.manual_seed(0)
    lstm = PrefixLSTM(64, 256, layers=3, init="paper").rnn
    for layer, fan in ((0, 64 + 256), (1, 512), (2, 512)):
        for kind in ("ih", "hh"):
            weight = getattr(lstm, f"weight_{kind}_l{layer}")
            assert abs(float(weight.mean())) < 3e-3 and float(weight.std()) == pytest.approx(fan ** -0.5, rel=0.02)
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        assert torch.equal(bias, torch.cat([torch.zeros(256), torch.ones(256), torch.zeros(512)]))
    default = PrefixLSTM(64, 256, layers=1, init="torch").rnn
    assert float(default.weight_hh_l0.abs().max()) <= 256 ** -0.5 and float(default.bias_ih_l0.abs().max()) > 0
    uniform = PrefixLSTM(64, 256, layers=3, init="uniform").rnn  # Tran et al.'s Table 3 ablation
    values = torch.cat([p.flatten() for p in uniform.parameters()])
    assert float(values.abs().max()) <= 1e-4 and float(values.std()) == pytest.approx(1e-4 / 3 ** 0.5, rel=0.02)


def test_a_batch_stops_updating_when_its_likelihood_got_worse():
    """A scripted per-token log-likelihood per evaluation: -5.0, -4.0, -4.5, ... With
    stop_when_worse the third evaluation (worse than the second) ends the batch after two
    updates; without it all six evaluations and updates run (every change is far above the
    tolerance)."""
    model = NeuralHMM(2, 5, hidden=4)
    batch = make_batch([[2, 3, 4]])
    for stop, evaluations in ((True, 3), (False, 6)):
        script = iter([-5.0, -4.0, -4.5, -3.0, -2.0, -1.5, -1.0])
        model.log_likelihood = lambda b, tags=None, script=script: (
            model.word_bias.sum() * 0 + next(script) * batch.n_tokens).reshape(1)
        history = train_neural_hmm(model, lambda epoch: [batch], epochs=1, lr=0.01, stop_when_worse=stop,
                                   progress=False, log=None)
        assert len(history) == 1
        assert 7 - len(list(script)) == evaluations


# ----------------------------------------------------------------------------- conv emission


def test_character_table_marks_and_truncates_words():
    chars, ids, lengths = character_table(["<pad>", "<unk>", "a", "abcdefghijklmnopqrst"], max_chars=15)
    assert ids.shape == (4, 17) and lengths.tolist() == [3, 3, 3, 17]
    assert chars.decode(ids[3, :17].tolist()) == ["<w>", *"abcdefghijklmno", "</w>"]
    assert chars.decode(ids[2, :3].tolist()) == ["<w>", "a", "</w>"]


def test_conv_emission_table_is_normalised_and_trains_the_char_cnn():
    torch.manual_seed(0)
    words = ["<pad>", "<unk>", "the", "cat", "sat", "on", "a", "mat", "quickly"]
    model = NeuralHMM(3, len(words), hidden=8, emission="conv", words=words)
    table = model.log_emission_table()
    assert table.shape == (3, len(words))
    assert torch.allclose(table.logsumexp(-1), torch.zeros(3), atol=1e-5)
    model.log_likelihood(make_batch([[2, 3, 4], [5, 6, 7, 8]])).sum().backward()
    cnn = model.char_cnn
    for parameter in (cnn.embed.weight, cnn.convs[0].weight, cnn.convs[6].weight, cnn.project.weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert not hasattr(model, "word_embedding")
    with pytest.raises(VslError, match="conv emission"):
        NeuralHMM(3, 5, emission="conv")


# ----------------------------------------------------------------------------- clamped states


def test_joint_log_likelihood_matches_a_hand_computation():
    init = torch.tensor([0.6, 0.4]).log()
    trans = torch.tensor([[0.7, 0.3], [0.2, 0.8]]).log()
    table = torch.tensor([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]]).log()  # p(w | k), words 0..2
    words = torch.tensor([[0, 2, 1], [1, 0, 0]])
    states = torch.tensor([[0, 1, 1], [1, -1, -1]])
    lengths = torch.tensor([3, 1])
    joint = joint_log_likelihood(init, trans, table.t()[words], lengths, states)
    by_hand = [0.6 * 0.5 * 0.3 * 0.6 * 0.8 * 0.3, 0.4 * 0.3]
    assert torch.allclose(joint, torch.tensor(by_hand).log(), atol=1e-6)
    per_position = trans.expand(2, 2, 2, 2).clone()
    per_position[0, 1] = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
    joint = joint_log_likelihood(init, per_position, table.t()[words], lengths, states)
    assert joint[0].exp().item() == pytest.approx(0.6 * 0.5 * 0.3 * 0.6 * 0.1 * 0.3, rel=1e-5)


def test_semi_supervised_log_likelihood_clamps_labeled_sentences():
    torch.manual_seed(0)
    model = NeuralHMM(2, 5, hidden=4)
    batch = make_batch([[2, 4, 3], [3, 2]])
    tags = torch.tensor([[1, 0, 0], [-1, -1, 0]])  # first labeled, second not (padding ignored)
    mixed = model.log_likelihood(batch, tags)
    with torch.no_grad():
        pi, a, e = model.log_initial(), model.log_transitions(batch.words), model.log_emission_table()
    by_hand = pi[1] + e[1, 2] + a[1, 0] + e[0, 4] + a[0, 0] + e[0, 3]
    assert mixed[0].item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert mixed[1].item() == pytest.approx(model.log_likelihood(batch)[1].item(), abs=1e-6)
    assert mixed[0] < model.log_likelihood(batch)[0]
    labeled = model.log_likelihood(batch, torch.tensor([[1, 0, 0], [0, 1, -1]]))  # every sentence labeled
    assert labeled[0].item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert labeled[1].item() == pytest.approx((pi[0] + e[0, 3] + a[0, 1] + e[1, 2]).item(), abs=1e-5)
    mixed.sum().backward()
    assert model.tag_embedding.grad.abs().sum() > 0
    with pytest.raises(VslError, match="below the 2 states"):
        model.log_likelihood(batch, torch.tensor([[1, 0, 5], [-1, -1, 0]]))


# ----------------------------------------------------------------------------- training helpers


@pytest.mark.parametrize("tricks", [{}, {"gradient_noise": 0.01, "loss_scale": "state", "noise_seed": 4}])
def test_a_stop_request_saves_the_state_and_the_resumed_run_ends_as_one_never_stopped(synthetic, tricks, tmp_path):
    """Stopped before the 4th batch of epoch 2 (of 6 per epoch), the saved state has 3 batches
    done, and a run resumed from it ends with the weights and history of an unstopped run (with
    gradient noise too: its stream and update count continue). Saved as a run's last.pt, each
    state reads back as how far training has come."""
    batches = synthetic[2]

    def train(should_stop=None, resume=None, saved=None):
        torch.manual_seed(0)
        model = NeuralHMM(K, WORDS + 2, hidden=8)
        history = train_neural_hmm(model, lambda epoch: batches, epochs=3, lr=0.01, progress=False, log=None,
                                   checkpoint_every=100, save_checkpoint=None if saved is None else saved.append,
                                   resume=resume, should_stop=should_stop, **tricks)
        return model, history

    calls = iter(range(100))
    saved = []
    with pytest.raises(TrainingStopped, match="epoch 2 of 3 after batch 3") as stopped:
        train(should_stop=lambda: next(calls) == len(batches) + 3, saved=saved)
    assert stopped.value.saved and len(saved) == 1
    assert saved[0]["trainer"]["epoch"] == 1 and saved[0]["trainer"]["batch"] == 3
    finished = []
    never_stopped, history = train(saved=finished)
    resumed, resumed_history = train(resume=saved[0])
    assert resumed_history == history
    save_metadata(tmp_path, RunMetadata("hmm", {"epochs": 3}, {}, "whitespace"))
    save_tensors(tmp_path / LAST, saved[0])
    assert training_progress(tmp_path) == \
        f"in epoch 2 of 3 after minibatch 3 (log-likelihood per token of the epochs done: {history[0]:.4f})"
    save_tensors(tmp_path / LAST, finished[-1])
    assert training_progress(tmp_path) == "all 3 epochs trained; tagging and scoring left"
    for name, value in never_stopped.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    with pytest.raises(TrainingStopped) as unsaved:  # nowhere to save: said so
        train(should_stop=lambda: True)
    assert not unsaved.value.saved


def test_gradient_noise_has_the_annealed_size_and_its_seed_fixes_it():
    """Noise of standard deviation eta / (1 + t) ** decay on every gradient entry; the same seed
    draws the same noise."""
    def noised(step: int, seed: int) -> torch.Tensor:
        parameter = torch.nn.Parameter(torch.zeros(200_000))
        parameter.grad = torch.full_like(parameter, 2.0)
        GradientNoise([parameter], eta=0.3, decay=0.55, seed=seed, device="cpu").add(step)
        return parameter.grad - 2.0

    for step in (0, 9, 99):
        assert noised(step, 0).std().item() == pytest.approx(0.3 / (1 + step) ** 0.55, rel=0.01)
        assert abs(noised(step, 0).mean().item()) < 0.01
    assert torch.equal(noised(5, 1), noised(5, 1)) and not torch.equal(noised(5, 1), noised(5, 2))


def test_the_state_loss_scale_is_the_summed_log_likelihood_over_the_states(synthetic, monkeypatch):
    """loss_scale "state" steps on -sum log p(x) / K (the authors' code), "token" on the mean per
    token; the tolerance test reads the per-token figure either way."""
    import hmm.train

    batch = synthetic[2][0]
    stepped = {}
    for scale in ("token", "state"):
        def capture(model, optimizer, loss, *args, scale=scale, **kwargs):
            stepped[scale] = loss.item()

        monkeypatch.setattr(hmm.train, "apply_update", capture)
        torch.manual_seed(0)
        model = NeuralHMM(K, WORDS + 2, hidden=8)
        train_neural_hmm(model, lambda epoch: [batch], epochs=1, max_updates_per_batch=1, loss_scale=scale,
                         progress=False, log=None)
    assert stepped["state"] == pytest.approx(stepped["token"] * batch.n_tokens / K, rel=1e-6)
    with pytest.raises(VslError, match="loss_scale"):
        train_neural_hmm(model, lambda epoch: [batch], epochs=1, loss_scale="sentence", progress=False, log=None)


def test_training_stops_early_on_a_converged_batch_and_caps_lengths():
    torch.manual_seed(0)
    model = NeuralHMM(2, 5, hidden=4)
    batch = make_batch([[2, 3, 4]])
    calls = []
    original = model.log_likelihood

    def counting(b, tags=None):
        calls.append(1)
        return original(b, tags)

    model.log_likelihood = counting
    train_neural_hmm(model, lambda epoch: [batch], epochs=1, lr=0.0, progress=False, log=None)
    assert len(calls) == 2  # lr 0: the second evaluation shows no change, so no further update
    train_neural_hmm(model, lambda epoch: [batch], epochs=1, lr=0.05, tolerance=0.0, progress=False, log=None)
    assert len(calls) == 2 + 6

    sentences = [Sentence(("a",) * n) for n in (3, 41, 40, 60)]
    capped = cap_length(sentences, 40)
    assert (capped.kept, capped.dropped) == (2, 2) and [len(s) for s in capped.sentences] == [3, 40]
    assert cap_length(sentences, None).kept == 4
    with pytest.raises(VslError, match="at most 2 tokens"):
        cap_length(sentences, 2)
    assert math.isfinite(model.log_likelihood(batch).item())


def test_hidden_layers_deepen_the_tag_and_query_networks():
    shallow = NeuralHMM(3, 9, hidden=8)
    deep = NeuralHMM(3, 9, hidden=8, hidden_layers=1)
    extra = sum(p.numel() for p in deep.parameters()) - sum(p.numel() for p in shallow.parameters())
    assert extra == 2 * (8 * 8 + 8)  # one Linear(8, 8) for v_k, one for q
    assert shallow.state_dict().keys() <= deep.state_dict().keys()  # old checkpoints keep their keys
    assert torch.allclose(deep.log_emission_table().logsumexp(-1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(deep.log_transitions(torch.zeros(1, 2, dtype=torch.long)).logsumexp(-1),
                          torch.zeros(3), atol=1e-5)
    deep.log_likelihood(make_batch([[2, 3, 4], [5, 6, 7, 8]])).sum().backward()
    assert deep.tag_layers[0].weight.grad.abs().sum() > 0 and deep.query_layers[0].weight.grad.abs().sum() > 0
    with pytest.raises(VslError, match="hidden_layers"):
        NeuralHMM(3, 9, hidden_layers=-1)
