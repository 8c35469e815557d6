"""The training objective of the variational sequential labelers (Chen et al. 2018, eq. 9):
a step's labeled batch and, in semi-supervised training, an unlabeled one beside it
(:class:`MixedBatch`, :class:`MixedStream`), and :class:`VariationalObjective`, which weighs
their losses, anneals the KL weight and keeps the per-token prior stores of the iterative
prior updates (eqs. 10-11) for the model of :mod:`vsl.variational`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vsl.data.batching import Batch, BatchStream, stack_batches
from vsl.variational import Posterior, VariationalTagger

LOSS_AVERAGES = ("token", "sentence")


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
    ``loss_average="sentence"`` averages each part's loss per sentence over its tokens and then
    over its sentences, as the authors' code does, instead of over all its tokens at once
    ("token"): short sentences then weigh more per token.

    ``steps`` is a buffer, so the annealing position is saved with the weights. A training
    :meth:`loss` only records its prior updates; :meth:`commit_step` (called once the optimizer
    has taken the step) writes them and advances ``steps``, so a rejected step leaves no trace.
    """

    def __init__(self, model: VariationalTagger, labeled_priors: dict, unlabeled_priors: dict | None,
                 annealing, alpha: float = 1.0, unlabeled_weight: float = 0.1, first_visit_kl: bool = True,
                 unlabeled_trains_encoder: bool = True, unlabeled_trains_y: bool = True,
                 loss_average: str = "token"):
        super().__init__()
        self.model = model
        self.priors = {"labeled": labeled_priors, "unlabeled": unlabeled_priors}
        self.annealing, self.alpha, self.unlabeled_weight = annealing, alpha, unlabeled_weight
        self.first_visit_kl, self.unlabeled_trains_encoder = first_visit_kl, unlabeled_trains_encoder
        self.unlabeled_trains_y = unlabeled_trains_y
        if loss_average not in LOSS_AVERAGES:
            raise ValueError(f"loss_average {loss_average!r} is not one of {', '.join(LOSS_AVERAGES)}")
        self.loss_average = loss_average
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._pending: list[tuple[str, Batch, dict[str, Posterior]]] = []

    def parts_loss(self, parts: list[tuple[str, Batch, float]], beta: float) -> torch.Tensor:
        """sum over parts of ``weight`` / (the part's token count) * (its negative ELBO, plus
        the cross-entropy of its tags for the "labeled" part), each part a (name, batch,
        weight) triple; with ``loss_average="sentence"`` each sentence's share is instead
        ``weight`` / (the part's sentence count * the sentence's length).

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
        if len(parts) == 1 and self.loss_average == "token":  # a plain number keeps pyro's scaling fast
            weights = parts[0][2] / parts[0][1].n_tokens
        else:  # (B, 1): each sentence's weight
            weights = torch.cat([self._row_weights(part, weight) for _, part, weight in parts]).to(batch.words.device)
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
                mask = part.mask_in(width)
                if self.loss_average == "token":
                    total = total + weight / part.n_tokens * nn.functional.cross_entropy(
                        logits[mask], part.tags[part.mask], reduction="sum")
                else:
                    token_weights = weights[rows].expand(-1, width)[mask]
                    total = total + (token_weights * nn.functional.cross_entropy(
                        logits[mask], part.tags[part.mask], reduction="none")).sum()
            if model.variational and self.training:
                self._pending.append((name, part, {n: Posterior(p.mean[rows], p.logvar[rows], p.value[rows])
                                                   for n, p in posteriors.items()}))
        return total

    def _row_weights(self, part: Batch, weight: float) -> torch.Tensor:
        """(B, 1) weight of each token of each sentence of a part under ``loss_average``."""
        if self.loss_average == "token":
            return torch.full((part.words.shape[0], 1), weight / part.n_tokens)
        return (weight / (part.words.shape[0] * part.lengths.to(torch.float32)))[:, None]

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

    def _stores(self):
        """Every prior store, labeled and unlabeled."""
        return [store for stores in self.priors.values() if stores is not None for store in stores.values()]

    def remove_stale_snapshots(self) -> None:
        """Delete the prior stores' snapshots older than the last :meth:`prior_state`'s, once the
        checkpoint that holds it is saved."""
        for store in self._stores():
            store.remove_stale_snapshots()

    def remove_working_prior_files(self) -> None:
        """Delete the working files of the prior stores on disk once training has ended (their
        last checkpoint's snapshots stay, for ``--resume`` and ``--init-from``)."""
        for store in self._stores():
            store.remove_working_files()

    def load_prior_state(self, state: dict, missing_ok: bool = False) -> None:
        """Restore :meth:`prior_state` of a run over the same sentences (a ValueError if not), its
        snapshots read back as tensors (:func:`vsl.checkpoint.read_training_checkpoint`). With
        ``missing_ok`` a part the saved run did not have (the unlabeled store of a labeled-only
        run) keeps its fresh N(0, I) priors."""
        for part, stores in self.priors.items():
            if stores is None:
                continue
            if part not in state:
                if missing_ok:
                    continue
                raise ValueError(f"saved priors have no {part} store")
            for name, store in stores.items():
                store.load_state_dict(state[part][name])
