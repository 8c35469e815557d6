"""Tests of vsl.data.fetch and scripts/fetch_data.py against a fake file:// "remote"."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

from vsl.data import fetch
from vsl.data.fetch import ChecksumError, DownloadError, Entry
from vsl.errors import VslError

SCRIPT = REPO_ROOT / "scripts" / "fetch_data.py"
MANIFEST = REPO_ROOT.parent / "shared" / "data" / "MANIFEST.md5"

CONTENTS = {
    "ud/UD_Test-X/r2.16/xx-ud-train.conllu": b"1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_\n\n",
    "twitter_pos/oct27.train": b"lol\t!\n:)\tE\n\n",
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _entries(contents: dict[str, bytes] = CONTENTS) -> list[Entry]:
    """Table entries for the fake files, shaped like the real ones."""
    ud_dest, tw_dest = contents
    return [
        Entry("ud", ud_dest, "UniversalDependencies/UD_Test-X", "a" * 40,
              Path(ud_dest).name, _md5(contents[ud_dest])),
        Entry("twitter", tw_dest, "brendano/ark-tweet-nlp", "b" * 40,
              "data/twpos-data-v0.3/oct27.splits/oct27.train", _md5(contents[tw_dest])),
    ]


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, list[Entry]]:
    """A file:// base URL holding every fake entry at <owner>/<repo>/<commit>/<path>."""
    base = tmp_path / "remote"
    entries = _entries()
    for entry in entries:
        path = base / entry.repo / entry.commit / entry.src
        path.parent.mkdir(parents=True)
        path.write_bytes(CONTENTS[entry.dest])
    return base.as_uri(), entries


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_fetch_all_places_files_at_destinations(tmp_path, remote):
    base_url, entries = remote
    dest = tmp_path / "data"
    summary = fetch.fetch_all(dest, entries=entries, base_url=base_url)
    assert _files(dest) == set(CONTENTS)  # no temporary files left behind
    for rel, data in CONTENTS.items():
        assert (dest / rel).read_bytes() == data
    assert summary == {"ud": {"fetched": 1}, "twitter": {"fetched": 1}}


def test_second_run_skips_present_files(tmp_path, remote, monkeypatch):
    base_url, entries = remote
    dest = tmp_path / "data"
    fetch.fetch_all(dest, entries=entries, base_url=base_url)

    def no_network(*args, **kwargs):
        raise AssertionError("a present, correct file was downloaded again")

    monkeypatch.setattr(fetch, "urlopen", no_network)
    summary = fetch.fetch_all(dest, entries=entries, base_url=base_url)
    assert summary == {"ud": {"skipped": 1}, "twitter": {"skipped": 1}}


def test_only_selected_groups_are_fetched(tmp_path, remote):
    base_url, entries = remote
    dest = tmp_path / "data"
    summary = fetch.fetch_all(dest, ["twitter"], entries=entries, base_url=base_url)
    assert _files(dest) == {"twitter_pos/oct27.train"}
    assert set(summary) == {"twitter"}


def test_unknown_group_is_rejected():
    with pytest.raises(ValueError, match="wsj"):
        fetch.select_entries(["ud", "wsj"])


def test_checksum_mismatch_raises_and_keeps_nothing(tmp_path, remote):
    base_url, entries = remote
    bad = Entry(**{**vars(entries[0]), "md5": "0" * 32})
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError) as info:
        fetch.fetch_all(dest, entries=[bad], base_url=base_url)
    message = str(info.value)
    assert bad.dest in message and "0" * 32 in message
    assert _md5(CONTENTS[bad.dest]) in message
    assert isinstance(info.value, VslError)
    assert _files(dest) == set()  # neither the file nor a partial download


def test_corrupted_existing_file_is_replaced(tmp_path, remote):
    base_url, entries = remote
    dest = tmp_path / "data"
    target = dest / entries[1].dest
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    summary = fetch.fetch_all(dest, entries=entries, base_url=base_url)
    assert target.read_bytes() == CONTENTS[entries[1].dest]
    assert summary["twitter"] == {"fetched": 1}


def test_transient_error_is_retried(tmp_path, remote, monkeypatch):
    base_url, entries = remote
    real_urlopen = fetch.urlopen
    calls = []

    def flaky(url, timeout):
        calls.append(url)
        if len(calls) == 1:
            raise URLError(ConnectionResetError("connection reset"))
        return real_urlopen(url, timeout=timeout)

    monkeypatch.setattr(fetch, "urlopen", flaky)
    entry = entries[0]
    out = tmp_path / "out" / "file"
    fetch.download(entry.url(base_url), out, entry.md5, retries=2, backoff=0)
    assert len(calls) == 2
    assert out.read_bytes() == CONTENTS[entry.dest]


def test_missing_remote_file_fails_without_retry(tmp_path, remote, monkeypatch):
    base_url, _ = remote
    real_urlopen = fetch.urlopen
    calls = []

    def counting(url, timeout):
        calls.append(url)
        return real_urlopen(url, timeout=timeout)

    monkeypatch.setattr(fetch, "urlopen", counting)
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="nope"):
        fetch.download(f"{base_url}/nope", out / "x", "0" * 32, retries=3, backoff=0)
    assert len(calls) == 1
    assert _files(out) == set()


def test_entry_url_layout():
    entry = next(e for e in fetch.ENTRIES if e.dest == "twitter_pos/oct27.train")
    assert entry.url() == (
        "https://raw.githubusercontent.com/brendano/ark-tweet-nlp/"
        "72755ccd1b29ba8e1dbbb49efe57ba9723c0013b/data/twpos-data-v0.3/oct27.splits/oct27.train"
    )
    assert entry.url("file:///mirror/") == entry.url("file:///mirror")


def test_embedded_table_matches_shared_manifest():
    if not MANIFEST.is_file():
        pytest.skip(f"{MANIFEST} not present")
    expected = {}
    for line in MANIFEST.read_text().splitlines():
        md5, path = line.split("  ", 1)
        if path.startswith(("ud/", "twitter_pos/", "twitter_unlabeled/")):
            expected[path] = md5
    assert {e.dest: e.md5 for e in fetch.ENTRIES} == expected
    assert len(fetch.ENTRIES) == len(expected)  # no duplicate destinations


def test_embedded_table_sources_are_consistent():
    assert {e.group for e in fetch.ENTRIES} == set(fetch.GROUPS)
    for entry in fetch.ENTRIES:
        assert re.fullmatch(r"[0-9a-f]{40}", entry.commit), entry
        assert re.fullmatch(r"[0-9a-f]{32}", entry.md5), entry
        assert entry.dest.split("/")[0] == {
            "ud": "ud", "twitter": "twitter_pos", "twitter_unlabeled": "twitter_unlabeled"
        }[entry.group]
        if entry.group == "ud":  # ud/<treebank>/<tag>/<file> from the treebank's repo root
            _, treebank, _, name = entry.dest.split("/")
            assert (entry.repo, entry.src) == (f"UniversalDependencies/{treebank}", name)


def _load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as running `python scripts/fetch_data.py` has it
    spec = importlib.util.spec_from_file_location("fetch_data_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_fetches_and_prints_summary_and_licensed_help(tmp_path, remote, monkeypatch,
                                                          capsys):
    base_url, entries = remote
    script = _load_script(monkeypatch)
    monkeypatch.setattr(fetch, "fetch_all", functools.partial(fetch.fetch_all, entries=entries))
    dest = tmp_path / "data"
    assert script.main(["--dest", str(dest), "--only", "ud", "--base-url", base_url]) == 0
    out = capsys.readouterr().out
    assert "ud: 1 fetched" in out and "twitter" not in out.split("Not downloaded")[0]
    assert str(dest / "conll2003") in out and "enw.gold" in out and "VSL_DATA_ROOT" in out
    assert _files(dest) == {"ud/UD_Test-X/r2.16/xx-ud-train.conllu"}


def test_cli_reports_failure_with_exit_code(tmp_path, capsys, monkeypatch):
    script = _load_script(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["--dest", str(tmp_path / "data"), "--only", "twitter_unlabeled",
            "--base-url-override", empty.as_uri(), "--retries", "0"]
    assert script.main(argv) == 1
    assert "error:" in capsys.readouterr().err


def test_cli_help_runs():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--dest", "--only", "--base-url"):
        assert flag in result.stdout
