"""Download the freely licensed datasets into a data root laid out like ``shared/data``.

Every file comes from a public GitHub repository at a pinned commit, as
``<base_url>/<owner>/<repo>/<commit>/<path>`` (``base_url`` is https://raw.githubusercontent.com
unless overridden), and is checked against the md5 recorded in :data:`ENTRIES` before it is moved
into place. A file already present with the right md5 is skipped, so a rerun is cheap and resumes
an interrupted one; a file present with a wrong md5 is downloaded again.

Groups (:data:`GROUPS`):

* ``ud`` -- Universal Dependencies treebanks, ``ud/<treebank>/<release tag>/`` (CoNLL-U files,
  ``LICENSE.txt``, ``README.*``, ``stats.xml``).
* ``twitter`` -- Twitter POS v0.3 (Gimpel et al. 2011 / Owoputi et al. 2013), ``twitter_pos/``.
* ``twitter_unlabeled`` -- raw TweetEval emoji tweets, ``twitter_unlabeled/tweeteval/``.

CoNLL-2003 (Reuters text) and the Penn Treebank WSJ (LDC) are licensed and not downloaded;
:func:`licensed_data_help` says how to supply them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import urlopen

from vsl.errors import VslError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
GROUPS = ("ud", "twitter", "twitter_unlabeled")
TIMEOUT_S = 60.0
RETRIES = 3
BACKOFF_S = 2.0
_CHUNK_BYTES = 1 << 20


class ChecksumError(VslError):
    """A downloaded file whose md5 is not the one in the table; the file is not kept."""

    def __init__(self, path: str | Path, expected: str, actual: str):
        self.path = str(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{self.path}: md5 mismatch (expected {expected}, got {actual}); file not kept"
        )


class DownloadError(VslError):
    """A file that could not be downloaded: a permanent error, or the retries ran out."""


@dataclass(frozen=True)
class Entry:
    """One file to fetch: its group, where it goes, where it comes from, and its md5."""

    group: str
    dest: str  # path under the data root, "/"-separated
    repo: str  # GitHub "owner/name"
    commit: str  # pinned commit id
    src: str  # path inside the repository
    md5: str

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """The raw-file URL of this entry under ``base_url``."""
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{quote(self.src)}"


# --- The table (generated from shared/data/MANIFEST.md5 and shared/data/README.md) -----------

# UD: (treebank repo under UniversalDependencies/, folder = release tag, pinned commit,
#      ((file name, md5), ...)). Files sit at the repository root and go to ud/<treebank>/<tag>/.
# The r1.4 commits and the section-1b commits are those release tags; the r2.16 commits of the
# GSD and EWT treebanks are the snapshot's HEAD, whose .conllu files equal the r2.16 release
# (pinning the snapshot's commit keeps LICENSE/README/stats.xml byte-identical as well).
# The EWT train files and the Bosque train file in shared/ were rebuilt byte-identical to these.
_UD_FOLDERS = (
    ("UD_Afrikaans-AfriBooms", "r2.18", "e18da8e861c34ce749e1b10fa4961982ba7aa8cf", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.txt", "118f6e92df93e9171fc5b4dd3a0d8bfd"),
        ("af_afribooms-ud-dev.conllu", "99ae500b73050811517b2dd8dbbe94c9"),
        ("af_afribooms-ud-test.conllu", "936efc67a43732152200595c37ea6a2d"),
        ("af_afribooms-ud-train.conllu", "b848c5ff0f6508bedf13b5f5872dae58"),
        ("stats.xml", "81734ba5c80ca202e3e65d032d9b775f"),
    )),
    ("UD_Dutch-LassySmall", "r1.4", "c41a514a4eec7a4a6685e5e343f934f150008f8f", (
        ("LICENSE.txt", "acae6ceb18f3c92b228c8e74b69edc38"),
        ("README.txt", "73aea84a96a63df4f8cb5a7ed1c83f2f"),
        ("nl_lassysmall-ud-dev.conllu", "e2ffadabbee415f380dc5e415fb6d197"),
        ("nl_lassysmall-ud-test.conllu", "9c41702ba62fdb76313a2e14fa14cec6"),
        ("nl_lassysmall-ud-train.conllu", "62462267a8180346304293033a24be13"),
        ("stats.xml", "72bb3431765ccbadf18b607837223d33"),
    )),
    ("UD_English-EWT", "r1.4", "4b10f8e6fc0c83cc41bfecfe5167e6248a5edb1c", (
        ("LICENSE.txt", "7150ad213dcffe7c925fa14c804415c4"),
        ("README.txt", "bc0c2378d559deaebd73b6bdcf5d1666"),
        ("en-ud-dev.conllu", "2bf0b1ef0222497023c6ae7fe257c235"),
        ("en-ud-test.conllu", "8d99d39bab31ccd7f246ca1e5f3938f7"),
        ("en-ud-train.conllu", "7a0850e2713b9db850cd7880767c5a5b"),
        ("stats.xml", "840b2ffff999ece9491dc8dee1878664"),
    )),
    ("UD_English-EWT", "r2.16", "15d613d8447b3478787d4c278730a1e48a945efb", (
        ("LICENSE.txt", "7150ad213dcffe7c925fa14c804415c4"),
        ("README.md", "c0ce7ceb3b4d302d049e189c39bf8fa6"),
        ("en_ewt-ud-dev.conllu", "cb1da95ff28a449cb9bc286c922e15e1"),
        ("en_ewt-ud-test.conllu", "01630da0129f8600ef761dbcfd18b9e2"),
        ("en_ewt-ud-train.conllu", "fa9865539033efcf99ea90f8b93d6646"),
        ("stats.xml", "32071ddd515fa8b9ca95c003d6ec004c"),
    )),
    ("UD_French-GSD", "r1.4", "dc298ecc6fa46156b79726e74fd6a50bb75765a5", (
        ("LICENSE.txt", "fe090fab38880256b2f6cfd45205606b"),
        ("README.txt", "974044b0cb1b1c5a208653a6b0d9d1dc"),
        ("fr-ud-dev.conllu", "0c8a62213c146da283aac93f91c60218"),
        ("fr-ud-test.conllu", "f8644a20642b778be828f56f66be614b"),
        ("stats.xml", "d18e9ac0c6f8bd5623e1d575e1c1610d"),
    )),
    ("UD_French-GSD", "r2.16", "830e2782304af08b3cc1c9250475343e04274d81", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.md", "05847a71d90c308e2310ef4962fe65cd"),
        ("fr_gsd-ud-dev.conllu", "f66efc98cf2d2731d303948d8c63615d"),
        ("fr_gsd-ud-test.conllu", "f8ff731ad0ee709e3e17938332edb839"),
        ("stats.xml", "ff4344bc2afeadf6e44ffbe3f2efc3f7"),
    )),
    ("UD_French-Sequoia", "r2.16", "0e45d60d0d6fc41cc4a7a33e33afa8f0a72066d4", (
        ("LICENSE.txt", "5c0ad035c061a06f01029c8b20890031"),
        ("README.md", "c890249110f2237f6b577fb3c4632a48"),
        ("fr_sequoia-ud-dev.conllu", "5c606f80b13ca6935ad74b7459c54b3c"),
        ("fr_sequoia-ud-test.conllu", "cd00903569177b97a42bf4e4b7143db3"),
        ("fr_sequoia-ud-train.conllu", "f94ba492f910c9ab867a3f67b472dd2c"),
        ("stats.xml", "7aa7cb5ad405beaffdc2188a29ed1c29"),
    )),
    ("UD_German-GSD", "r1.4", "f8ca1eff3f32334f5604331b92b04b6937f1ba7c", (
        ("LICENSE.txt", "af28c712c2c4444ac9f2f26e7b4d424a"),
        ("README.txt", "4631d38c0d231ae753bf7c1f4ad565a8"),
        ("de-ud-dev.conllu", "2e6a6372bd093af66c1d2963d838d818"),
        ("de-ud-test.conllu", "231ada529dfac7d83fc356e3d0d110f9"),
        ("stats.xml", "c688cb121ff491447887ce3b9968a535"),
    )),
    ("UD_German-GSD", "r2.16", "297fcf350481058d0737a27f0f8fd03b2eadd67a", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.md", "4f5dc6aa3c5c0f29ce923bff5da36bdc"),
        ("de_gsd-ud-dev.conllu", "64f2a898f9a12c95cfbeb84f27d5fea3"),
        ("de_gsd-ud-test.conllu", "4f2eecbf1322df6b19c068b56ebc44e9"),
        ("stats.xml", "8ff6f14ad1f09b711cc6f1e180ac16b5"),
    )),
    ("UD_Portuguese-Bosque", "r2.16", "4f136acb02344e4f2f5e3d3e9ecc70aab61db62d", (
        ("LICENSE.txt", "ab24d1ff7d73da327d1126fbe1dcff6b"),
        ("README.md", "f9efe6cee6ee10fd125da147b74449a5"),
        ("pt_bosque-ud-dev.conllu", "ed8aab1bbea0e613bbb84dec1252e79e"),
        ("pt_bosque-ud-test.conllu", "a1fcae6c1a14d3626f7ce095d4f82c1e"),
        ("pt_bosque-ud-train.conllu", "e07fb79129394c144e9e2e5586e022ae"),
        ("stats.xml", "4c2f7d754be7303189743ec9e78fc1a1"),
    )),
    ("UD_Russian-GSD", "r1.4", "17d7fa95a6bd856ce5e79a5ce98b9e67626d67e8", (
        ("LICENSE.txt", "212173735cb521717c9ece89402672c1"),
        ("README.txt", "76e35f2656996557935236da06361c53"),
        ("ru-ud-dev.conllu", "45fac42122b7a378b679669ff52268c9"),
        ("ru-ud-test.conllu", "f81bedf9a8d681257e295db84357c0c6"),
        ("stats.xml", "6755d4c83df0d60b0201aa522de7fe99"),
    )),
    ("UD_Russian-GSD", "r2.16", "5400f2fd7264b7699727bb61b09f53841899df26", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.md", "6bf264f81b81f15cae63e0c3627e24c2"),
        ("ru_gsd-ud-dev.conllu", "a21e8cffdccdf9ce56834675b7111fe0"),
        ("ru_gsd-ud-test.conllu", "79bf213b941c8611ac9097e24e3457a0"),
        ("stats.xml", "f37f8ac5861fe2fda701d8adfb1353b1"),
    )),
    ("UD_Russian-Taiga", "r2.7", "445b06171246417ae52da5b989d6ee619c112177", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.md", "a11275c1a1e1ffbf0602482b52afcb5a"),
        ("ru_taiga-ud-dev.conllu", "54a0ca493eafc5caf4be5b4a8ae1d237"),
        ("ru_taiga-ud-test.conllu", "50c8996bc32e0be48a845571a65e4025"),
        ("ru_taiga-ud-train.conllu", "975b1d6528b5654ba4ecf8c0218f6496"),
        ("stats.xml", "a5a648741337b0803e5f73add0ebc028"),
    )),
    ("UD_Slovenian-SST", "r1.4", "9a2e5f1abed2a9ab0a3a52704e5dc37d15ecf0d0", (
        ("LICENSE.txt", "e993b0180d9c40bca6ed2be07fdcc7d7"),
        ("README.txt", "986c27626210b172d3cea5379886a1fe"),
        ("sl_sst-ud-dev.conllu", "7847243319a3b6339d64203fcab4b085"),
        ("sl_sst-ud-test.conllu", "4ba5237f9b5c8c87a5fbdefab8a8546f"),
        ("sl_sst-ud-train.conllu", "5b3975cb058bf056e619c12121a3c632"),
        ("stats.xml", "545b06d26aeca28c0257aed7bdc4f416"),
    )),
    ("UD_Spanish-GSD", "r1.4", "16c3de901f568a05df07c1f4b1bfbd90d6614b45", (
        ("LICENSE.txt", "a34343de45475e20bc709f75bb67555f"),
        ("README.txt", "5eb7ecd8998b7b70e4d889af46b98ce3"),
        ("es-ud-dev.conllu", "d2a9862ba1c25e396c8258ee863191b9"),
        ("es-ud-test.conllu", "c16be19f33cec4f9376e740fd00f18e9"),
        ("stats.xml", "e29d7365fda8b7bf978fbe7c49740ca9"),
    )),
    ("UD_Spanish-GSD", "r2.16", "57c045644664e5c1e169263cc4e3b95e40c078ba", (
        ("LICENSE.txt", "2b2b7eee1ec4300ecf1cf67daf86272b"),
        ("README.md", "8e07f23a3985e9c5d4a895542f7704b0"),
        ("es_gsd-ud-dev.conllu", "1ebaad910aec27306b6a5d124de6bb73"),
        ("es_gsd-ud-test.conllu", "bb70f0545e0b6aad7b9bbd2ccffcf126"),
        ("stats.xml", "7d8fb78059baf730bf06f0095a81e1aa"),
    )),
)

# Twitter POS: (path under data/twpos-data-v0.3/, md5); each goes to twitter_pos/<base name>.
_TWPOS_REPO = "brendano/ark-tweet-nlp"
_TWPOS_COMMIT = "72755ccd1b29ba8e1dbbb49efe57ba9723c0013b"
_TWPOS_DIR = "data/twpos-data-v0.3"
_TWPOS_FILES = (
    ("README.txt", "51a4eaef9965c3dec484ce95f4c3256f"),
    ("daily547.conll", "6a11405d3c94d22679f873cccede581c"),
    ("oct27.conll", "c2379911ec06b8378d939116d46a15d5"),
    ("oct27.splits/oct27.dev", "df9f313212e111ac9edcc563ee423faf"),
    ("oct27.splits/oct27.test", "0c28e1b3174358351a55c0393a387082"),
    ("oct27.splits/oct27.train", "cdd3cc7b3701daf42c94da5eb9baae63"),
    ("oct27.splits/oct27.traindev", "4f47ed14c60a2a22ec1c22c72ad5f906"),
    ("oct27.splits/splits.txt", "1ae75b63907c1213ede58e0ccddbc2d1"),
)

# TweetEval: (path under datasets/, md5); each goes to twitter_unlabeled/tweeteval/<same path>.
_TWEETEVAL_REPO = "cardiffnlp/tweeteval"
_TWEETEVAL_COMMIT = "4fbd22cd78421f05b1ecdb4fc5725bc7a7bd8f66"
_TWEETEVAL_FILES = (
    ("README.txt", "a34d397077c57c05297c46fe5a7e0cbc"),
    ("emoji/train_text.txt", "da7bad7867f33c3a90a67f2b50818975"),
    ("emoji/val_text.txt", "526c5e39cf6d3c512e19d46f3fdd26d1"),
)


def _build_entries() -> tuple[Entry, ...]:
    """Expand the compact tables above into one :class:`Entry` per file."""
    ud = [
        Entry("ud", f"ud/{tb}/{tag}/{name}", f"UniversalDependencies/{tb}", commit, name, md5)
        for tb, tag, commit, files in _UD_FOLDERS
        for name, md5 in files
    ]
    twitter = [
        Entry("twitter", f"twitter_pos/{Path(src).name}", _TWPOS_REPO, _TWPOS_COMMIT,
              f"{_TWPOS_DIR}/{src}", md5)
        for src, md5 in _TWPOS_FILES
    ]
    tweeteval = [
        Entry("twitter_unlabeled", f"twitter_unlabeled/tweeteval/{src}", _TWEETEVAL_REPO,
              _TWEETEVAL_COMMIT, f"datasets/{src}", md5)
        for src, md5 in _TWEETEVAL_FILES
    ]
    return (*ud, *twitter, *tweeteval)


ENTRIES: tuple[Entry, ...] = _build_entries()
"""Every file :func:`fetch_all` can download, in group order."""


# --- Downloading ----------------------------------------------------------------------------


def select_entries(
    groups: Iterable[str] | None = None, entries: Sequence[Entry] = ENTRIES
) -> list[Entry]:
    """The entries of ``groups`` (all groups when None), in table order.

    Raises ValueError for a group name not in :data:`GROUPS`.
    """
    wanted = set(GROUPS if groups is None else groups)
    unknown = wanted.difference(GROUPS)
    if unknown:
        raise ValueError(f"unknown dataset group(s) {sorted(unknown)}; choose from {GROUPS}")
    return [entry for entry in entries if entry.group in wanted]


def file_md5(path: str | Path) -> str:
    """The hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _is_transient(exc: Exception) -> bool:
    """Whether a failed download is worth retrying (server trouble, timeouts, dropped links)."""
    if isinstance(exc, HTTPError):
        return exc.code == 429 or exc.code >= 500
    if isinstance(exc, URLError):
        return not isinstance(exc.reason, FileNotFoundError)
    return True


def _download_once(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``dest``; move it into place if md5 matches.

    The temporary file is removed on any failure, so ``dest`` is either absent, untouched, or
    the verified file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    digest = hashlib.md5()
    try:
        with urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ChecksumError(dest, md5, digest.hexdigest())
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def download(
    url: str,
    dest: str | Path,
    md5: str,
    *,
    timeout: float = TIMEOUT_S,
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
) -> None:
    """Download ``url`` to ``dest`` and verify its md5, retrying transient network errors.

    Waits ``backoff``, ``2 * backoff``, ... seconds between the ``retries`` extra attempts.
    Raises :class:`ChecksumError` on a md5 mismatch (not retried) and :class:`DownloadError`
    on a permanent error or when the retries run out.
    """
    for attempt in range(retries + 1):
        try:
            _download_once(url, Path(dest), md5, timeout)
            return
        except (URLError, HTTPException, TimeoutError, ConnectionError) as exc:
            if attempt == retries or not _is_transient(exc):
                raise DownloadError(f"{url}: {exc}") from exc
            delay = backoff * 2**attempt
            log.warning("%s: %s; retrying in %.0f s", url, exc, delay)
            time.sleep(delay)


def fetch_entry(
    entry: Entry,
    root: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    *,
    timeout: float = TIMEOUT_S,
    retries: int = RETRIES,
) -> bool:
    """Make ``root/entry.dest`` the verified file; True if downloaded, False if already there."""
    dest = Path(root, entry.dest)
    if dest.is_file() and file_md5(dest) == entry.md5:
        return False
    download(entry.url(base_url), dest, entry.md5, timeout=timeout, retries=retries)
    return True


def fetch_all(
    root: str | Path,
    groups: Iterable[str] | None = None,
    *,
    entries: Sequence[Entry] = ENTRIES,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = TIMEOUT_S,
    retries: int = RETRIES,
) -> dict[str, Counter]:
    """Fetch every entry of ``groups`` (all when None) into ``root``.

    Returns, per group with entries, a Counter of files ``"fetched"`` and ``"skipped"``.
    """
    summary: dict[str, Counter] = {}
    for entry in select_entries(groups, entries):
        fetched = fetch_entry(entry, root, base_url, timeout=timeout, retries=retries)
        log.log(logging.INFO if fetched else logging.DEBUG,
                "%s %s", "fetched" if fetched else "present", entry.dest)
        summary.setdefault(entry.group, Counter())["fetched" if fetched else "skipped"] += 1
    return summary


def format_summary(summary: dict[str, Counter]) -> str:
    """One line per group: how many files were fetched and how many were already present."""
    return "\n".join(
        f"{group}: {counts['fetched']} fetched, {counts['skipped']} already present (skipped)"
        for group, counts in summary.items()
    )


def licensed_data_help(root: str | Path) -> str:
    """How to supply the licensed datasets (CoNLL-2003, WSJ) that are not downloaded."""
    root = Path(root)
    return (
        "Not downloaded (licensed data; supply your own copy):\n"
        f"  CoNLL-2003 English NER (Reuters RCV1): copy or link eng.train, eng.testa, eng.testb"
        f" to {root / 'conll2003'}/\n"
        f"  Penn Treebank WSJ 00-24 gold POS (LDC99T42): copy or link the `word TAG` file"
        f" to {root / 'ptb' / 'wsj_full' / 'enw.gold'}\n"
        "  or pass --data-root DIR / set $VSL_DATA_ROOT to a folder with that layout."
    )
