"""The variational sequential labelers: the pyro ELBO against its closed form, structure,
training behaviour."""

from __future__ import annotations

import pytest
import torch

from vsl.data.batching import BatchStream
from vsl.latent import KLAnnealing, PriorStore, gaussian_kl
from vsl.models import build_encoder
from vsl.optimization import make_optimizer
from vsl.prediction import evaluate
from vsl.training import fit
from vsl.objective import MixedBatch, MixedStream, VariationalObjective
from vsl.variational import VariationalTagger


def _tagger(collate, latent="hier", decoded_words=None, **kwargs):
    torch.manual_seed(0)
    vocabs = collate.vocabs
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=12, char_dim=6, char_hidden=6, hidden=16)
    return VariationalTagger(encoder, len(vocabs.tags), decoded_words or len(vocabs.words), latent,
                             y_dim=5, z_dim=7, decoder_hidden=11, **kwargs)


def _random_priors(model, batch):
    B, T = batch.words.shape
    return {name: (torch.randn(B, T, model.dims[name]), torch.randn(B, T, model.dims[name]) * 0.3)
            for name in model.names}


@pytest.mark.parametrize("latent", ["gauss", "flat", "hier"])
def test_pyro_loss_equals_closed_form(latent, twitter_slice, twitter_collator):
    model = _tagger(twitter_collator, latent, decoded_words=50)
    batch = twitter_collator(twitter_slice[0][:6], range(6))
    torch.manual_seed(1)
    posteriors = model.posteriors(model.encoder(batch), sample=True)
    priors = _random_priors(model, batch)
    alpha, beta = 0.7, 0.3
    loss = model.negative_elbo(batch, posteriors, priors, alpha, beta)

    values = {name: post.value for name, post in posteriors.items()}
    log_probs = torch.log_softmax(model.decoder.logits(model.decoder_input(values), model.encoder.embedding.words.weight), -1)
    targets = torch.where(batch.words < 50, batch.words, torch.ones_like(batch.words))
    nll = -log_probs.gather(-1, targets[..., None])[..., 0]
    kl = sum(gaussian_kl(posteriors[n].mean, posteriors[n].logvar, *priors[n]) for n in model.names)
    expected = alpha * ((nll + beta * kl) * batch.mask).sum()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-4)
    loss.backward()
    assert model.heads["z"].linear.weight.grad.abs().sum() > 0


def _frozen_tagger(collate, **kwargs):
    torch.manual_seed(0)
    vocabs = collate.vocabs
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=12, char_dim=6, char_hidden=6, hidden=16,
                            pretrained=torch.randn(len(vocabs.words), 12), freeze=True)
    return VariationalTagger(encoder, len(vocabs.tags), 40, "hier", y_dim=5, z_dim=7, decoder_hidden=11, **kwargs)


def test_tied_decoder_reads_the_frozen_input_embeddings_and_has_no_bias(twitter_slice, twitter_collator):
    model = _frozen_tagger(twitter_collator, decoder="tied")
    embeddings = model.encoder.embedding.words.weight
    assert model.decoder.net[-1].out_features == 12  # a vector in the embedding space, not logits
    assert not any(p is embeddings for p in model.decoder.parameters())  # stored once, with the encoder
    assert sum(p.numel() for p in model.decoder.parameters()) == 7 * 11 + 11 + 11 * 11 + 11 + 11 * 12 + 12  # z -> 11 -> 11 -> 12
    latent = torch.randn(9, 7)
    vector = model.decoder.net(latent)
    torch.testing.assert_close(model.decoder.logits(latent, embeddings), vector @ embeddings[:40].t())
    batch = twitter_collator(twitter_slice[0][:4], range(4))
    objective = _objective(model, twitter_slice[0], []).train()
    objective.parts_loss([("labeled", batch, 1.0)], beta=0.5).backward()
    assert embeddings.grad is None and model.decoder.net[-1].weight.grad.abs().sum() > 0


def test_free_decoder_has_its_own_biased_output_layer(twitter_collator):
    model = _frozen_tagger(twitter_collator)
    assert model.decoder.net[-1].out_features == 40 and model.decoder.net[-1].bias is not None
    latent = torch.randn(3, 7)
    torch.testing.assert_close(model.decoder.logits(latent), model.decoder.net(latent))


@pytest.mark.parametrize("decoder", ["free", "tied"])
def test_decoder_noise_only_in_training_and_only_when_set(decoder, twitter_collator):
    for noise, noisy in ((0.0, False), (1.0, True)):
        model = _frozen_tagger(twitter_collator, decoder=decoder, decoder_noise=noise)
        embeddings = model.encoder.embedding.words.weight
        latent, words = torch.randn(8, 7), torch.randint(0, 40, (8,))
        model.train()
        first, second = (model.decoder.nll(latent, words, embeddings) for _ in range(2))
        assert (not torch.equal(first, second)) == noisy
        model.eval()
        torch.testing.assert_close(model.decoder.nll(latent, words, embeddings),
                                   model.decoder.nll(latent, words, embeddings), rtol=0, atol=0)
    with pytest.raises(ValueError, match="noise"):
        _frozen_tagger(twitter_collator, decoder=decoder, decoder_noise=-1.0)


def test_reconstructed_vocabulary_is_the_configured_size(twitter_collator):
    for decoder in ("free", "tied"):
        model = _frozen_tagger(twitter_collator, decoder=decoder)
        words = torch.tensor([0, 5, 39, 40, len(twitter_collator.vocabs.words) - 1])
        assert model.decoded_targets(words).tolist() == [0, 5, 39, 1, 1]
        logits = model.decoder.logits(torch.randn(2, 7), model.encoder.embedding.words.weight)
        assert logits.shape == (2, 40)


def test_posterior_shapes_and_sample_versus_mean(twitter_slice, twitter_collator):
    model = _tagger(twitter_collator)
    batch = twitter_collator(twitter_slice[0][:4], range(4))
    h = model.encoder(batch)
    posteriors = model.posteriors(h, sample=False)
    B, T = batch.words.shape
    assert posteriors["y"].mean.shape == (B, T, 5) and posteriors["z"].logvar.shape == (B, T, 7)
    assert posteriors["y"].value is posteriors["y"].mean
    torch.manual_seed(0)
    sampled = model.posteriors(h, sample=True)
    assert not torch.allclose(sampled["y"].value, sampled["y"].mean)
    predicted = model.predict(batch)
    assert torch.all(predicted[~batch.mask] == -1) and torch.all(predicted[batch.mask] >= 0)


def test_hier_z_depends_on_y_and_flat_z_does_not(twitter_slice, twitter_collator):
    batch = twitter_collator(twitter_slice[0][:3], range(3))
    for latent, depends in (("hier", True), ("flat", False)):
        model = _tagger(twitter_collator, latent)
        h = model.encoder(batch).detach()
        torch.manual_seed(0)
        first = model.posteriors(h, sample=True)
        torch.manual_seed(1)
        second = model.posteriors(h, sample=True)
        assert not torch.allclose(first["y"].value, second["y"].value)
        assert torch.allclose(first["z"].mean, second["z"].mean) != depends


def _objective(model, labeled, unlabeled, update_every=1, **options):
    stores = lambda sentences: {n: PriorStore([len(s) for s in sentences], model.dims[n], update_every)  # noqa: E731
                                for n in model.names}
    return VariationalObjective(model, stores(labeled), stores(unlabeled), KLAnnealing("exp", 1e-2),
                                alpha=1.0, unlabeled_weight=0.5, **options)


def test_without_first_visit_kl_a_sentence_pays_kl_once_its_prior_is_written(twitter_slice, twitter_collator):
    train, dev = twitter_slice
    model = _tagger(twitter_collator)
    objective = _objective(model, train, dev, update_every=2, first_visit_kl=False)
    batch = twitter_collator(dev[:4], range(4), with_tags=False)
    unlabeled = [("unlabeled", batch, 1.0)]

    def loss(beta, first_visit_kl):
        objective.eval()
        objective.first_visit_kl = first_visit_kl
        return objective.parts_loss(unlabeled, beta)

    for visit in (1, 2):  # update_every=2: the prior is N(0, I) until the second visit writes it
        assert loss(0.8, False) == loss(torch.tensor(0.0), True) != loss(0.8, True)
        objective.train()
        objective.parts_loss(unlabeled, 0.8)
        objective.commit_step()
    assert loss(0.8, False) == loss(0.8, True) != loss(torch.tensor(0.0), True)


def test_unlabeled_batch_trains_the_generative_side_not_the_classifier(twitter_slice, twitter_collator):
    train, dev = twitter_slice
    unlabeled = [s for s in dev[:5]]
    model = _tagger(twitter_collator)
    objective = _objective(model, train, unlabeled).train()
    batch = twitter_collator(unlabeled, range(5), with_tags=False)
    objective.parts_loss([("unlabeled", batch, 1.0)], beta=0.5).backward()
    assert model.classifier.weight.grad is None
    assert model.decoder.net[0].weight.grad.abs().sum() > 0
    assert model.heads["y"].linear.weight.grad.abs().sum() > 0


def test_unlabeled_gradient_can_stop_at_the_encoder(twitter_slice, twitter_collator):
    train, dev = twitter_slice
    model = _frozen_tagger(twitter_collator)  # frozen vectors, as VSL trains: the tied decoder reads them
    objective = _objective(model, train, dev[:5], unlabeled_trains_encoder=False).train()
    unlabeled = ("unlabeled", twitter_collator(dev[:5], range(5), with_tags=False), 1.0)
    objective.parts_loss([unlabeled], beta=0.5).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())
    assert model.heads["y"].linear.weight.grad.abs().sum() > 0 and model.decoder.net[0].weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    labeled = ("labeled", twitter_collator(train[:4], range(4)), 1.0)
    objective.parts_loss([labeled, unlabeled], beta=0.5).backward()  # labeled rows still train it
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())


def test_unlabeled_gradient_can_leave_the_y_head_alone(twitter_slice, twitter_collator):
    train, dev = twitter_slice
    model = _frozen_tagger(twitter_collator)
    objective = _objective(model, train, dev[:5], unlabeled_trains_y=False).train()
    unlabeled = ("unlabeled", twitter_collator(dev[:5], range(5), with_tags=False), 1.0)
    objective.parts_loss([unlabeled], beta=0.5).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.heads["y"].parameters())
    assert model.heads["z"].linear.weight.grad.abs().sum() > 0 and model.decoder.net[0].weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())  # through the z head
    model.zero_grad(set_to_none=True)
    labeled = ("labeled", twitter_collator(train[:4], range(4)), 1.0)
    objective.parts_loss([labeled, unlabeled], beta=0.5).backward()  # labeled rows still train it
    assert model.heads["y"].linear.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("latent", ["gauss", "flat", "hier"])
def test_one_stacked_pass_gives_the_loss_of_the_parts_taken_alone(latent, twitter_slice, twitter_collator):
    """Labeled and unlabeled batches of different widths and character tables run as one stacked
    batch; its loss must be the weighted sum of the parts' own losses (posterior means, so no
    sampling noise), with non-trivial priors."""
    train, dev = twitter_slice
    model = _tagger(twitter_collator, latent)
    objective = _objective(model, train, dev[:8]).train()
    objective.parts_loss([("labeled", twitter_collator(train[:6], range(6)), 1.0),
                          ("unlabeled", twitter_collator(dev[:8], range(8), with_tags=False), 1.0)], beta=1.0)
    objective.commit_step()  # priors of these sentences are now their posteriors, not N(0, I)
    objective.eval()
    labeled = twitter_collator(train[2:6], range(2, 6))
    unlabeled = twitter_collator(dev[:8], range(8), with_tags=False)
    assert labeled.words.shape[1] != unlabeled.words.shape[1]
    together = objective.parts_loss([("labeled", labeled, 1.0), ("unlabeled", unlabeled, 0.3)], beta=0.6)
    apart = (objective.parts_loss([("labeled", labeled, 1.0)], beta=0.6)
             + objective.parts_loss([("unlabeled", unlabeled, 0.3)], beta=0.6))
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("part", ["labeled", "unlabeled"])
def test_sentence_averaging_weighs_each_sentence_alike(part, twitter_slice, twitter_collator):
    """loss_average "sentence": a batch's loss is the mean of its sentences' losses taken alone
    (each averaged over its own tokens), cross-entropy included; "token" weighs the sentences
    by their length, so the two differ on sentences of unequal length."""
    train, _ = twitter_slice
    sentences = train[:5]
    assert len({len(s) for s in sentences}) > 1
    with_tags = part == "labeled"
    model = _tagger(twitter_collator)
    objective = _objective(model, sentences, sentences, loss_average="sentence").train()
    objective.parts_loss([(part, twitter_collator(sentences, range(5), with_tags=with_tags), 1.0)], beta=1.0)
    objective.commit_step()  # non-trivial priors for these sentences
    objective.eval()  # posterior means: no sampling noise
    together = objective.parts_loss([(part, twitter_collator(sentences, range(5), with_tags=with_tags), 0.7)], 0.6)
    alone = [objective.parts_loss([(part, twitter_collator([s], [i], with_tags=with_tags), 0.7)], 0.6)
             for i, s in enumerate(sentences)]
    torch.testing.assert_close(together, torch.stack(alone).mean(), rtol=1e-5, atol=1e-5)
    objective.loss_average = "token"
    by_tokens = objective.parts_loss([(part, twitter_collator(sentences, range(5), with_tags=with_tags), 0.7)], 0.6)
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.float32)
    torch.testing.assert_close(by_tokens, (torch.stack(alone) * lengths).sum() / lengths.sum(), rtol=1e-5, atol=1e-5)
    assert not torch.isclose(by_tokens, together)
    with pytest.raises(ValueError, match="loss_average 'batch'"):
        _objective(model, sentences, sentences, loss_average="batch")


def test_training_writes_priors_and_advances_annealing(twitter_slice, twitter_collator):
    train, dev = twitter_slice
    model = _tagger(twitter_collator)
    objective = _objective(model, train, dev, update_every=2).train()
    labeled = twitter_collator(train[:4], range(4))
    unlabeled = twitter_collator(dev[:4], range(4), with_tags=False)
    store = objective.priors["labeled"]["y"]
    before = store.mean.clone()
    objective.loss(MixedBatch(labeled, unlabeled))
    objective.commit_step()
    assert torch.equal(store.mean, before)  # first visit: update_every=2 writes on the second
    objective.loss(MixedBatch(labeled, unlabeled))
    assert torch.equal(store.mean, before) and int(objective.steps) == 1  # not before the commit
    objective.commit_step()
    written = store.offsets[4]
    assert not torch.equal(store.mean[:written], before[:written])
    assert torch.equal(store.mean[written:], before[written:])
    assert int(objective.steps) == 2
    assert objective.priors["unlabeled"]["z"].visits[:4].tolist() == [2, 2, 2, 2]


def _pairs(labeled, unlabeled, collate, size):
    return MixedStream(BatchStream(labeled, collate, size, seed=0),
                       BatchStream(unlabeled, collate, size, seed=1, with_tags=False))


@pytest.mark.parametrize("latent, precision", [("gauss", "float32"), ("hier", "float32"), ("hier", "bfloat16")])
def test_tiny_vsl_overfits_a_tiny_labeled_set(latent, precision, twitter_slice, twitter_collator):
    train, dev = twitter_slice
    train = train[:12]
    model = _tagger(twitter_collator, latent, decoder_precision=precision)
    objective = _objective(model, train, dev)
    result = fit(objective, _pairs(train, dev, twitter_collator, 6),
                 lambda: evaluate(objective, train, twitter_collator, "pos"), "accuracy",
                 max_steps=500, eval_every=50, lr=1e-2, grad_clip=10.0, progress=False)
    assert result.best_dev["accuracy"] > 0.95


def test_deterministic_variant_has_no_kl_and_does_not_sample(twitter_slice, twitter_collator):
    model = _tagger(twitter_collator, variational=False)
    objective = _objective(model, twitter_slice[0], twitter_slice[1]).train()
    batch = twitter_collator(twitter_slice[0][:3], range(3))
    torch.manual_seed(0)
    first = objective.loss(MixedBatch(batch))
    torch.manual_seed(1)
    second = objective.loss(MixedBatch(batch))
    torch.testing.assert_close(first, second)
    assert int(objective.priors["labeled"]["y"].visits.sum()) == 0


def test_make_optimizer_skips_frozen_embeddings(twitter_collator):
    model = _tagger(twitter_collator)
    model.encoder.embedding.words.weight.requires_grad_(False)
    optimizer = make_optimizer(model, 1e-3)
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model.encoder.embedding.words.weight) not in params


def test_y_dropout_reaches_the_y_head_only_and_only_in_training(twitter_slice, twitter_collator):
    model = _frozen_tagger(twitter_collator, y_dropout=0.5)
    batch = twitter_collator(twitter_slice[0][:4], range(4))
    seen = []
    model.heads["z"].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    h = model.encoder(batch).detach()
    model.train()
    first, second = (model.posteriors(h, sample=False) for _ in range(2))
    assert not torch.equal(first["y"].mean, second["y"].mean)  # a fresh dropout mask per pass
    assert all(torch.equal(inputs[..., : h.shape[-1]], h) for inputs in seen)  # z reads every state
    model.eval()
    torch.testing.assert_close(model.posteriors(h, sample=False)["y"].mean, model.heads["y"](h)[0])
    plain = _frozen_tagger(twitter_collator).train()
    assert torch.equal(*(plain.posteriors(h, sample=False)["y"].mean for _ in range(2)))
    with pytest.raises(ValueError, match="no y head"):
        _tagger(twitter_collator, "gauss", y_dropout=0.5)
