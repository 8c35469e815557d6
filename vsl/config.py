"""Run configuration: one flat record, read from YAML (or the JSON a run saved) and overridden
by command-line flags; saved beside every model so that a run can be repeated from it."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vsl.errors import SettingError, VslError


class Settings:
    """Shared behaviour of the flat settings records (a dataclass subclasses this): read from
    YAML or a saved ``config.json`` (whose settings sit under ``config``), reject unknown keys,
    copy with overrides."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config"):
        """The settings in ``values``, each checked against its declared type (a bool is a
        bool, an integer an integer, a float any number that is not a bool); a VslError names
        ``source``, the key and what was expected."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise VslError(f"{source}: unknown settings {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            if not _fits(value, hints[name]):
                raise VslError(f"{source}: setting {name} must be {_describe(hints[name])}; got {value!r}")
        return cls(**values)

    #: Settings whose default changed, with the value they had before: a saved ``config.json``
    #: lists every setting of its time, so one that lacks a key here ran with the old value.
    SAVED_BEFORE: typing.ClassVar[dict] = {}

    @classmethod
    def from_saved(cls, values: dict, source: str = "config.json"):
        """The settings a run saved, read as :meth:`from_dict` reads them, with the old value
        of each :attr:`SAVED_BEFORE` setting that the run predates."""
        return cls.from_dict({**cls.SAVED_BEFORE, **values}, source)

    @classmethod
    def load(cls, path: str | Path):
        """Read a YAML (or JSON) file of settings, or the ``config.json`` a run saved (its
        settings under ``config``, read by :meth:`from_saved`)."""
        values = read_settings_file(path)
        if isinstance(values.get("config"), dict):
            return cls.from_saved(values["config"], str(path))
        return cls.from_dict(values, str(path))

    def replace(self, **overrides):
        """A copy with the given settings changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _fits(value, expected) -> bool:
    """Whether ``value`` (as YAML or JSON gives it) is of the annotated type ``expected``."""
    if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union:
        return any(_fits(value, option) for option in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if typing.get_origin(expected) is list:
        (item,) = typing.get_args(expected)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _describe(expected) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union:
        return " or ".join(_describe(option) for option in typing.get_args(expected))
    if typing.get_origin(expected) is list:
        return f"a list of {_describe(typing.get_args(expected)[0]).split(' ', 1)[-1]}s"
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def require_positive(**values) -> None:
    """Raise :class:`~vsl.errors.SettingError` naming the first setting in ``values`` that is
    not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise SettingError(f"{name} must be positive; got {value}")


MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits
DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def check_seed(seed: int) -> None:
    """Refuse a seed that numpy cannot take, naming it."""
    if not 0 <= seed <= MAX_SEED:
        raise SettingError(f"seed must be in 0..{MAX_SEED}; got {seed}")


def check_placement(seed: int, threads: int | None, device: str) -> None:
    """Refuse a seed, thread count or device name that no run can use, before any work: a
    :class:`~vsl.errors.SettingError` naming the setting (whether a named GPU is there is
    checked where the process joins it, :func:`vsl.distributed.join`)."""
    check_seed(seed)
    if threads is not None and threads < 1:
        raise SettingError(f"threads must be positive (or unset for torch's default); got {threads}")
    check_device(device)


def check_device(device: str) -> None:
    """Refuse a device name torch would not take, naming it."""
    if not DEVICE.fullmatch(device):
        raise SettingError(f"device {device!r} is not one of cpu, cuda, cuda:N")


def read_settings_file(path: str | Path) -> dict:
    """The mapping in a YAML (or JSON) settings file; a VslError names the file if it cannot be
    read or holds something else."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise VslError(f"{path}: cannot read config: {err}") from None
    if not isinstance(values, dict):
        raise VslError(f"{path}: a config must be a mapping of settings")
    return values


@dataclass
class RunConfig(Settings):
    """Every setting of a tagging run. Defaults follow the authors' code where they exist
    (Chen et al. 2018: Adam 1e-3, clip 10, batch 10, BiGRU 100 per direction, no dropout)."""

    # data
    data: str = "twitter"
    data_root: str | None = None
    format: str | None = None
    labeled_fraction: float | None = None  # None: the dataset's paper setting
    unlabeled_fraction: float | None = None
    seed: int = 0
    # unlabeled text: "auto" (the dataset's: raw tweets, or the unlabeled share of train),
    # "none" (VSL trains on labeled data only; embeddings still see the auto text),
    # a dataset name (its training text) or a raw-text file (one sentence per line)
    unlabeled: str = "auto"
    # embeddings: a word2vec/GloVe file, or skip-gram trained on the task's raw text
    embeddings: str | None = None
    # more raw text for the skip-gram vectors only, beside the run's own training text: files
    # (one sentence per line, tokenized as the dataset's raw text) or dataset names
    vector_text: list[str] = field(default_factory=list)
    vector_text_tokenizer: str | None = None  # None: the dataset's raw-text tokenizer; or tweet, treebank, whitespace
    # False: the skip-gram vectors leave out the unlabeled pool (labeled text + vector_text only),
    # to measure what the unlabeled ELBO adds beyond vectors trained on the same text
    vectors_see_unlabeled: bool = True
    skipgram_epochs: int = 5
    skipgram_window: int = 5
    freeze_embeddings: bool | None = None  # None: tuned for the baseline, frozen for VSL
    # model
    latent: str = "none"  # none (BiGRU baseline) | gauss | flat | hier
    word_dim: int = 100
    char_dim: int = 50
    char_hidden: int = 50
    hidden: int = 100
    dropout: float = 0.0
    # variational labelers (Chen et al. 2018)
    y_dim: int = 25
    z_dim: int = 100
    decoder_hidden: int = 100
    # p(x|.)'s output layer: "tied" (the frozen input embedding matrix, no bias: the authors'
    # code) or "free" (its own weights and bias; the only decoder before version 0.2)
    decoder: str = "tied"
    decoder_noise: float = 0.0  # sd of the Gaussian noise added to the decoder's output vector in training
    # dropout on the encoder states q(y|h) reads, in training; the z head and decoder see them all
    # (beyond the paper: `dropout` also hides x_t from its own reconstruction)
    y_dropout: float = 0.0
    decoded_words: int | None = 10000  # most frequent words reconstructed; the rest as UNK; None: all
    decoder_precision: str = "float32"  # float32 | bfloat16: arithmetic of the decoder's vocabulary matmuls
    classifier_on: str | None = None  # None: y (z for VSL-G); "z": Table 3 ablation
    variational: bool = True  # False: the deterministic counterpart of Table 4 (--no-vr)
    alpha: float = 1.0
    unlabeled_weight: float = 0.1
    unlabeled_batch_size: int = 10
    unlabeled_limit: int | None = None  # train VSL on this many of the unlabeled sentences (Figure 4)
    kl_annealing: str = "exp"  # exp | linear | constant
    kl_rate: float = 1e-3
    kl_warmup: int = 1000
    prior_update_every: int = 1
    # where the per-token prior stores live: "memory", "disk" (files in the run folder, memory-mapped)
    # or "auto" (disk when a process's stores take more than 256 MiB)
    prior_storage: str = "auto"
    first_visit_kl: bool = True  # False: no KL term while a sentence's prior is still N(0, I)
    unlabeled_trains_encoder: bool = True  # False: the unlabeled ELBO's gradient stops at the encoder
    unlabeled_trains_y: bool = True  # False: the unlabeled ELBO does not train q(y|h), which the classifier reads
    # how each part's loss is averaged: "token" (over all its tokens) or "sentence" (per sentence
    # over its tokens, then over its sentences, as the authors' code does)
    loss_average: str = "token"
    prior_dtype: str = "float16"  # float16 | float32 (the authors' code): the per-token prior stores
    # a VSL run folder to start from, its weights and priors (sec. 6.4); "{seed}" in it stands for
    # this run's seed, so a table row can start each seed from the same seed of another row
    init_from: str | None = None
    # optimisation
    batch_size: int = 10
    batch_order: str = "bucketed"  # bucketed (similar lengths in a batch) | random (the authors' code)
    lr: float = 1e-3
    grad_clip: float = 10.0
    max_steps: int = 30000
    eval_every: int = 100
    patience: int | None = 30  # evaluations without dev improvement before stopping
    checkpoint_every: int = 1000  # steps between training checkpoints (last.pt) for --resume
    on_nonfinite: str = "stop"  # a NaN/Inf loss or gradient: "stop" training or "skip" the batch
    eval_batch_size: int = 100
    device: str = "cpu"
    threads: int | None = None

    SAVED_BEFORE: typing.ClassVar[dict] = {"decoder": "free"}

    @property
    def frozen_embeddings(self) -> bool:
        return self.latent != "none" if self.freeze_embeddings is None else self.freeze_embeddings
