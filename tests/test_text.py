"""selfattn_course.text: tokenizer, vocabulary, right and left padding, the mask of real tokens."""

from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course import masks, text
from selfattn_course.text import CLS, PAD, UNK, Vocabulary, encode_batch, pad_sequences, tokenize


def test_tokenize_lowercases_and_splits_on_any_whitespace():
    assert tokenize("The  cat\tSAT\n") == ["the", "cat", "sat"]
    assert tokenize("   ") == []


def test_tokenize_rejects_a_non_string():
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize(["a", "b"])


def test_pad_and_unk_are_ids_0_and_1_then_specials_then_words():
    vocab = Vocabulary(["x", "y"], specials=(CLS,))
    assert vocab.tokens == [PAD, UNK, CLS, "x", "y"]
    assert (vocab.pad_id, vocab.unk_id, vocab[CLS], vocab["y"]) == (0, 1, 2, 4)
    assert len(vocab) == 5


def test_build_orders_by_count_then_alphabetically_and_drops_rare_words():
    # counts by hand: the 3, cat 2, dog 2, sat 1
    vocab = Vocabulary.build(["the cat sat", "the dog", "The cat dog"], min_count=2)
    assert vocab.tokens == [PAD, UNK, "the", "cat", "dog"]
    assert vocab["sat"] == vocab.unk_id


def test_unknown_word_maps_to_unk_and_decode_inverts_encode():
    vocab = Vocabulary(["a", "b"])
    assert vocab.encode("a c b") == [2, 1, 3]
    assert vocab.decode([2, 1, 3, 0, 0]) == ["a", UNK, "b"]
    assert vocab.decode(torch.tensor([2, 0]), skip_pad=False) == ["a", PAD]
    with pytest.raises(IndexError, match="outside the vocabulary"):
        vocab.decode([7])


def test_right_and_left_padding_by_hand():
    ids, lengths = pad_sequences([[5, 6, 7], [8]], padding_side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    ids, lengths = pad_sequences([[5, 6, 7], [8]], padding_side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and lengths.tolist() == [3, 1]
    assert ids.dtype == torch.long and lengths.dtype == torch.long


def test_max_len_cuts_the_end_on_the_right_and_the_start_on_the_left():
    ids, lengths = pad_sequences([[1, 2, 3, 4]], max_len=2, padding_side="right")
    assert ids.tolist() == [[1, 2]] and lengths.tolist() == [2]
    ids, lengths = pad_sequences([[1, 2, 3, 4]], max_len=2, padding_side="left")
    assert ids.tolist() == [[3, 4]] and lengths.tolist() == [2]


def test_empty_batch_and_empty_sequence():
    ids, lengths = pad_sequences([])
    assert ids.shape == (0, 0) and lengths.shape == (0,)
    ids, lengths = pad_sequences([[], [4]], padding_side="left")
    assert ids.tolist() == [[0], [4]] and lengths.tolist() == [0, 1]


def test_bad_padding_side_is_named():
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left'"):
        pad_sequences([[1]], padding_side="center")


def test_encode_batch_prepends_cls_and_counts_it():
    vocab = Vocabulary(["a", "b"], specials=(CLS,))
    ids, lengths = encode_batch(["a b", "b"], vocab, prepend=CLS)
    assert ids.tolist() == [[2, 3, 4], [2, 4, 0]] and lengths.tolist() == [3, 2]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        encode_batch(["a"], Vocabulary(["a"]), prepend=CLS)


def test_right_valid_mask_equals_the_packages_padding_mask():
    lengths = torch.tensor([3, 0, 5, 1])
    expected = masks.padding_mask(lengths, 5)
    assert torch.equal(text.valid_mask(lengths, 5, padding_side="right"), expected)


sequences = st.lists(st.lists(st.integers(2, 50), max_size=7), max_size=6)


@settings(max_examples=60, deadline=None)
@given(sequences, st.sampled_from(["right", "left"]))
def test_padding_keeps_every_id_and_the_mask_marks_exactly_them(seqs, side):
    ids, lengths = pad_sequences(seqs, padding_side=side)
    valid = text.valid_mask(lengths, ids.shape[1], padding_side=side)
    for row, seq in enumerate(seqs):  # a loop over rows, independent of the tensor code
        assert ids[row][valid[row]].tolist() == seq
        assert (ids[row][~valid[row]] == 0).all()
        assert lengths[row].item() == len(seq)


def test_module_docstring_example_runs():
    assert doctest.testmod(text).failed == 0
