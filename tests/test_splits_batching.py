"""Tests of vsl.data.splits, vsl.data.vocab and vsl.data.batching."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from vsl.data.batching import Batch, BatchStream, Collator, bucketed_order, iterate_batches, random_order
from vsl.data.readers import Sentence, read_twitter
from vsl.data.registry import Corpus, DatasetSpec
from vsl.data.splits import make_split, split_train
from vsl.data.vocab import PAD, UNK, Vocabularies, Vocabulary, build_vocabularies
from vsl.errors import SettingError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"


def distinct_train(n: int = 200) -> list[Sentence]:
    """``n`` distinct tagged sentences; sentence ``i`` starts with the word ``w<i>``."""
    return [Sentence((f"w{i}",) + ("x",) * (i % 5), ("N",) * (1 + i % 5)) for i in range(n)]


def index_of(sentence: Sentence) -> int:
    return int(sentence.words[0][1:])


# --- split_train --------------------------------------------------------------------------

def test_split_sizes_disjoint_and_in_file_order():
    train = distinct_train(200)
    labeled, unlabeled = split_train(train, 0.1, 0.5, seed=0)
    assert len(labeled) == 20 and len(unlabeled) == 100
    labeled_ids = [index_of(s) for s in labeled]
    unlabeled_ids = [index_of(s) for s in unlabeled]
    assert not set(labeled_ids) & set(unlabeled_ids)
    assert labeled_ids == sorted(labeled_ids) and unlabeled_ids == sorted(unlabeled_ids)
    assert len(set(labeled_ids)) == 20 and len(set(unlabeled_ids)) == 100
    assert all(s == train[i] for s, i in zip(labeled, labeled_ids))
    assert all(s.tags is None and s.words == train[i].words for s, i in zip(unlabeled, unlabeled_ids))


def test_split_same_seed_same_split_other_seed_other_split():
    train = distinct_train(200)
    assert split_train(train, 0.2, 0.3, seed=7) == split_train(train, 0.2, 0.3, seed=7)
    assert split_train(train, 0.2, 0.3, seed=7)[0] != split_train(train, 0.2, 0.3, seed=8)[0]
    assert split_train(train, 0.2, 0.3, seed=7)[1] != split_train(train, 0.2, 0.3, seed=8)[1]


@pytest.mark.parametrize("labeled_fraction, unlabeled_fraction, n_labeled, n_unlabeled", [
    (1.0, 0.0, 200, 0),
    (0.5, 0.5, 100, 100),
    (0.001, 0.0, 1, 0),  # at least one labeled sentence
    (0.25, 0.75, 50, 150),
])
def test_split_sizes(labeled_fraction, unlabeled_fraction, n_labeled, n_unlabeled):
    labeled, unlabeled = split_train(distinct_train(200), labeled_fraction, unlabeled_fraction, seed=1)
    assert (len(labeled), len(unlabeled)) == (n_labeled, n_unlabeled)
    assert not {index_of(s) for s in labeled} & {index_of(s) for s in unlabeled}


@pytest.mark.parametrize("labeled_fraction, unlabeled_fraction", [
    (0.6, 0.5), (1.0, 0.1), (0.0, 0.5), (-0.1, 0.5), (1.5, 0.0), (0.5, -0.1), (0.5, 1.5)])
def test_split_rejects_bad_fractions(labeled_fraction, unlabeled_fraction):
    with pytest.raises(SettingError, match="labeled_fraction"):
        split_train(distinct_train(20), labeled_fraction, unlabeled_fraction, seed=0)


def test_make_split_uses_spec_defaults_and_appends_raw():
    train = distinct_train(100)
    raw = [Sentence(("raw", str(i))) for i in range(7)]
    spec = DatasetSpec("toy", "twitter", "pos", {}, labeled_fraction=0.1, unlabeled_fraction=0.3)
    corpus = Corpus(spec, train, [], [], raw=raw)
    split = make_split(corpus, seed=0)
    assert len(split.labeled) == 10
    assert split.from_train == 30
    assert len(split.unlabeled) == 37 and split.unlabeled[30:] == raw
    assert make_split(corpus, seed=0, raw=[]).unlabeled == split.unlabeled[:30]
    assert len(make_split(corpus, labeled_fraction=0.5, unlabeled_fraction=0.0).labeled) == 50


# --- Vocabulary ---------------------------------------------------------------------------

def test_vocabulary_specials_first_then_frequency():
    vocab = Vocabulary.from_counts(Counter({"b": 3, "a": 3, "c": 5, "d": 1}))
    assert vocab.items == [PAD, UNK, "c", "a", "b", "d"]
    assert [vocab.index(w) for w in vocab.items] == list(range(6))
    assert vocab.index(PAD) == 0 and vocab.index(UNK) == 1
    assert Vocabulary.from_counts(Counter({"b": 3, "a": 3, "c": 5, "d": 1}), min_count=2).items == [PAD, UNK, "c", "a", "b"]
    assert len(vocab) == 6 and "c" in vocab and "zzz" not in vocab


def test_vocabulary_unknown_maps_to_unk():
    vocab = Vocabulary(["x", "y", "x"])
    assert vocab.items == [PAD, UNK, "x", "y"]
    assert vocab.encode(["y", "never-seen", "x"]) == [3, 1, 2]
    assert vocab.decode([3, 1, 2]) == ["y", UNK, "x"]


def test_closed_vocabulary_raises_key_error():
    tags = Vocabulary(["N", "V"], specials=())
    assert tags.items == ["N", "V"] and tags.unk_id is None
    assert tags.encode(["V", "N"]) == [1, 0]
    with pytest.raises(KeyError):
        tags.index("ADJ")


@pytest.mark.parametrize("vocab", [
    Vocabulary(["x", "y"]),
    Vocabulary(["N", "V", "A"], specials=()),
    Vocabulary([], specials=("<s>",)),
])
def test_vocabulary_dict_round_trip(vocab):
    data = json.loads(json.dumps(vocab.to_dict()))
    again = Vocabulary.from_dict(data)
    assert again == vocab
    assert again.items == vocab.items and again.specials == vocab.specials
    assert again.unk_id == vocab.unk_id


def test_vocabularies_dict_round_trip():
    vocabs = build_vocabularies([Sentence(("a", "bc"), ("N", "V"))])
    again = Vocabularies.from_dict(json.loads(json.dumps(vocabs.to_dict())))
    assert (again.words, again.chars, again.tags) == (vocabs.words, vocabs.chars, vocabs.tags)


LABELED = [Sentence(("the", "cat", "sat"), ("D", "N", "V")), Sentence(("the", "dog"), ("D", "N"))]
UNLABELED = [Sentence(("a", "cow"))]
EVALUATION = [Sentence(("the", "zebra", "ran", "quickly"), ("D", "N", "V", "ADV"))]


def test_build_vocabularies_without_known_words():
    with pytest.warns(UserWarning, match=r"no labeled training sentence has, .*: ADV \(1\); the tagger can never"):
        vocabs = build_vocabularies(LABELED, UNLABELED, EVALUATION)
    assert vocabs.words.items == [PAD, UNK, "the", "a", "cat", "cow", "dog", "sat"]
    assert vocabs.tags.items == ["D", "N", "V", "ADV"]  # labeled + evaluation, no specials
    assert vocabs.tags.specials == ()
    assert set(vocabs.chars.items[2:]) == set("thecatsdogacow")
    assert "z" not in vocabs.chars


def test_build_vocabularies_adds_known_evaluation_words_only():
    with pytest.warns(UserWarning, match="ADV"):
        vocabs = build_vocabularies(LABELED, UNLABELED, EVALUATION, known_words={"zebra", "quickly", "unused"})
    assert "zebra" in vocabs.words and "quickly" in vocabs.words
    assert "ran" not in vocabs.words and "unused" not in vocabs.words
    assert vocabs.words.index("ran") == vocabs.words.unk_id
    assert "z" not in vocabs.chars  # characters come from the training text only
    assert vocabs.words.items[2] == "the"


def test_no_warning_when_training_has_every_evaluation_tag_or_has_no_tags(recwarn):
    build_vocabularies(LABELED, UNLABELED, [Sentence(("a", "dog"), ("D", "N"))])
    build_vocabularies([], UNLABELED, EVALUATION)  # unsupervised: states, not tags, are learned
    assert not recwarn.list


def test_build_vocabularies_ignores_tags_of_unlabeled():
    unlabeled_with_tags = [Sentence(("x",), ("SECRET",))]
    vocabs = build_vocabularies(LABELED, unlabeled_with_tags)
    assert "SECRET" not in vocabs.tags and "x" in vocabs.words


# --- bucketed_order -----------------------------------------------------------------------

LENGTHS = np.random.default_rng(123).integers(1, 60, size=1003).tolist()


def flat(batches):
    return [i for batch in batches for i in batch]


@pytest.mark.parametrize("seed", [None, 0, 1])
@pytest.mark.parametrize("batch_size", [1, 16, 1003, 2000])
def test_bucketed_order_covers_every_index_once(seed, batch_size):
    rng = None if seed is None else np.random.default_rng(seed)
    batches = bucketed_order(LENGTHS, batch_size, rng, pool=4)
    assert sorted(flat(batches)) == list(range(len(LENGTHS)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert len(batches) == -(-len(LENGTHS) // batch_size)


def test_bucketed_order_without_rng_is_sorted_by_length():
    batches = bucketed_order(LENGTHS, 16, None)
    lengths = [LENGTHS[i] for i in flat(batches)]
    assert lengths == sorted(lengths)
    assert all(len(b) == 16 for b in batches[:-1])
    assert bucketed_order(LENGTHS, 16, None) == batches


def test_bucketed_order_with_rng_groups_similar_lengths():
    batches = bucketed_order(LENGTHS, 16, np.random.default_rng(5), pool=4)
    for batch in batches:
        lengths = [LENGTHS[i] for i in batch]
        assert lengths == sorted(lengths)
    spread = np.mean([max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in batches])
    shuffled = np.random.default_rng(5).permutation(len(LENGTHS))
    random_spread = np.mean([np.ptp(np.asarray(LENGTHS)[shuffled[i:i + 16]]) for i in range(0, len(LENGTHS), 16)])
    assert spread < random_spread / 3
    # The batches themselves are shuffled, not in length order.
    firsts = [LENGTHS[b[0]] for b in batches]
    assert firsts != sorted(firsts)


def test_bucketed_order_is_deterministic_given_the_seed():
    a = bucketed_order(LENGTHS, 16, np.random.default_rng(9))
    b = bucketed_order(LENGTHS, 16, np.random.default_rng(9))
    c = bucketed_order(LENGTHS, 16, np.random.default_rng(10))
    assert a == b and a != c


def test_bucketed_order_rejects_bad_batch_size():
    with pytest.raises(ValueError):
        bucketed_order(LENGTHS, 0, None)


def test_random_order_draws_batches_without_grouping_by_length():
    batches = random_order(len(LENGTHS), 16, np.random.default_rng(5))
    assert sorted(flat(batches)) == list(range(len(LENGTHS)))
    assert all(len(b) == 16 for b in batches[:-1]) and len(batches) == -(-len(LENGTHS) // 16)
    assert flat(batches) == np.random.default_rng(5).permutation(len(LENGTHS)).tolist()  # one permutation, cut
    assert random_order(len(LENGTHS), 16, np.random.default_rng(5)) == batches
    with pytest.raises(ValueError):
        random_order(10, 0, np.random.default_rng(0))


def test_batch_stream_takes_its_order_from_the_setting(tweets, vocabs):
    collate = Collator(vocabs)
    streams = {order: BatchStream(tweets, collate, 4, seed=3, order=order) for order in ("bucketed", "random")}
    first_epoch = {order: [next(stream).indices.tolist() for _ in range(-(-len(tweets) // 4))]
                   for order, stream in streams.items()}
    lengths = [len(s) for s in tweets]
    assert first_epoch["random"] == random_order(len(tweets), 4, np.random.default_rng([3, 0]))
    assert first_epoch["bucketed"] == bucketed_order(lengths, 4, np.random.default_rng([3, 0]))
    with pytest.raises(ValueError, match="batch order 'sorted'"):
        BatchStream(tweets, collate, 4, seed=3, order="sorted")


# --- Collator and iterate_batches ---------------------------------------------------------

@pytest.fixture(scope="module")
def tweets():
    return read_twitter(DATA / "twitter_pos" / "oct27.traindev")


@pytest.fixture(scope="module")
def vocabs(tweets):
    return build_vocabularies(tweets)


def check_batch(batch: Batch, sentences, indices, vocabs, with_tags=True):
    size, longest = len(sentences), max(len(s) for s in sentences)
    assert batch.words.shape == batch.mask.shape == batch.types.shape == (size, longest)
    assert batch.lengths.tolist() == [len(s) for s in sentences]
    assert batch.indices.tolist() == list(indices)
    assert batch.n_tokens == sum(len(s) for s in sentences)
    assert batch.mask.dtype == torch.bool
    assert torch.equal(batch.mask, torch.arange(longest)[None, :] < batch.lengths[:, None])
    assert not batch.words[~batch.mask].any()
    if with_tags:
        assert batch.tags.shape == (size, longest)
        assert not batch.tags[~batch.mask].any()
    else:
        assert batch.tags is None
    assert batch.chars.shape[0] == batch.char_lengths.shape[0]
    assert batch.chars.shape[1] == int(batch.char_lengths.max())
    for b, sentence in enumerate(sentences):
        n = len(sentence)
        assert batch.words[b, :n].tolist() == vocabs.words.encode(sentence.words)
        if with_tags:
            assert batch.tags[b, :n].tolist() == vocabs.tags.encode(sentence.tags)
        for t, word in enumerate(sentence.words):
            row = int(batch.types[b, t])
            ids = batch.chars[row, : int(batch.char_lengths[row])].tolist()
            assert "".join(vocabs.chars.decode(ids)) == word
            assert not batch.chars[row, int(batch.char_lengths[row]):].any()
    decoded = ["".join(vocabs.chars.decode(batch.chars[r, : int(batch.char_lengths[r])].tolist()))
               for r in range(batch.chars.shape[0])]
    assert len(decoded) == len(set(decoded))  # each distinct word once
    assert set(decoded) == {w for s in sentences for w in s.words}


def test_collator_on_real_tweets(tweets, vocabs):
    sentences = tweets[100:130]
    indices = list(range(100, 130))
    batch = Collator(vocabs)(sentences, indices)
    check_batch(batch, sentences, indices, vocabs)
    assert len(set(len(s) for s in sentences)) > 1  # padding is exercised


def test_collator_without_tags_and_unknown_words(tweets):
    small = build_vocabularies(tweets[:50])
    sentences = tweets[200:230]
    batch = Collator(small)(sentences, range(30), with_tags=False)
    assert batch.tags is None
    unknown = [w for s in sentences for w in s.words if w not in small.words]
    assert unknown  # the test would be vacuous otherwise
    for b, sentence in enumerate(sentences):
        assert batch.words[b, : len(sentence)].tolist() == [
            small.words.unk_id if w not in small.words else small.words.index(w) for w in sentence.words]


def test_collator_max_word_length(tweets, vocabs):
    sentences = tweets[:30]
    batch = Collator(vocabs, max_word_length=3)(sentences, range(30))
    assert int(batch.char_lengths.max()) <= 3 and batch.chars.shape[1] <= 3
    for b, sentence in enumerate(sentences):
        for t, word in enumerate(sentence.words):
            row = int(batch.types[b, t])
            assert "".join(vocabs.chars.decode(batch.chars[row, : int(batch.char_lengths[row])].tolist())) == word[:3]


def test_collator_rejects_empty_and_untagged_sentences(tweets, vocabs):
    collate = Collator(vocabs)
    with pytest.raises(ValueError):
        collate([tweets[0], Sentence(())], [0, 1])
    with pytest.raises(ValueError):
        collate([tweets[0], Sentence(tweets[1].words)], [0, 1], with_tags=True)


def test_batch_to_keeps_everything(tweets, vocabs):
    batch = Collator(vocabs)(tweets[:4], range(4))
    moved = batch.to("cpu")
    assert torch.equal(moved.words, batch.words) and torch.equal(moved.tags, batch.tags)
    untagged = Collator(vocabs)(tweets[:4], range(4), with_tags=False).to("cpu")
    assert untagged.tags is None


@pytest.mark.parametrize("seed", [None, 4])
def test_iterate_batches_covers_every_sentence_once(tweets, vocabs, seed):
    rng = None if seed is None else np.random.default_rng(seed)
    collate = Collator(vocabs)
    seen = []
    for batch in iterate_batches(tweets, collate, 32, rng):
        indices = batch.indices.tolist()
        seen += indices
        assert batch.words.shape[0] == len(indices) <= 32
        for b, i in enumerate(indices):
            n = len(tweets[i])
            assert int(batch.lengths[b]) == n
            assert batch.words[b, :n].tolist() == vocabs.words.encode(tweets[i].words)
            assert batch.tags[b, :n].tolist() == vocabs.tags.encode(tweets[i].tags)
    assert sorted(seen) == list(range(len(tweets)))
