"""The package's public face: train a run folder from settings, and load any trained run folder
(BiGRU baseline, VSL model, HMM or neural HMM) as a :class:`Tagger` that tags and scores text.

    import vsl
    folder = vsl.train("configs/vsl/twitter_rawtext_hier_labeled.yaml", "runs/hier", max_steps=2000)
    tagger = vsl.load_tagger(folder)
    tagger.tag([["I", "love", "it"]])          # [['O', 'V', 'O']]
    tagger.evaluate("twitter", split="test")   # {'accuracy': ...}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vsl.checkpoint import load_metadata
from vsl.config import read_settings_file
from vsl.data.readers import Sentence
from vsl.data.registry import dataset_task, load_dataset, resolve_dataset
from vsl.errors import VslError
from vsl.metrics import cluster_scores, tagging_scores
from vsl.prediction import TrainedTagger
from vsl.run_folder import resume_settings

SPLITS = ("train", "dev", "test")


def _family_of(values: dict) -> str:
    """A settings mapping names the HMM family by its ``model`` key (hmm or nhmm)."""
    return "hmm" if "model" in values else "vsl"


def _settings(config, overrides: dict):
    """A RunConfig or HmmConfig from a config object, a settings mapping or a YAML/JSON file."""
    from hmm.config import HmmConfig
    from vsl.config import RunConfig

    if isinstance(config, (str, Path)):
        values = read_settings_file(config)
        saved = isinstance(values.get("config"), dict)  # a run's config.json names its family
        family = values.get("family", "vsl") if saved else _family_of(values)
        config = (HmmConfig if family == "hmm" else RunConfig).load(config)
    elif isinstance(config, dict):
        config = (HmmConfig if _family_of(config) == "hmm" else RunConfig).from_dict(config)
    elif not isinstance(config, (RunConfig, HmmConfig)):
        raise VslError(f"train() takes a RunConfig, an HmmConfig, a mapping of settings or a config file; "
                       f"got {type(config).__name__}")
    unknown = sorted(set(overrides) - set(config.field_names()))
    if unknown:
        raise VslError(f"unknown settings: {', '.join(unknown)}")
    return config.replace(**overrides)


def _saved_settings(out_dir: str | Path):
    """The settings of the stopped run in ``out_dir``, which resuming it takes."""
    from hmm.config import HmmConfig
    from vsl.config import RunConfig

    family = load_metadata(out_dir).family
    return resume_settings(out_dir, HmmConfig if family == "hmm" else RunConfig, family)


def train(config, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
          **overrides) -> Path:
    """Train one run into ``out_dir`` and return the folder (its ``results.json`` holds the
    scores). ``config`` is a :class:`~vsl.config.RunConfig` (BiGRU baseline and VSL models),
    an :class:`~hmm.config.HmmConfig` (HMMs), a mapping of settings or a YAML/JSON settings
    file; ``overrides`` change single settings (``max_steps=2000``). ``resume=True`` (with
    ``config=None``) continues the stopped run in ``out_dir`` with its saved settings;
    ``overwrite`` replaces a finished one."""
    from hmm.config import HmmConfig

    if resume and (config is not None or overrides):
        raise VslError("resume=True continues the run in out_dir with its saved settings: give config=None "
                       "and no settings")
    settings = _saved_settings(out_dir) if resume else _settings(config, overrides)
    if isinstance(settings, HmmConfig):
        from hmm.recipe import run
    else:
        from vsl.recipe import run
    run(settings, out_dir, progress=progress, command=f"vsl.train({config!r})", resume=resume, overwrite=overwrite)
    return Path(out_dir)


@dataclass
class Tagger:
    """A trained run folder's model. :meth:`tag` gives each token list its tags (HMMs: state
    ids); :meth:`evaluate` scores gold-tagged sentences the way the run's family is scored:
    accuracy (POS) or span F1 (NER) for the taggers, many-to-one, one-to-one and V-measure for
    the HMMs."""

    family: str  # "vsl" or "hmm"
    task: str  # "pos" or "ner"
    tokenizer: str  # how raw text became the run's tokens (vsl.data.readers.TOKENIZERS)
    trained: TrainedTagger
    settings: dict

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64, device: str = "cpu") -> list[list[str]]:
        """Tags of each token list, in order; an empty sentence gets none."""
        return self.trained.tag(sentences, batch_size, device)

    def evaluate(self, data: str | Sequence, split: str = "test", data_root: str | Path | None = None,
                 fmt: str | None = None, batch_size: int = 64, device: str = "cpu") -> dict[str, float]:
        """Scores on ``data``: a dataset name (``twitter``, ``conll2003``, ``ud/<Treebank>``,
        ``wsj`` or a folder in format ``fmt``, by default the run's), whose ``split`` is read,
        or a sequence of gold-tagged sentences (:class:`~vsl.data.readers.Sentence`, or
        (words, tags) pairs)."""
        sentences = self._gold(data, split, data_root, fmt)
        predicted = self.tag([s.words for s in sentences], batch_size, device)
        gold = [list(s.tags) for s in sentences]
        if self.family == "hmm":
            return cluster_scores(gold, predicted)
        return tagging_scores(gold, predicted, self.task)

    def _gold(self, data, split: str, data_root, fmt: str | None) -> list[Sentence]:
        if isinstance(data, (str, Path)):
            if split not in SPLITS:
                raise VslError(f"split {split!r} is not one of {', '.join(SPLITS)}")
            spec = resolve_dataset(str(data), data_root or self.settings.get("data_root"),
                                   fmt or self.settings.get("format"))
            sentences = getattr(load_dataset(spec, with_raw=False), split)
            if any(s.tags is None for s in sentences):
                raise VslError(f"{spec.name}: its {split} split has untagged sentences; cannot score")
            return sentences
        sentences = []
        for number, item in enumerate(data, 1):
            words, tags = (item.words, item.tags) if isinstance(item, Sentence) else item
            if tags is None or len(tags) != len(words):
                raise VslError(f"sentence {number} to evaluate has no tag for every word")
            sentences.append(Sentence(tuple(words), tuple(tags)))
        return sentences


def load_tagger(directory: str | Path, device: str = "cpu") -> Tagger:
    """The model of a run folder written by :func:`train` (or ``scripts/run_vsl.py`` /
    ``scripts/run_hmm.py``), of whichever family its ``config.json`` names."""
    metadata = load_metadata(directory)
    if metadata.family == "hmm":
        from hmm.recipe import load_trained
    else:
        from vsl.recipe import load_trained
    settings = metadata.config
    task = dataset_task(settings.get("data", ""), settings.get("format"))
    return Tagger(metadata.family, task, metadata.tokenizer, load_trained(directory, device), settings)
