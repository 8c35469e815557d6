"""Tests of vsl.data.registry: the data root, dataset names, folder datasets and loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vsl.data.registry import find_data_root, load_dataset, resolve_dataset
from vsl.errors import DatasetNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"


# --- find_data_root -----------------------------------------------------------------------

@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/work/cwd (the working directory) with ./data, and tmp/work/shared/data beside it."""
    cwd = tmp_path / "work" / "cwd"
    local = cwd / "data"
    shared = tmp_path / "work" / "shared" / "data"
    env = tmp_path / "env_root"
    explicit = tmp_path / "explicit"
    for folder in (local, shared, env, explicit):
        folder.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("VSL_DATA_ROOT", raising=False)
    return {"cwd": cwd, "local": local, "shared": shared, "env": env, "explicit": explicit}


def same(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def test_find_data_root_order(layout, monkeypatch):
    monkeypatch.setenv("VSL_DATA_ROOT", str(layout["env"]))
    assert same(find_data_root(layout["explicit"]), layout["explicit"])
    assert same(find_data_root(str(layout["explicit"])), layout["explicit"])
    assert same(find_data_root(), layout["env"])
    monkeypatch.delenv("VSL_DATA_ROOT")
    assert same(find_data_root(), layout["local"])
    layout["local"].rmdir()
    assert same(find_data_root(), layout["shared"])
    layout["shared"].rmdir()
    with pytest.raises(DatasetNotFoundError, match="VSL_DATA_ROOT"):
        find_data_root()


def test_find_data_root_env_beats_local(layout, monkeypatch):
    monkeypatch.setenv("VSL_DATA_ROOT", str(layout["env"]))
    layout["shared"].rmdir()
    assert same(find_data_root(), layout["env"])


def test_find_data_root_local_beats_shared(layout):
    assert same(find_data_root(), layout["local"])


def test_find_data_root_empty_env_is_ignored(layout, monkeypatch):
    monkeypatch.setenv("VSL_DATA_ROOT", "")
    assert same(find_data_root(), layout["local"])


def test_find_data_root_explicit_must_be_a_directory(layout, tmp_path):
    a_file = tmp_path / "not-a-dir.txt"
    a_file.write_text("x")
    for bad in (a_file, tmp_path / "missing"):
        with pytest.raises(DatasetNotFoundError) as info:
            find_data_root(bad)
        assert str(bad) in str(info.value)
    # An explicit root is never silently replaced by a fallback that exists.
    assert layout["local"].is_dir()


def test_find_data_root_from_repo_root(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("VSL_DATA_ROOT", raising=False)
    if (REPO_ROOT / "data").is_dir():
        pytest.skip("the repository has its own ./data")
    assert same(find_data_root(), DATA)


# --- resolve_dataset ----------------------------------------------------------------------

def test_resolve_twitter():
    spec = resolve_dataset("twitter", DATA)
    pos = DATA / "twitter_pos"
    assert spec.name == "twitter" and spec.fmt == "twitter" and spec.task == "pos"
    assert spec.files == {"train": pos / "oct27.traindev", "dev": pos / "oct27.test", "test": pos / "daily547.conll"}
    emoji = DATA / "twitter_unlabeled" / "tweeteval" / "emoji"
    assert spec.unlabeled_files == (emoji / "train_text.txt", emoji / "val_text.txt")
    assert spec.tokenizer == "tweet"
    assert (spec.labeled_fraction, spec.unlabeled_fraction) == (1.0, 0.0)


def test_resolve_conll2003():
    spec = resolve_dataset("conll2003", DATA)
    folder = DATA / "conll2003"
    assert spec.fmt == "conll2003" and spec.task == "ner"
    assert spec.files == {"train": folder / "eng.train", "dev": folder / "eng.testa", "test": folder / "eng.testb"}
    assert (spec.labeled_fraction, spec.unlabeled_fraction) == (0.1, 0.5)
    assert spec.unlabeled_files == ()


def test_resolve_wsj():
    spec = resolve_dataset("wsj", DATA)
    gold = DATA / "ptb" / "wsj_full" / "enw.gold"
    assert spec.fmt == "ptb" and spec.task == "pos"
    assert spec.files == {"train": gold, "dev": gold, "test": gold}


@pytest.mark.parametrize("name", ["ud/English-EWT", "ud/UD_English-EWT"])
def test_resolve_ud_newest_version(name):
    spec = resolve_dataset(name, DATA)
    folder = DATA / "ud" / "UD_English-EWT" / "r2.16"
    assert spec.name == "ud/UD_English-EWT@r2.16"
    assert spec.fmt == "conllu" and spec.task == "pos"
    assert spec.files == {split: folder / f"en_ewt-ud-{split}.conllu" for split in ("train", "dev", "test")}
    assert (spec.labeled_fraction, spec.unlabeled_fraction) == (0.2, 0.5)


@pytest.mark.parametrize("name", ["ud/UD_English-EWT@r1.4", "ud/English-EWT@r1.4"])
def test_resolve_ud_pinned_version(name):
    spec = resolve_dataset(name, DATA)
    folder = DATA / "ud" / "UD_English-EWT" / "r1.4"
    assert spec.name == "ud/UD_English-EWT@r1.4"
    assert spec.files == {split: folder / f"en-ud-{split}.conllu" for split in ("train", "dev", "test")}


def test_resolve_ud_picks_newest_complete_version_numerically(tmp_path):
    base = tmp_path / "ud" / "UD_Test-X"
    for version, splits in {"r2.9": ("train", "dev", "test"), "r2.10": ("train", "dev", "test"),
                            "r2.11": ("dev", "test"), "r1.4": ("train", "dev", "test")}.items():
        (base / version).mkdir(parents=True)
        for split in splits:
            (base / version / f"xx-ud-{split}.conllu").write_text("")
    assert resolve_dataset("ud/Test-X", tmp_path).name == "ud/UD_Test-X@r2.10"


def test_resolve_unknown_name():
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset("no-such-corpus", DATA)
    message = str(info.value)
    assert "no-such-corpus" in message
    for known in ("twitter", "conll2003", "wsj", "ud/"):
        assert known in message


def test_resolve_unknown_treebank_lists_known_ones():
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset("ud/Klingon-XYZ", DATA)
    message = str(info.value)
    assert "UD_Klingon-XYZ" in message
    assert "UD_English-EWT" in message


def test_resolve_ud_without_train_file():
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset("ud/French-GSD", DATA)
    message = str(info.value)
    assert "UD_French-GSD" in message
    assert "train" in message
    assert "r1.4" in message and "r2.16" in message


def test_resolve_ud_missing_version():
    with pytest.raises(DatasetNotFoundError, match="r9.9"):
        resolve_dataset("ud/English-EWT@r9.9", DATA)


def test_resolve_with_missing_or_incomplete_root(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        resolve_dataset("twitter", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="twitter"):
        resolve_dataset("twitter", tmp_path)  # a root without the twitter files


# --- folder datasets ----------------------------------------------------------------------

def twitter_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my.train.txt").write_text("I\tO\nhave\tV\n2\t$\ncats\tN\n\nyo\t!\n")
    (folder / "my.dev.txt").write_text("see\tV\n11\t$\n")
    (folder / "my.test.txt").write_text("ok\t!\n")
    (folder / "README").write_text("not a split\n")
    return folder


def test_resolve_folder_with_format(tmp_path):
    folder = twitter_folder(tmp_path)
    spec = resolve_dataset(str(folder), fmt="twitter")
    assert spec.fmt == "twitter" and spec.task == "pos"
    assert spec.files == {"train": folder / "my.train.txt", "dev": folder / "my.dev.txt",
                          "test": folder / "my.test.txt"}
    corpus = load_dataset(spec)
    assert [list(s.words) for s in corpus.train] == [["I", "have", "0", "cats"], ["yo"]]
    assert [list(s.tags) for s in corpus.train] == [["O", "V", "$", "N"], ["!"]]
    assert [list(s.words) for s in corpus.dev] == [["see", "00"]]
    assert [list(s.words) for s in corpus.test] == [["ok"]]
    assert corpus.raw == []
    assert load_dataset(spec, normalize=False).dev[0].words == ("see", "11")


def test_resolve_folder_ner_task(tmp_path):
    folder = tmp_path / "ner"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        (folder / f"{split}.iob").write_text("EU NNP I-NP I-ORG\n")
    spec = resolve_dataset(str(folder), fmt="conll2003")
    assert spec.task == "ner"
    assert load_dataset(spec).train[0].tags == ("S-ORG",)


@pytest.mark.parametrize("fmt", [None, "csv"])
def test_resolve_folder_needs_a_known_format(tmp_path, fmt):
    folder = twitter_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset(str(folder), fmt=fmt)
    assert "twitter" in str(info.value)  # lists the formats


def test_resolve_folder_with_two_test_files(tmp_path):
    folder = twitter_folder(tmp_path)
    (folder / "other.test.txt").write_text("ok\t!\n")
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset(str(folder), fmt="twitter")
    message = str(info.value)
    assert "'test'" in message
    assert "my.test.txt" in message and "other.test.txt" in message


def test_resolve_folder_without_dev_file(tmp_path):
    folder = twitter_folder(tmp_path)
    (folder / "my.dev.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="'dev'"):
        resolve_dataset(str(folder), fmt="twitter")


# --- load_dataset on real data ------------------------------------------------------------

@pytest.fixture(scope="module")
def twitter():
    return load_dataset(resolve_dataset("twitter", DATA))


def test_load_twitter_counts(twitter):
    assert (len(twitter.train), len(twitter.dev), len(twitter.test)) == (1327, 500, 547)
    assert sum(len(s) for s in twitter.train) == 19442
    assert len(twitter.raw) == 50000
    assert all(s.tags is None and len(s) > 0 for s in twitter.raw)
    assert all(s.tags is not None for split in ("train", "dev", "test") for s in twitter.split(split))


def test_load_twitter_maps_digits_to_zero(twitter):
    nonzero_digit = re.compile(r"[1-9]")
    for sentences in (twitter.train, twitter.dev, twitter.test, twitter.raw):
        assert not any(nonzero_digit.search(w) for s in sentences for w in s.words)
    # Digits were there and became 0; case is kept.
    assert any("0" in w for s in twitter.train for w in s.words)
    assert any(w != w.lower() for s in twitter.train for w in s.words)


def test_load_twitter_raw_is_tokenized(twitter):
    words = [w for s in twitter.raw[:2000] for w in s.words]
    assert "@user" in words
    assert any(w.startswith("#") and len(w) > 1 for w in words)


def test_load_without_raw_or_normalization():
    corpus = load_dataset(resolve_dataset("twitter", DATA), with_raw=False, normalize=False)
    assert corpus.raw == []
    assert any(re.search(r"[1-9]", w) for s in corpus.train for w in s.words)


def test_env_root_that_does_not_exist_is_an_error(layout, monkeypatch, tmp_path):
    monkeypatch.setenv("VSL_DATA_ROOT", str(tmp_path / "typo"))
    with pytest.raises(DatasetNotFoundError, match=r"\$VSL_DATA_ROOT .*typo"):
        find_data_root()


def test_registered_name_wins_over_a_local_folder_of_that_name(tmp_path, monkeypatch, data_root):
    root = data_root.resolve()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "twitter").mkdir()
    spec = resolve_dataset("twitter", root)
    assert spec.name == "twitter" and spec.fmt == "twitter"


def test_folder_split_names_are_whole_words(tmp_path):
    for name in ("tw.traindev", "tw.train", "tw.dev", "tw.test", "contest.txt"):
        (tmp_path / name).write_text("a\tN\n")
    spec = resolve_dataset(str(tmp_path), fmt="twitter")
    assert {split: path.name for split, path in spec.files.items()} == {
        "train": "tw.train", "dev": "tw.dev", "test": "tw.test"}
