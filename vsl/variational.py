"""The variational sequential labelers of Chen, Tang, Livescu & Gimpel (EMNLP 2018).

Three latent structures on the shared encoder's BiGRU states h_t (sec. 3):

* ``gauss`` (VSL-G): one latent z_t ~ q(z|h_t); x_t ~ p(x|z_t); the classifier reads z_t.
* ``flat`` (VSL-GG-Flat): y_t ~ q(y|h_t) and z_t ~ q(z|h_t) independently; x_t ~ p(x|y_t, z_t).
* ``hier`` (VSL-GG-Hier): y_t ~ q(y|h_t), then z_t ~ q(z|y_t, h_t) from [h_t; y_t];
  x_t ~ p(x|z_t), so z carries y's information to the decoder.

Loss per batch (eq. 9 with the authors' per-token averaging)::

    sum_t CE(l_t | y_t) + alpha * (-log p(x_t | .) + beta * KL(q || prior_t))

The ELBO part is a pyro model/guide pair evaluated by ``TraceMeanField_ELBO.
differentiable_loss`` (closed-form KLs): plates over sentences and positions, padding masked,
``poutine.scale`` carrying alpha and the annealed beta. The cross-entropy is added in torch on
the same posterior sample, so one optimizer step takes both. Priors are per-token and come
from :class:`~vsl.latent.PriorStore` (iterative prior updates, eqs. 10-11); the objective that
weighs labeled and unlabeled batches and keeps those stores is :mod:`vsl.objective`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch import nn

from vsl.data.batching import Batch
from vsl.encoders import SentenceEncoder
from vsl.latent import GaussianHead, reparameterize
from vsl.linear_softmax import PRECISIONS, linear_cross_entropy

LATENT_STRUCTURES = ("gauss", "flat", "hier")
DECODERS = ("free", "tied")


@dataclass
class Posterior:
    """One latent variable's posterior at every token: mean, log-variance, and the value used
    downstream (a reparameterized sample in training, the mean otherwise)."""

    mean: torch.Tensor
    logvar: torch.Tensor
    value: torch.Tensor


class Decoder(nn.Module):
    """p(x_t | .): two ReLU hidden layers, then a softmax over the decoded vocabulary
    (sec. 3; the authors' Linear-ReLU-Linear-ReLU-Linear).

    ``tied_dim=None`` gives the free decoder: its last layer maps to the ``n_words`` logits
    with its own weights and bias. ``tied_dim=d`` gives the authors' code's decoder: the last
    layer maps to a d-dimensional vector whose dot products with the (frozen) input word
    embeddings are the logits, with no bias; the embedding matrix is passed to :meth:`logits`
    and :meth:`nll`, so it is stored once, with the encoder. In training, Gaussian noise of
    standard deviation ``noise`` is added to the vector that enters the vocabulary product
    (the tied vector, or the free decoder's last hidden layer), as the authors' code adds
    unit-variance noise to its decoder vector.
    """

    def __init__(self, in_dim: int, hidden: int, n_words: int, precision: str = "float32",
                 tied_dim: int | None = None, noise: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_words if tied_dim is None else tied_dim))
        if precision not in PRECISIONS:
            raise ValueError(f"decoder precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if noise < 0:
            raise ValueError(f"decoder noise must be >= 0; got {noise}")
        self.precision = precision  # of the vocabulary matmuls (see vsl.linear_softmax)
        self.n_words, self.tied, self.noise = n_words, tied_dim is not None, noise

    def _product_input(self, latent: torch.Tensor):
        """The vector that enters the vocabulary product: the tied decoder's output, or the free
        decoder's last hidden layer; noised in training when ``noise`` is set."""
        layers = list(self.net) if self.tied else list(self.net)[:-1]
        for layer in layers:
            latent = layer(latent)
        if self.training and self.noise > 0:
            latent = latent + self.noise * torch.randn_like(latent)
        return latent

    def _output(self, tied: torch.Tensor | None):
        """The vocabulary product's weight and bias: the free decoder's last layer, or the first
        ``n_words`` rows of the embedding matrix ``tied`` and no bias."""
        if not self.tied:
            return self.net[-1].weight, self.net[-1].bias
        if tied is None:
            raise ValueError("a tied decoder needs the word embedding matrix")
        return tied[: self.n_words], None

    def logits(self, latent: torch.Tensor, tied: torch.Tensor | None = None) -> torch.Tensor:
        """Word logits (N, n_words) for latents (N, in_dim)."""
        weight, bias = self._output(tied)
        return nn.functional.linear(self._product_input(latent), weight, bias)

    def nll(self, latent: torch.Tensor, words: torch.Tensor, tied: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x = words | latent), (N,), by the fused linear softmax cross-entropy."""
        weight, bias = self._output(tied)
        return linear_cross_entropy(self._product_input(latent), weight, bias, words, self.precision)


class VariationalTagger(nn.Module):
    """VSL-G, VSL-GG-Flat or VSL-GG-Hier.

    ``decoded_words`` is the size of the reconstructed vocabulary: word ids at or above it
    (the vocabulary is frequency-ordered) are reconstructed as UNK, which keeps the softmax
    affordable on large raw-text vocabularies. ``classifier_on="z"`` puts the classifier on z
    (the paper's Table 3 ablation for Hier). ``variational=False`` gives the deterministic
    counterpart of Table 4: no sampling and no KL term. ``decoder_precision`` ("float32" or
    "bfloat16") is the arithmetic of the decoder's vocabulary matmuls. ``decoder`` "free" or
    "tied" and ``decoder_noise`` choose the output layer and its training noise (:class:`Decoder`).
    ``y_dropout`` drops encoder states on their way into q(y|h) only, in training (beyond the
    paper): it regularizes the classifier's path as the baseline's dropout does, while the z head,
    and so the reconstruction of x_t, still reads every state.
    """

    def __init__(self, encoder: SentenceEncoder, n_tags: int, decoded_words: int, latent: str = "hier",
                 y_dim: int = 25, z_dim: int = 100, decoder_hidden: int = 100, classifier_on: str | None = None,
                 variational: bool = True, decoder_precision: str = "float32", decoder: str = "free",
                 decoder_noise: float = 0.0, y_dropout: float = 0.0):
        super().__init__()
        if latent not in LATENT_STRUCTURES:
            raise ValueError(f"latent {latent!r} is not one of {', '.join(LATENT_STRUCTURES)}")
        classifier_on = classifier_on or ("z" if latent == "gauss" else "y")
        if latent == "gauss" and classifier_on != "z":
            raise ValueError("VSL-G has only z: its classifier reads z")
        self.latent, self.classifier_on, self.variational = latent, classifier_on, variational
        self.encoder = encoder
        h = encoder.output_dim
        self.names = ("z",) if latent == "gauss" else ("y", "z")
        self.heads = nn.ModuleDict({"z": GaussianHead(h + (y_dim if latent == "hier" else 0), z_dim)})
        if latent != "gauss":
            self.heads["y"] = GaussianHead(h, y_dim)
        elif y_dropout:
            raise ValueError("VSL-G has no y head for y_dropout to act on")
        self.y_dropout = nn.Dropout(y_dropout)
        self.dims = {"y": y_dim, "z": z_dim}
        self.decoded_words = decoded_words
        if decoder not in DECODERS:
            raise ValueError(f"decoder {decoder!r} is not one of {', '.join(DECODERS)}")
        tied_dim = encoder.embedding.words.embedding_dim if decoder == "tied" else None
        self.decoder = Decoder(y_dim + z_dim if latent == "flat" else z_dim, decoder_hidden, decoded_words,
                               decoder_precision, tied_dim, decoder_noise)
        self.classifier = nn.Linear(self.dims[classifier_on], n_tags)
        self._elbo = TraceMeanField_ELBO()

    # inference network ---------------------------------------------------------------
    def posteriors(self, h: torch.Tensor, sample: bool, y_frozen_rows: torch.Tensor | None = None
                   ) -> dict[str, Posterior]:
        """q(y|h), q(z|h) or q(z|y,h) at every token, with their samples (or means).
        ``y_frozen_rows`` (B,) bool: at those sentences q(y|h) is computed without gradient, so
        no loss on them trains the y head or reaches the encoder through y."""
        found = {}
        if "y" in self.names:
            mean, logvar = self.heads["y"](self.y_dropout(h))
            if y_frozen_rows is not None:
                rows = y_frozen_rows[:, None, None]
                mean, logvar = torch.where(rows, mean.detach(), mean), torch.where(rows, logvar.detach(), logvar)
            found["y"] = Posterior(mean, logvar, reparameterize(mean, logvar, sample))
        z_input = torch.cat([h, found["y"].value], -1) if self.latent == "hier" else h
        mean, logvar = self.heads["z"](z_input)
        found["z"] = Posterior(mean, logvar, reparameterize(mean, logvar, sample))
        return found

    def decoder_input(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([values["y"], values["z"]], -1) if self.latent == "flat" else values["z"]

    def decoded_targets(self, words: torch.Tensor) -> torch.Tensor:
        """Word ids as the decoder reconstructs them: rare words become UNK (id 1)."""
        return torch.where(words < self.decoded_words, words, torch.ones_like(words))

    def reconstruction_nll(self, batch: Batch, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """-log p(x_t | .) at every position (B, T), zero at padding."""
        latent = self.decoder_input(values)[batch.mask]  # real tokens only: padding costs no softmax
        targets = self.decoded_targets(batch.words[batch.mask])
        nll = latent.new_zeros(batch.words.shape)
        nll[batch.mask] = self.decoder.nll(latent, targets, self.encoder.embedding.words.weight)
        return nll

    # pyro model and guide ----------------------------------------------------------------
    def _model(self, batch: Batch, posteriors, priors, alpha: float, beta: float):
        """p(x, latents) with per-token priors; the decoder reads the guide's sample and
        log p(x_t | .) enters as a factor."""
        B, T = batch.words.shape
        with pyro.plate("sentences", B, dim=-2), pyro.plate("positions", T, dim=-1), \
                poutine.mask(mask=batch.mask), poutine.scale(scale=alpha):
            values = {}
            for name in self.names:
                mean, logvar = priors[name]
                with poutine.scale(scale=beta):
                    values[name] = pyro.sample(name, dist.Normal(mean, torch.exp(0.5 * logvar)).to_event(1))
            pyro.factor("x", -self.reconstruction_nll(batch, values))

    def _guide(self, batch: Batch, posteriors, priors, alpha: float, beta: float):
        """q(latents | x), already computed by :meth:`posteriors`; registered here so the ELBO
        sees the sample and its distribution."""
        B, T = batch.words.shape
        with pyro.plate("sentences", B, dim=-2), pyro.plate("positions", T, dim=-1), \
                poutine.mask(mask=batch.mask), poutine.scale(scale=alpha):
            for name in self.names:
                post = posteriors[name]
                with poutine.scale(scale=beta):
                    pyro.sample(name, _PointNormal(post.mean, torch.exp(0.5 * post.logvar), post.value).to_event(1))

    def negative_elbo(self, batch: Batch, posteriors: dict[str, Posterior], priors: dict,
                      alpha: float | torch.Tensor, beta: float) -> torch.Tensor:
        """alpha * sum over real tokens of [-log p(x_t|.) + beta * KL(q_t || prior_t)], the
        negative-ELBO part of the loss (eq. 9, module docstring); ``alpha`` a number or a tensor
        that broadcasts to (B, T) (per-sentence weights)."""
        if not self.variational:
            nll = self.reconstruction_nll(batch, {n: p.value for n, p in posteriors.items()})
            return (alpha * nll)[batch.mask].sum()
        with pyro.validation_enabled(False):  # shapes are fixed by construction; checks cost ~3 ms a step
            return self._elbo.differentiable_loss(self._model, self._guide, batch, posteriors, priors, alpha, beta)

    # tagging ----------------------------------------------------------------------------
    def tag_logits(self, posteriors: dict[str, Posterior]) -> torch.Tensor:
        return self.classifier(posteriors[self.classifier_on].value)

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Tags from the posterior means (B, T); -1 at padding."""
        posteriors = self.posteriors(self.encoder(batch), sample=False)
        return self.tag_logits(posteriors).argmax(-1).masked_fill(~batch.mask, -1)

    @torch.no_grad()
    def latent_means(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Posterior means of every latent variable (B, T, dim), for analysis and plots."""
        return {name: post.mean for name, post in self.posteriors(self.encoder(batch), sample=False).items()}


class _PointNormal(dist.Normal):
    """A Normal whose ``rsample`` returns a sample drawn beforehand, so that the guide site
    carries the very sample the classifier and decoder used (one sample per token)."""

    def __init__(self, loc, scale, value, validate_args=None):
        super().__init__(loc, scale, validate_args=validate_args)
        self._value = value

    def rsample(self, sample_shape=torch.Size()):
        if sample_shape:
            raise ValueError("one sample per token")
        return self._value

    def expand(self, batch_shape, _instance=None):
        expanded = super().expand(batch_shape, _instance=_PointNormal.__new__(_PointNormal))
        expanded._value = self._value.expand(tuple(batch_shape) + self._value.shape[len(batch_shape):])
        return expanded
