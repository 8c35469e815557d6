"""Tests of vsl.data.readers and vsl.data.tagging on hand-written files and on the real corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsl.data.readers import (READERS, Sentence, read_conll2003, read_conllu, read_ptb, read_raw,
                              read_twitter, tokenize_treebank, tokenize_tweet)
from vsl.data.tagging import iob1_to_bioes, normalize_word
from vsl.errors import DataFormatError, VslError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def conllu_line(token_id: str, form: str, upos: str, n_columns: int = 10) -> str:
    columns = [token_id, form, form.lower(), upos, "_", "_", "0", "root", "_", "_"][:n_columns]
    return "\t".join(columns)


def as_pairs(sentences):
    return [(list(s.words), None if s.tags is None else list(s.tags)) for s in sentences]


# --- CoNLL-U -------------------------------------------------------------------------------

CONLLU = "\n".join([
    "# newdoc id = doc1",
    "# sent_id = 1",
    "# text = Don't stop.",
    conllu_line("1-2", "Don't", "_"),
    conllu_line("1", "Do", "AUX"),
    conllu_line("2", "n't", "PART"),
    conllu_line("3", "stop", "VERB"),
    conllu_line("3.1", "go", "VERB"),
    conllu_line("4", ".", "PUNCT"),
    "",
    "# sent_id = 2",
    "# text = Yes 2 times!",
    conllu_line("1", "Yes", "INTJ"),
    conllu_line("2", "2", "NUM"),
    conllu_line("3", "times", "NOUN"),
    conllu_line("4", "!", "PUNCT"),
    "",
]) + "\n"

CONLLU_EXPECTED = [
    (["Do", "n't", "stop", "."], ["AUX", "PART", "VERB", "PUNCT"]),
    (["Yes", "2", "times", "!"], ["INTJ", "NUM", "NOUN", "PUNCT"]),
]


def test_conllu_skips_comments_ranges_and_empty_nodes(tmp_path):
    sentences = read_conllu(write(tmp_path, "a.conllu", CONLLU))
    assert as_pairs(sentences) == CONLLU_EXPECTED
    assert all(isinstance(s, Sentence) for s in sentences)


def test_conllu_without_trailing_blank_line(tmp_path):
    # No blank line after the last sentence, and no final newline at all.
    text = CONLLU.rstrip("\n")
    assert not text.endswith("\n")
    assert as_pairs(read_conllu(write(tmp_path, "b.conllu", text))) == CONLLU_EXPECTED
    # A final newline but no blank line.
    assert as_pairs(read_conllu(write(tmp_path, "c.conllu", text + "\n"))) == CONLLU_EXPECTED


def test_conllu_crlf_line_endings(tmp_path):
    path = write(tmp_path, "crlf.conllu", CONLLU.replace("\n", "\r\n"))
    assert b"\r\n" in path.read_bytes()
    sentences = read_conllu(path)
    assert as_pairs(sentences) == CONLLU_EXPECTED
    assert not any("\r" in w or "\r" in t for s in sentences for w, t in zip(s.words, s.tags))


def test_conllu_several_blank_lines_between_sentences(tmp_path):
    path = write(tmp_path, "gaps.conllu", "\n\n" + CONLLU.replace("\n\n", "\n\n\n\n"))
    assert as_pairs(read_conllu(path)) == CONLLU_EXPECTED


LINE_ENDINGS = {"bom + lf": ("\ufeff", "\n"), "bom + crlf": ("\ufeff", "\r\n"), "cr only": ("", "\r"),
                "bom + cr only": ("\ufeff", "\r")}


@pytest.mark.parametrize("ending", LINE_ENDINGS)
@pytest.mark.parametrize("reader, text", [
    (read_conllu, CONLLU),
    (read_twitter, "@bob\t@\nlol\t!\n\nok\tA\n"),
    (read_ptb, "The DT\ndog NN\n\nIt PRP\n"),
    (read_conll2003, "-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP I-PER\n"),
    (read_raw, "so happy today\n\nlol ok\n"),
])
def test_a_byte_order_mark_and_any_line_ending_read_as_plain_lf(tmp_path, reader, text, ending):
    """A BOM is not a token and a CR-only file is not one sentence: every file reads as its plain
    LF-ended twin does."""
    mark, newline = LINE_ENDINGS[ending]
    plain = reader(write(tmp_path, "plain", text))
    assert reader(write(tmp_path, "other", mark + text.replace("\n", newline))) == plain


# --- Twitter, PTB, CoNLL-2003, raw ---------------------------------------------------------

def test_read_twitter(tmp_path):
    path = write(tmp_path, "tw.conll",
                 "@bob\t@\nlol\t!\n:)\tE\n\nhttp://t.co/x1\tU\n#win\t#\n2day\tR\n")
    assert as_pairs(read_twitter(path)) == [
        (["@bob", "lol", ":)"], ["@", "!", "E"]),
        (["http://t.co/x1", "#win", "2day"], ["U", "#", "R"]),
    ]


def test_read_twitter_keeps_spaces_inside_tokens_and_crlf(tmp_path):
    path = write(tmp_path, "tw.conll", "a\tD\r\nb c\tN\r\n\r\nok\tA\r\n")
    assert as_pairs(read_twitter(path)) == [(["a", "b c"], ["D", "N"]), (["ok"], ["A"])]


def test_read_ptb(tmp_path):
    path = write(tmp_path, "enw.gold", "The DT\ndog NN\nbarks VBZ\n. .\n\nIt PRP\nran VBD\n\n")
    assert as_pairs(read_ptb(path)) == [
        (["The", "dog", "barks", "."], ["DT", "NN", "VBZ", "."]),
        (["It", "ran"], ["PRP", "VBD"]),
    ]


CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Bayern NNP I-NP I-ORG
Munich NNP I-NP B-ORG
in IN I-PP O
1996 CD I-NP O
"""


def test_read_conll2003_skips_docstart_and_converts_to_bioes(tmp_path):
    sentences = read_conll2003(write(tmp_path, "eng.train", CONLL2003))
    assert as_pairs(sentences) == [
        (["EU", "rejects", "German", "call"], ["S-ORG", "O", "S-MISC", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "E-PER"]),
        (["Bayern", "Munich", "in", "1996"], ["S-ORG", "S-ORG", "O", "O"]),
    ]
    assert all("-DOCSTART-" not in s.words for s in sentences)


@pytest.mark.parametrize("iob1, bioes", [
    (["I-PER", "I-PER"], ["B-PER", "E-PER"]),
    (["I-LOC"], ["S-LOC"]),
    (["I-ORG", "B-ORG"], ["S-ORG", "S-ORG"]),
    (["I-PER", "I-LOC"], ["S-PER", "S-LOC"]),
    (["O", "B-LOC"], ["O", "S-LOC"]),
    (["O", "B-LOC", "I-LOC"], ["O", "B-LOC", "E-LOC"]),
    (["I-MISC", "I-MISC", "I-MISC", "O", "I-MISC"], ["B-MISC", "I-MISC", "E-MISC", "O", "S-MISC"]),
    (["I-ORG", "I-ORG", "B-ORG", "I-ORG"], ["B-ORG", "E-ORG", "B-ORG", "E-ORG"]),
    (["O", "O"], ["O", "O"]),
    ([], []),
])
def test_iob1_to_bioes(iob1, bioes):
    assert iob1_to_bioes(iob1) == tuple(bioes)


@pytest.mark.parametrize("bad", ["E-PER", "S-LOC", "X", "I-", "B", "PER", "i-PER"])
def test_iob1_to_bioes_rejects_non_iob1_tags(bad):
    with pytest.raises(ValueError, match="IOB1"):
        iob1_to_bioes(["O", bad])


def test_read_conll2003_invalid_tag_names_file(tmp_path):
    path = write(tmp_path, "bad.ner", "EU NNP I-NP I-ORG\n\nPeter NNP I-NP E-PER\n")
    with pytest.raises(DataFormatError) as info:
        read_conll2003(path)
    assert str(path) in str(info.value)
    assert "E-PER" in str(info.value)


def test_read_conll2003_invalid_tag_names_line(tmp_path):
    path = write(tmp_path, "bad.ner", "EU NNP I-NP I-ORG\n\nPeter NNP I-NP I-PER\nSmith NNP I-NP E-PER\n")
    with pytest.raises(DataFormatError) as info:
        read_conll2003(path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: ")


def test_read_raw_whitespace(tmp_path):
    path = write(tmp_path, "raw.txt", "a b  c\n\n   \nd\te\n")
    sentences = read_raw(path)
    assert as_pairs(sentences) == [(["a", "b", "c"], None), (["d", "e"], None)]


def test_read_raw_tweet_tokenizer_keeps_twitter_tokens_whole(tmp_path):
    tweet = "@user I'm at https://t.co/Ab12xYz now #blessed"
    path = write(tmp_path, "tweets.txt", f"{tweet}\n\n\nsecond tweet !!\n")
    sentences = read_raw(path, tokenizer="tweet")
    assert len(sentences) == 2  # blank lines are not sentences
    assert list(sentences[0].words) == ["@user", "I'm", "at", "https://t.co/Ab12xYz", "now", "#blessed"]
    assert list(sentences[1].words) == ["second", "tweet", "!", "!"]
    assert all(s.tags is None for s in sentences)
    assert tokenize_tweet("won't :)") == ["won't", ":)"]


def test_read_raw_unknown_tokenizer(tmp_path):
    with pytest.raises(KeyError):
        read_raw(write(tmp_path, "raw.txt", "a\n"), tokenizer="nope")


def test_normalize_word():
    assert normalize_word("Route66") == "Route00"
    assert normalize_word("12:30PM") == "00:00PM"
    assert normalize_word("iPhone4S") == "iPhone0S"
    assert normalize_word("HeLLo") == "HeLLo"
    assert normalize_word("") == ""


# --- malformed input ----------------------------------------------------------------------

GOOD_CONLLU = conllu_line("1", "Hi", "INTJ") + "\n" + conllu_line("2", "there", "ADV") + "\n"

# (reader, file content, line to blame)
MALFORMED = {
    "conllu-columns": (read_conllu, "# c\n" + GOOD_CONLLU + "\n" + conllu_line("1", "x", "X", 9) + "\n", 5),
    "conllu-no-form": (read_conllu, GOOD_CONLLU + "\n# c\n" + conllu_line("1", "", "NOUN") + "\n", 5),
    "conllu-no-upos": (read_conllu, GOOD_CONLLU + conllu_line("3", "x", "_") + "\n", 3),
    "conllu-bad-id": (read_conllu, GOOD_CONLLU + conllu_line("x3", "x", "X") + "\n", 3),
    "conllu-bad-utf8": (read_conllu, GOOD_CONLLU.encode() + b"\n" + conllu_line("1", "caf\xe9", "NOUN").encode("latin-1") + b"\n", 4),
    "twitter-columns": (read_twitter, "a\tD\nb\tN\n\nc\tN\textra\n", 4),
    "twitter-one-column": (read_twitter, "a\tD\nb\n", 2),
    "twitter-no-token": (read_twitter, "a\tD\n\nb\tN\n\tN\n", 4),
    "twitter-no-tag": (read_twitter, "a\tD\nb\t\n", 2),
    "twitter-bad-utf8": (read_twitter, b"a\tD\n\n\xff\xfe\tN\n", 3),
    "ptb-columns": (read_ptb, "The DT\ndog  NN\n", 2),
    "ptb-tab": (read_ptb, "The DT\n\ndog\tNN\n", 3),
    "ptb-no-token": (read_ptb, "The DT\n NN\n", 2),
    "ptb-bad-utf8": (read_ptb, b"The DT\n\n\n\x80 NN\n", 4),
    "conll2003-columns": (read_conll2003, "-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ O\n", 4),
    "conll2003-no-token": (read_conll2003, "EU NNP I-NP I-ORG\n NNP I-NP O\n", 2),
    "conll2003-bad-utf8": (read_conll2003, b"EU NNP I-NP I-ORG\n\nM\xc3\xbcller NNP I-NP I-PER\nK\xfcrz NNP I-NP I-PER\n", 4),
    "raw-bad-utf8": (read_raw, b"fine tweet\n\xc3\x28 broken\n", 2),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_line_is_named(tmp_path, case):
    reader, content, line = MALFORMED[case]
    path = write(tmp_path, f"{case}.txt", content)
    with pytest.raises(DataFormatError) as info:
        reader(path)
    err = info.value
    assert isinstance(err, VslError) and isinstance(err, ValueError)
    assert err.line == line
    assert str(err).startswith(f"{path}:{line}: ")
    assert err.path == str(path)


ALL_READERS = {**READERS, "raw": read_raw}


@pytest.mark.parametrize("name", sorted(ALL_READERS))
def test_empty_file_raises(tmp_path, name):
    path = write(tmp_path, f"empty.{name}", b"")
    with pytest.raises(DataFormatError) as info:
        ALL_READERS[name](path)
    assert info.value.line is None
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("name", sorted(ALL_READERS))
def test_blank_only_file_raises(tmp_path, name):
    path = write(tmp_path, f"blank.{name}", "\n  \n\r\n")
    with pytest.raises(DataFormatError) as info:
        ALL_READERS[name](path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", sorted(ALL_READERS))
def test_missing_file_raises(tmp_path, name):
    path = tmp_path / "does-not-exist"
    with pytest.raises(DataFormatError) as info:
        ALL_READERS[name](path)
    assert str(path) in str(info.value)


def test_conllu_only_ranges_is_an_error(tmp_path):
    path = write(tmp_path, "r.conllu", GOOD_CONLLU + "\n# c\n" + conllu_line("1-2", "del", "_") + "\n")
    with pytest.raises(DataFormatError) as info:
        read_conllu(path)
    assert info.value.line == 4


def test_docstart_only_conll2003_is_an_error(tmp_path):
    path = write(tmp_path, "d.ner", "-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(DataFormatError, match="no sentences"):
        read_conll2003(path)


# --- the real corpora ---------------------------------------------------------------------

def counts(sentences):
    return len(sentences), sum(len(s) for s in sentences)


@pytest.mark.parametrize("reader, relative, n_sentences, n_tokens, n_tags", [
    (read_twitter, "twitter_pos/oct27.traindev", 1327, 19442, 25),
    (read_twitter, "twitter_pos/daily547.conll", 547, 7707, 25),
    (read_conllu, "ud/UD_English-EWT/r2.16/en_ewt-ud-train.conllu", 12544, 204577, 17),
    (read_conllu, "ud/UD_Portuguese-Bosque/r2.16/pt_bosque-ud-train.conllu", 7018, 171776, 17),
])
def test_real_file_counts(reader, relative, n_sentences, n_tokens, n_tags):
    sentences = reader(DATA / relative)
    assert counts(sentences) == (n_sentences, n_tokens)
    assert len({t for s in sentences for t in s.tags}) == n_tags
    assert all(len(s.tags) == len(s.words) > 0 for s in sentences)


@pytest.fixture(scope="module")
def eng_train():
    return read_conll2003(DATA / "conll2003" / "eng.train")


def test_conll2003_train_counts(eng_train):
    assert counts(eng_train) == (14041, 203621)
    tags = {t for s in eng_train for t in s.tags}
    assert tags == {"O"} | {f"{p}-{e}" for p in "BIES" for e in ("PER", "LOC", "ORG", "MISC")}


def test_conll2003_first_sentence(eng_train):
    first = eng_train[0]
    assert first.words == ("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", ".")
    assert first.tags == ("S-ORG", "O", "S-MISC", "O", "O", "O", "S-MISC", "O", "O")
    assert eng_train[1] == Sentence(("Peter", "Blackburn"), ("B-PER", "E-PER"))


def test_wsj_counts():
    sentences = read_ptb(DATA / "ptb" / "wsj_full" / "enw.gold")
    assert counts(sentences) == (49208, 1173766)
    assert len({t for s in sentences for t in s.tags}) == 45
    # Readers keep words as written: digits are not normalised.
    assert any(any(c.isdigit() and c != "0" for c in w) for s in sentences[:200] for w in s.words)


def test_tweet_tokenizer_drops_leftover_variation_selectors():
    from vsl.data.readers import tokenize_tweet

    assert tokenize_tweet("love it \ufe0f \ufe0f #blessed") == ["love", "it", "#blessed"]
    assert tokenize_tweet("so\u200dgood") == ["sogood"]


def test_treebank_tokenizer_splits_news_text_as_conll2003_and_wsj_are_split(tmp_path):
    assert tokenize_treebank("Exports rose 5.93 pct, U.S. officials don't say.") == \
        ["Exports", "rose", "5.93", "pct", ",", "U.S.", "officials", "do", "n't", "say", "."]
    path = tmp_path / "news.txt"
    path.write_text("Prices fell, traders said.\n", encoding="utf-8")
    assert read_raw(path, "treebank") == [Sentence(("Prices", "fell", ",", "traders", "said", "."))]
