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
from :class:`~vsl.latent.PriorStore` (iterative prior updates, eqs. 10-11).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from torch import nn

from vsl.data.batching import Batch, BatchStream, stack_batches
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
    """

    def __init__(self, encoder: SentenceEncoder, n_tags: int, decoded_words: int, latent: str = "hier",
                 y_dim: int = 25, z_dim: int = 100, decoder_hidden: int = 100, classifier_on: str | None = None,
                 variational: bool = True, decoder_precision: str = "float32", decoder: str = "free",
                 decoder_noise: float = 0.0):
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
            mean, logvar = self.heads["y"](h)
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


@dataclass
class MixedBatch:
    """One training step's data: a labeled batch and, in semi-supervised training, an
    unlabeled one."""

    labeled: Batch
    unlabeled: Batch | None = None

    def to(self, device) -> "MixedBatch":
        return MixedBatch(self.labeled.to(device), None if self.unlabeled is None else self.unlabeled.to(device))

    @property
    def n_tokens(self) -> int:
        return self.labeled.n_tokens + (self.unlabeled.n_tokens if self.unlabeled is not None else 0)

    def describe(self) -> str:
        text = "labeled " + self.labeled.describe()
        return text if self.unlabeled is None else f"{text}; unlabeled {self.unlabeled.describe()}"


class MixedStream:
    """Training steps' data for a VSL model: each labeled batch, paired with the next unlabeled
    batch when there is unlabeled data. Resumable like :class:`~vsl.data.batching.BatchStream`."""

    def __init__(self, labeled: BatchStream, unlabeled: BatchStream | None = None):
        self.labeled, self.unlabeled = labeled, unlabeled

    def __iter__(self) -> "MixedStream":
        return self

    def __next__(self) -> MixedBatch:
        return MixedBatch(next(self.labeled), None if self.unlabeled is None else next(self.unlabeled))

    def state_dict(self) -> dict:
        state = {"labeled": self.labeled.state_dict()}
        if self.unlabeled is not None:
            state["unlabeled"] = self.unlabeled.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if ("unlabeled" in state) != (self.unlabeled is not None):
            raise ValueError("the saved data order does not match this run's use of unlabeled data")
        self.labeled.load_state_dict(state["labeled"])
        if self.unlabeled is not None:
            self.unlabeled.load_state_dict(state["unlabeled"])


class VariationalObjective(nn.Module):
    """Training objective of a :class:`VariationalTagger`: labeled loss + ``unlabeled_weight``
    times the unlabeled ELBO, each averaged over its tokens; beta annealed by step; per-token
    priors read from, and written back to, one :class:`~vsl.latent.PriorStore` per latent
    variable for the labeled and for the unlabeled sentences. Two options beyond the paper
    (which has neither): ``first_visit_kl=False`` drops the KL term of a sentence whose prior
    is still the initial N(0, I); ``unlabeled_trains_encoder=False`` stops the unlabeled
    ELBO's gradient at the shared encoder's output, so raw text trains only the latent heads
    and the decoder; ``unlabeled_trains_y=False`` computes q(y|h) of the unlabeled sentences
    without gradient, so raw text trains the encoder, the z head and the decoder but not the y
    head that the classifier reads (no effect on VSL-G, which has no y).

    ``steps`` is a buffer, so the annealing position is saved with the weights. A training
    :meth:`loss` only records its prior updates; :meth:`commit_step` (called once the optimizer
    has taken the step) writes them and advances ``steps``, so a rejected step leaves no trace.
    """

    def __init__(self, model: VariationalTagger, labeled_priors: dict, unlabeled_priors: dict | None,
                 annealing, alpha: float = 1.0, unlabeled_weight: float = 0.1, first_visit_kl: bool = True,
                 unlabeled_trains_encoder: bool = True, unlabeled_trains_y: bool = True):
        super().__init__()
        self.model = model
        self.priors = {"labeled": labeled_priors, "unlabeled": unlabeled_priors}
        self.annealing, self.alpha, self.unlabeled_weight = annealing, alpha, unlabeled_weight
        self.first_visit_kl, self.unlabeled_trains_encoder = first_visit_kl, unlabeled_trains_encoder
        self.unlabeled_trains_y = unlabeled_trains_y
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._pending: list[tuple[str, Batch, dict[str, Posterior]]] = []

    def parts_loss(self, parts: list[tuple[str, Batch, float]], beta: float) -> torch.Tensor:
        """sum over parts of ``weight`` / (the part's token count) * (its negative ELBO, plus
        the cross-entropy of its tags for the "labeled" part), each part a (name, batch,
        weight) triple.

        All parts go through the encoder, the posteriors, the decoder and the pyro ELBO as one
        stacked batch, the per-part weights entering as a per-sentence ``poutine.scale``: the
        same loss as part by part, in one pass with half the sequential GRU steps."""
        model = self.model
        batch = parts[0][1]
        for _, more, _ in parts[1:]:
            batch = stack_batches(batch, more)
        width = batch.words.shape[1]
        sample = model.variational and self.training
        states = model.encoder(batch)
        unlabeled = torch.cat([torch.full((part.words.shape[0],), name == "unlabeled", device=states.device)
                               for name, part, _ in parts])
        if not self.unlabeled_trains_encoder:  # the unlabeled rows' gradient stops at the encoder's output
            states = torch.where(unlabeled[:, None, None], states.detach(), states)
        posteriors = model.posteriors(states, sample, None if self.unlabeled_trains_y else unlabeled)
        if len(parts) == 1:  # one weight: a plain number keeps pyro's scaling on its fast path
            weights = parts[0][2] / parts[0][1].n_tokens
        else:
            weights = torch.cat([torch.full((part.words.shape[0], 1), weight / part.n_tokens,
                                            device=batch.words.device) for _, part, weight in parts])
        priors = {}
        if model.variational:
            gathered = [{n: self.priors[name][n].gather(part.indices, part.lengths, width) for n in model.names}
                        for name, part, _ in parts]
            priors = {n: tuple(torch.cat([g[n][i] for g in gathered]) for i in (0, 1)) for n in model.names}
            if not self.first_visit_kl:  # no KL against the initial N(0, I) of a sentence not yet written
                written = torch.cat([self.priors[name][model.names[0]].written(part.indices) for name, part, _ in parts])
                beta = beta * written[:, None].to(batch.words.device, torch.float32)
        total = model.negative_elbo(batch, posteriors, priors, self.alpha * weights, beta)
        first = 0
        for name, part, weight in parts:
            rows = slice(first, first + part.words.shape[0])
            first = rows.stop
            if name == "labeled":
                logits = model.tag_logits(posteriors)[rows]
                total = total + weight / part.n_tokens * nn.functional.cross_entropy(
                    logits[part.mask_in(width)], part.tags[part.mask], reduction="sum")
            if model.variational and self.training:
                self._pending.append((name, part, {n: Posterior(p.mean[rows], p.logvar[rows], p.value[rows])
                                                   for n, p in posteriors.items()}))
        return total

    def loss(self, batch: MixedBatch) -> torch.Tensor:
        """The step's loss; in training mode its prior updates wait for :meth:`commit_step`."""
        self._pending = []
        beta = self.annealing(int(self.steps) + 1) if self.model.variational else 0.0
        parts = [("labeled", batch.labeled, 1.0)]
        if batch.unlabeled is not None:
            parts.append(("unlabeled", batch.unlabeled, self.unlabeled_weight))
        return self.parts_loss(parts, beta)

    def commit_step(self) -> None:
        """Write the prior updates of the last training :meth:`loss` and count its step."""
        for part, batch, posteriors in self._pending:
            for name, post in posteriors.items():
                self.priors[part][name].update(batch.indices, batch.lengths, post.mean, post.logvar)
        self._pending = []
        self.steps += 1

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.model.predict(batch)

    def prior_state(self) -> dict:
        """Every prior store's state, by part ("labeled", "unlabeled") and latent name; a store
        on disk snapshots its files, named with the step count (:meth:`PriorStore.state_dict
        <vsl.latent.PriorStore.state_dict>`)."""
        return {part: {name: store.state_dict(int(self.steps)) for name, store in stores.items()}
                for part, stores in self.priors.items() if stores is not None}

    def remove_stale_snapshots(self) -> None:
        """Delete the prior stores' snapshots older than the last :meth:`prior_state`'s, once the
        checkpoint that holds it is saved."""
        for stores in self.priors.values():
            for store in (stores or {}).values():
                store.remove_stale_snapshots()

    def remove_working_prior_files(self) -> None:
        """Delete the working files of the prior stores on disk once training has ended (their
        last checkpoint's snapshots stay, for ``--resume`` and ``--init-from``)."""
        for stores in self.priors.values():
            for store in (stores or {}).values():
                store.remove_working_files()

    def load_prior_state(self, state: dict) -> None:
        """Restore :meth:`prior_state` of a run over the same sentences (a ValueError if not), its
        snapshots read back as tensors (:func:`vsl.checkpoint.read_training_checkpoint`)."""
        for part, stores in self.priors.items():
            if stores is None:
                continue
            if part not in state:
                raise ValueError(f"saved priors have no {part} store")
            for name, store in stores.items():
                store.load_state_dict(state[part][name])
