"""scripts/tag.py and its text I/O: every input sentence comes out once, in order, with one tag
per token, for a BiGRU/VSL run and an HMM run; empty lines, unknown words and characters and a
1,500-token sentence included."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hmm.config import HmmConfig
from hmm.recipe import run as run_hmm
from vsl.config import RunConfig
from vsl.data.readers import tokenize_whitespace
from vsl.data.textio import read_sentences, utf8_lines, write_tagged
from vsl.errors import DataFormatError
from vsl.recipe import run as run_vsl

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tag.py"
LONG = " ".join(["the", "cat", "sat", "on", "mat", "."] * 250)  # 1,500 tokens
TEXT = f"I love this !\n\nUnseenwordxyz with ✈ and ℤ chars\n{LONG}\n   \nlast one 2026\n"
LENGTHS = [4, 0, 6, 1500, 0, 3]


def _tag(model: Path, fmt: str, text: str = TEXT, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--model", str(model), "--input", "-", "--format", fmt,
                           "--chunk", "2", *extra], input=text.encode("utf-8"), capture_output=True, timeout=300)


def _check_all_formats(model: Path, allowed_tags) -> None:
    done = _tag(model, "json")
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["id"] for r in records] == list(range(1, 7))
    assert [len(r["words"]) for r in records] == LENGTHS == [len(r["tags"]) for r in records]
    assert records[2]["words"][0] == "Unseenwordxyz" and records[5]["words"][-1] == "2026"  # words as given
    assert all(tag in allowed_tags for r in records for tag in r["tags"])

    conll = _tag(model, "conll").stdout.decode().split("\n\n")[:-1]
    assert [block.splitlines()[0] for block in conll] == [f"# sent_id = {i}" for i in range(1, 7)]
    assert [len(block.splitlines()) - 1 for block in conll] == LENGTHS
    tsv = _tag(model, "tsv").stdout.decode().splitlines()
    assert tsv[0] == "sentence\ttoken\tword\ttag" and len(tsv) == 1 + sum(LENGTHS)
    rows = [r["words"][i] + "\t" + r["tags"][i] for r in records for i in range(len(r["words"]))]
    assert [line.split("\t", 2)[2] for line in tsv[1:]] == rows


def test_tag_with_a_bigru_run(tmp_path, twitter_folder):
    out = tmp_path / "run"
    config = RunConfig(data=str(twitter_folder), format="twitter", word_dim=16, char_dim=8, char_hidden=8,
                       hidden=16, max_steps=20, eval_every=10, skipgram_epochs=1)
    run_vsl(config, out, progress=False)
    tags = json.loads((out / "vocab.json").read_text())["tags"]["items"]
    _check_all_formats(out, set(tags))

    conll_input = "# sent_id = 1\n#tbt\t#\nHello\tX\nworld\tY\n\nsecond\n"
    done = _tag(out, "json", conll_input, "--input-format", "conll")
    assert [json.loads(line)["words"] for line in done.stdout.decode().splitlines()] == \
        [["#tbt", "Hello", "world"], ["second"]]
    raw = subprocess.run([sys.executable, str(SCRIPT), "--model", str(out), "--input", "-"],
                         input=b"fine\n\xff bad\n", capture_output=True)
    assert raw.returncode == 2 and b"<stdin>:2: invalid UTF-8" in raw.stderr and b"Traceback" not in raw.stderr
    missing = _tag(tmp_path / "nowhere", "json")
    assert missing.returncode == 2 and b"config.json: missing" in missing.stderr


def test_tag_with_an_hmm_run(tmp_path, twitter_folder):
    out = tmp_path / "hmm"
    run_hmm(HmmConfig(data=str(twitter_folder), format="twitter", model="hmm", states=5, epochs=2), out,
            progress=False)
    _check_all_formats(out, {str(k) for k in range(5)})


def test_read_sentences_formats_and_errors():
    def read(text: str, fmt: str):
        return list(read_sentences(utf8_lines(io.BytesIO(text.encode()), "in.txt"), fmt, tokenize_whitespace, "in.txt"))

    assert read("a b\n\nc\n", "text") == [["a", "b"], [], ["c"]]
    assert read("a X\nb Y\n\n\n\nc Z", "conll") == [["a", "b"], ["c"]]
    tweets = "#justsaying\t#\nok\t!\n\n# #\n@me @\n"  # hashtag and "#" tokens, as in daily547 and enw.gold
    assert read(tweets, "conll") == [["#justsaying", "ok"], ["#", "@me"]]
    assert read("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n", "conll") == [["EU"]]
    tagged = io.StringIO()
    write_tagged(tagged, "conll", 1, [["#tbt", "#"], ["x"]], [["#", "#"], ["N"]])
    assert read(tagged.getvalue(), "conll") == [["#tbt", "#"], ["x"]]  # the output reads back
    conllu = "# text = ab c\n1-2\tab\t_\n1\ta\t_\n2\tb\t_\n2.1\tnull\t_\n3\tc\t_\n"
    assert read(conllu, "conllu") == [["a", "b", "c"]]
    with pytest.raises(DataFormatError, match=r"^in.txt:2: token id 'x' is not a number"):
        read("1\ta\nx\tb\n", "conllu")
    with pytest.raises(DataFormatError, match=r"^in.txt:3: invalid UTF-8"):
        list(utf8_lines(io.BytesIO(b"ok\nok\n\xc3(\n"), "in.txt"))


@pytest.mark.parametrize("mark, newline", [("\ufeff", "\n"), ("", "\r"), ("\ufeff", "\r\n")])
def test_tagging_input_drops_a_byte_order_mark_and_splits_any_line_ending(mark, newline):
    text = "I love this !\n\nlast one\n"
    plain = list(read_sentences(utf8_lines(io.BytesIO(text.encode()), "in"), "text", tokenize_whitespace, "in"))
    other = (mark + text.replace("\n", newline)).encode()
    assert list(read_sentences(utf8_lines(io.BytesIO(other), "in"), "text", tokenize_whitespace, "in")) == plain
    assert plain == [["I", "love", "this", "!"], [], ["last", "one"]]


def test_write_tagged_keeps_empty_sentences_visible():
    out = io.StringIO()
    write_tagged(out, "conll", 7, [["a"], []], [["N"], []])
    assert out.getvalue() == "# sent_id = 7\na\tN\n\n# sent_id = 8\n\n"
    with pytest.raises(ValueError):
        write_tagged(io.StringIO(), "json", 1, [["a"]], [])
