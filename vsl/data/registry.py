"""Dataset names, the data root, and loading a named dataset into train/dev/test.

Names (see ../shared/data/README.md for the layout under the data root):

* ``twitter``: train = ``oct27.traindev``, dev = ``oct27.test``, test = ``daily547.conll``;
  unlabeled = the raw TweetEval tweets, tokenized with :func:`~vsl.data.readers.tokenize_tweet`.
* ``conll2003``: ``eng.train`` / ``eng.testa`` / ``eng.testb``, NER in BIOES.
* ``wsj``: all of ``ptb/wsj_full/enw.gold``; train = dev = test, as tag induction does.
* ``ud/<Treebank>`` (``UD_`` prefix optional): the newest version folder holding train, dev
  and test; ``ud/<Treebank>@<version>`` picks a version.
* a folder path, with ``fmt`` one of :data:`~vsl.data.readers.READERS`: its files are told
  apart by ``train``, ``dev`` and ``test`` as words of their names (``en.dev.txt``, not
  ``traindev``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vsl.data.readers import READERS, Sentence, read_raw
from vsl.data.tagging import normalize_word
from vsl.errors import DatasetNotFoundError

SPLITS = ("train", "dev", "test")


def find_data_root(explicit: str | Path | None = None) -> Path:
    """The data root: ``explicit``, else ``$VSL_DATA_ROOT``, else ``./data``, else
    ``../shared/data`` (relative to the working directory)."""
    for given, source in ((explicit, "data root"), (os.environ.get("VSL_DATA_ROOT"), "$VSL_DATA_ROOT")):
        if given:
            if not Path(given).is_dir():
                raise DatasetNotFoundError(f"{source} {given} is not a directory")
            return Path(given)
    candidates = [Path("data"), Path("..") / "shared" / "data"]
    for root in candidates:
        if root.is_dir():
            return root
    raise DatasetNotFoundError(
        "no data root: pass --data-root, set $VSL_DATA_ROOT, or run scripts/fetch_data.py "
        f"(looked in {', '.join(str(c) for c in candidates)})")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are and how the papers split it.

    ``labeled_fraction`` / ``unlabeled_fraction`` are the default shares of train used as
    labeled and as unlabeled data (disjoint); ``unlabeled_files`` are raw text added to the
    unlabeled data.
    """

    name: str
    fmt: str
    task: str
    files: dict[str, Path]
    labeled_fraction: float = 1.0
    unlabeled_fraction: float = 0.0
    unlabeled_files: tuple[Path, ...] = ()
    tokenizer: str = "whitespace"


@dataclass
class Corpus:
    """A loaded dataset: labeled train/dev/test sentences and the raw unlabeled sentences."""

    spec: DatasetSpec
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    raw: list[Sentence] = field(default_factory=list)

    def split(self, name: str) -> list[Sentence]:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{what}: missing file {path}")
    return path


def _twitter(root: Path) -> DatasetSpec:
    pos, raw = root / "twitter_pos", root / "twitter_unlabeled" / "tweeteval" / "emoji"
    files = {"train": pos / "oct27.traindev", "dev": pos / "oct27.test", "test": pos / "daily547.conll"}
    for path in files.values():
        _require(path, "twitter")
    unlabeled = tuple(p for p in (raw / "train_text.txt", raw / "val_text.txt") if p.is_file())
    return DatasetSpec("twitter", "twitter", "pos", files, 1.0, 0.0, unlabeled, "tweet")


def _conll2003(root: Path) -> DatasetSpec:
    folder = root / "conll2003"
    files = {"train": folder / "eng.train", "dev": folder / "eng.testa", "test": folder / "eng.testb"}
    for path in files.values():
        _require(path, "conll2003 (licensed: see scripts/fetch_data.py)")
    return DatasetSpec("conll2003", "conll2003", dataset_task("conll2003"), files, 0.1, 0.5)


def _wsj(root: Path) -> DatasetSpec:
    gold = _require(root / "ptb" / "wsj_full" / "enw.gold", "wsj (licensed: see scripts/fetch_data.py)")
    return DatasetSpec("wsj", "ptb", "pos", {split: gold for split in SPLITS})


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def _ud_split_files(folder: Path) -> dict[str, Path]:
    files = {}
    for split in SPLITS:
        matches = sorted(folder.glob(f"*-ud-{split}.conllu"))
        if matches:
            files[split] = matches[0]
    return files


def _ud(root: Path, treebank: str) -> DatasetSpec:
    treebank, _, version = treebank.partition("@")
    name = treebank if treebank.startswith("UD_") else f"UD_{treebank}"
    base = root / "ud" / name
    if not base.is_dir():
        known = sorted(p.name for p in (root / "ud").glob("UD_*")) if (root / "ud").is_dir() else []
        raise DatasetNotFoundError(f"no treebank {name} under {root / 'ud'}; known: {', '.join(known)}")
    versions = [version] if version else sorted((p.name for p in base.iterdir() if p.is_dir()),
                                                key=_version_key, reverse=True)
    found = {}
    for candidate in versions:
        files = _ud_split_files(base / candidate)
        if len(files) == len(SPLITS):
            label = f"ud/{name}@{candidate}"
            return DatasetSpec(label, "conllu", "pos", files, 0.2, 0.5)
        found[candidate] = sorted(files)
    present = "; ".join(f"{v}: {', '.join(s) or 'nothing'}" for v, s in found.items())
    raise DatasetNotFoundError(f"{name} has no version with train, dev and test files ({present})")


def _folder(folder: Path, fmt: str | None) -> DatasetSpec:
    if fmt is None:
        raise DatasetNotFoundError(f"{folder} is a folder: give its format, one of {', '.join(READERS)}")
    if fmt not in READERS:
        raise DatasetNotFoundError(f"format {fmt!r} is not one of {', '.join(READERS)}")
    files = {}
    for split in SPLITS:
        matches = sorted(p for p in folder.iterdir()
                         if p.is_file() and split in re.split(r"[^a-z0-9]+", p.name.lower()))
        if len(matches) != 1:
            names = ", ".join(p.name for p in matches) or "none"
            raise DatasetNotFoundError(f"{folder}: need exactly one file with {split!r} in its name, found {names}")
        files[split] = matches[0]
    return DatasetSpec(str(folder), fmt, dataset_task(str(folder), fmt), files)


def dataset_task(name: str, fmt: str | None = None) -> str:
    """"ner" for CoNLL-2003 and folders in its format, else "pos" (what a dataset's tags are)."""
    return "ner" if name == "conll2003" or fmt == "conll2003" else "pos"


def resolve_dataset(name: str, data_root: str | Path | None = None, fmt: str | None = None) -> DatasetSpec:
    """Turn a dataset name (or folder path) into a :class:`DatasetSpec`."""
    named = {"twitter": _twitter, "conll2003": _conll2003, "wsj": _wsj}
    if name in named:
        return named[name](find_data_root(data_root))
    if name.startswith("ud/"):
        return _ud(find_data_root(data_root), name[len("ud/"):])
    if Path(name).is_dir():
        return _folder(Path(name), fmt)
    raise DatasetNotFoundError(
        f"unknown dataset {name!r}: use twitter, conll2003, wsj, ud/<Treebank>[@version] or a folder path")


def normalize_sentences(sentences: list[Sentence]) -> list[Sentence]:
    """Apply :func:`~vsl.data.tagging.normalize_word` to every word."""
    return [Sentence(tuple(normalize_word(w) for w in s.words), s.tags) for s in sentences]


def load_dataset(spec: DatasetSpec, with_raw: bool = True, normalize: bool = True) -> Corpus:
    """Read a dataset's files (each distinct file once) and, if asked, its raw unlabeled text."""
    def prepare(sentences: list[Sentence]) -> list[Sentence]:
        return normalize_sentences(sentences) if normalize else sentences

    reader = READERS[spec.fmt]
    cache: dict[Path, list[Sentence]] = {}
    for path in spec.files.values():
        if path not in cache:
            cache[path] = prepare(reader(path))
    raw = [s for path in spec.unlabeled_files for s in read_raw(path, spec.tokenizer)] if with_raw else []
    return Corpus(spec, *(cache[spec.files[split]] for split in SPLITS), raw=prepare(raw))
