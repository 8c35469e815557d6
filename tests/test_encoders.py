"""The shared encoder layer: batching by word type, masking, causality."""

from __future__ import annotations

import torch

from vsl.encoders import CharBiGRU, CharCNN, PrefixLSTM
from vsl.models import build_encoder


def _encoder(collate, **sizes):
    torch.manual_seed(0)
    vocabs = collate.vocabs
    return build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=8, char_dim=6,
                         char_hidden=5, hidden=7, **sizes)


def test_char_bigru_batched_equals_one_word_at_a_time(twitter_slice, twitter_collator):
    batch = twitter_collator(twitter_slice[0][:8], range(8))
    torch.manual_seed(0)
    chars = CharBiGRU(len(twitter_collator.vocabs.chars), char_dim=6, hidden=5)
    together = chars(batch.chars, batch.char_lengths)
    for row in range(batch.chars.shape[0]):
        n = int(batch.char_lengths[row])
        alone = chars(batch.chars[row:row + 1, :n], batch.char_lengths[row:row + 1])
        torch.testing.assert_close(together[row], alone[0])


def test_char_bigru_final_states_are_forward_last_and_backward_first():
    torch.manual_seed(0)
    chars = CharBiGRU(10, char_dim=4, hidden=3)
    word = torch.tensor([[3, 4, 5]])
    states, _ = chars.rnn(chars.embed(word))  # (1, 3, 6): forward then backward halves
    final = chars(word, torch.tensor([3]))
    torch.testing.assert_close(final[0, :3], states[0, -1, :3])
    torch.testing.assert_close(final[0, 3:], states[0, 0, 3:])


def test_sentence_encoder_ignores_padding_and_batch_mates(twitter_slice, twitter_collator):
    encoder = _encoder(twitter_collator).eval()
    sentences = twitter_slice[0][:6]
    batch = twitter_collator(sentences, range(6))
    together = encoder(batch)
    assert together.shape == (6, int(batch.lengths.max()), encoder.output_dim)
    assert torch.all(together[~batch.mask] == 0)
    for row, sentence in enumerate(sentences):
        alone = encoder(twitter_collator([sentence], [row]))
        torch.testing.assert_close(together[row, : len(sentence)], alone[0], atol=1e-5, rtol=1e-5)


def test_frozen_embeddings_get_no_gradient(twitter_slice, twitter_collator):
    vocabs = twitter_collator.vocabs
    pretrained = torch.randn(len(vocabs.words), 8)
    torch.manual_seed(0)
    encoder = build_encoder(len(vocabs.words), len(vocabs.chars), word_dim=8, char_dim=6,
                            char_hidden=5, hidden=7, pretrained=pretrained, freeze=True)
    encoder(twitter_collator(twitter_slice[0][:4], range(4))).sum().backward()
    assert encoder.embedding.words.weight.grad is None
    torch.testing.assert_close(encoder.embedding.words.weight, pretrained)
    assert encoder.rnn.weight_ih_l0.grad is not None


def test_char_cnn_ignores_padding_and_handles_short_words():
    torch.manual_seed(0)
    cnn = CharCNN(12, char_dim=4, maps=(3, 3, 3, 3, 3, 3, 3), output_dim=5)
    words = torch.tensor([[2, 3, 0, 0, 0, 0, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 10, 11, 2, 3]])
    lengths = torch.tensor([2, 10])
    together = cnn(words, lengths)
    assert together.shape == (2, 5) and torch.isfinite(together).all()
    short = cnn(words[:1, :2], lengths[:1])  # no padding at all beyond the word
    torch.testing.assert_close(together[0], short[0])
    padded_more = cnn(torch.nn.functional.pad(words, (0, 5), value=0), lengths)
    torch.testing.assert_close(together, padded_more)


def char_cnn_one_word(cnn, chars, length):
    """The CharCNN's definition for one word alone: tanh of each width's windows that lie inside
    the word (the first window if the word is shorter), max over them, concatenated, projected."""
    span = max(length, max(cnn.widths))
    inputs = cnn.embed(torch.nn.functional.pad(chars[:length], (0, span - length)))
    features = []
    for width, conv in zip(cnn.widths, cnn.convs):
        windows = torch.tanh(conv(inputs.t().unsqueeze(0)))[0]  # (maps, span - width + 1)
        features.append(windows[:, :max(length - width + 1, 1)].max(dim=-1).values)
    return cnn.project(torch.cat(features))


def test_char_cnn_matches_its_definition_word_by_word():
    """Grouping words by length and taking tanh after the max give the values and gradients of
    the plain per-word computation, for words shorter and longer than the widest kernel."""
    torch.manual_seed(0)
    cnn = CharCNN(20, char_dim=4, maps=(2, 3, 3, 3, 3, 3, 3), output_dim=5)
    lengths = torch.tensor([1, 9, 3, 12, 3, 7, 1, 5, 12, 2, 6, 9, 4])
    chars = torch.randint(1, 20, (len(lengths), 14)) * (torch.arange(14) < lengths[:, None])
    batched = cnn(chars, lengths)
    expected = torch.stack([char_cnn_one_word(cnn, c, int(n)) for c, n in zip(chars, lengths)])
    torch.testing.assert_close(batched, expected)
    weights = torch.randn_like(expected)
    got = torch.autograd.grad((batched * weights).sum(), list(cnn.parameters()))
    want = torch.autograd.grad((expected * weights).sum(), list(cnn.parameters()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_prefix_lstm_output_at_t_sees_only_earlier_inputs():
    torch.manual_seed(0)
    lstm = PrefixLSTM(4, 6, layers=3, dropout=0.5).eval()
    inputs = torch.randn(2, 5, 4)
    out = lstm(inputs)
    assert out.shape == (2, 5, 6)
    changed = inputs.clone()
    changed[:, 3:] = torch.randn(2, 2, 4)
    torch.testing.assert_close(lstm(changed)[:, :4], out[:, :4])
    assert not torch.allclose(lstm(changed)[:, 4], out[:, 4])
    torch.testing.assert_close(out[:, 0], lstm.start.expand(2, -1))
    assert lstm(inputs[:, :1]).shape == (2, 1, 6)
