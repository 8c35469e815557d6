"""Run configuration: one flat record, read from YAML (or the JSON a run saved) and overridden
by command-line flags; saved beside every model so that a run can be repeated from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from vsl.errors import VslError


@dataclass
class RunConfig:
    """Every setting of a tagging run. Defaults follow the authors' code where they exist
    (Chen et al. 2018: Adam 1e-3, clip 10, batch 10, BiGRU 100 per direction, no dropout)."""

    # data
    data: str = "twitter"
    data_root: str | None = None
    format: str | None = None
    labeled_fraction: float | None = None  # None: the dataset's paper setting
    unlabeled_fraction: float | None = None
    seed: int = 0
    # embeddings: a word2vec/GloVe file, or skip-gram trained on the task's raw text
    embeddings: str | None = None
    skipgram_epochs: int = 5
    skipgram_window: int = 5
    freeze_embeddings: bool = False
    # model
    latent: str = "none"
    word_dim: int = 100
    char_dim: int = 50
    char_hidden: int = 50
    hidden: int = 100
    dropout: float = 0.0
    # optimisation
    batch_size: int = 10
    lr: float = 1e-3
    grad_clip: float = 10.0
    max_steps: int = 30000
    eval_every: int = 100
    patience: int | None = 30  # evaluations without dev improvement before stopping
    eval_batch_size: int = 100
    device: str = "cpu"
    threads: int | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "RunConfig":
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise VslError(f"{source}: unknown settings {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a YAML (or JSON) file of settings."""
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise VslError(f"{path}: cannot read config: {err}") from None
        if not isinstance(values, dict):
            raise VslError(f"{path}: a config must be a mapping of settings")
        return cls.from_dict(values.get("config", values), str(path))

    def replace(self, **overrides) -> "RunConfig":
        """A copy with the given settings changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
