"""selfattn_course.seq2seq: the three masks of an encoder–decoder, and greedy decoding."""

from __future__ import annotations

import torch

from selfattn_course.seq2seq import (
    BOS,
    EOS,
    PAD,
    TinyTranslator,
    encoder_decoder_masks,
    greedy_decode,
)


def _model(seed=0, layers=2):
    torch.manual_seed(seed)
    return TinyTranslator(13, d_model=16, num_heads=2, d_ff=32, decoder_layers=layers).eval()


def test_masks_by_hand_for_a_padded_batch():
    masks = encoder_decoder_masks(torch.tensor([2, 3]), torch.tensor([3, 1]))
    # source lengths 2 and 3 (S = 3): every query sees keys j < S_b
    encoder_first = torch.tensor([[1, 1, 0]] * 3, dtype=torch.bool)
    assert masks.encoder.shape == (2, 1, 3, 3)
    assert torch.equal(masks.encoder[0, 0], encoder_first)
    assert bool(masks.encoder[1].all())
    # target lengths 3 and 1 (T = 3): causal, and only key 0 in the second sentence
    assert masks.decoder.shape == (2, 1, 3, 3)
    assert torch.equal(masks.decoder[0, 0], torch.ones(3, 3, dtype=torch.bool).tril())
    second = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    assert torch.equal(masks.decoder[1, 0], second)
    # cross: target queries (3) over source keys (3), source padding only
    assert masks.cross.shape == (2, 1, 3, 3)
    assert torch.equal(masks.cross[0, 0], encoder_first)


def test_masks_take_padded_lengths_and_stay_on_the_device_of_the_lengths():
    masks = encoder_decoder_masks(torch.tensor([1]), torch.tensor([2]), src_len=4, tgt_len=5)
    assert masks.encoder.shape == (1, 1, 4, 4)
    assert masks.decoder.shape == (1, 1, 5, 5)
    assert masks.cross.shape == (1, 1, 5, 4)
    assert masks.cross.dtype == torch.bool and masks.cross.device == torch.device("cpu")


def test_masks_reject_lengths_of_different_batches():
    try:
        encoder_decoder_masks(torch.tensor([1, 2]), torch.tensor([1]))
    except ValueError as error:
        assert "(B,)" in str(error)
    else:
        raise AssertionError("expected a ValueError")


def test_padding_the_source_does_not_change_the_translation():
    model = _model()
    src = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, PAD, PAD]])
    lengths = torch.tensor([3])
    short = model.encode(src, lengths)
    memory = model.encode(padded, lengths)
    tgt = torch.tensor([[BOS, 8, 9]])
    torch.testing.assert_close(
        model.decode(tgt, short, lengths)[0], model.decode(tgt, memory, lengths)[0]
    )


def test_teacher_forcing_position_t_does_not_depend_on_later_targets():
    model = _model()
    src, lengths = torch.tensor([[5, 6, 7, 8]]), torch.tensor([4])
    memory = model.encode(src, lengths)
    a = model.decode(torch.tensor([[BOS, 4, 5, 6]]), memory, lengths)[0]
    b = model.decode(torch.tensor([[BOS, 4, 11, 12]]), memory, lengths)[0]
    torch.testing.assert_close(a[:, :2], b[:, :2])  # positions 0, 1 see only BOS, 4


def test_cached_greedy_decoding_equals_recomputing_the_full_decoder():
    model = _model(layers=2)
    generator = torch.Generator().manual_seed(3)
    src = torch.randint(3, 13, (4, 6), generator=generator)
    lengths = torch.tensor([6, 2, 4, 1])
    cached, cached_logits = greedy_decode(model, src, lengths, max_len=9)
    full, full_logits = greedy_decode(model, src, lengths, max_len=9, use_cache=False)
    assert torch.equal(cached, full)
    torch.testing.assert_close(cached_logits, full_logits, rtol=1e-4, atol=1e-5)


def test_cached_decoding_in_float64_matches_to_rounding():
    model = _model(seed=1).double()
    src, lengths = torch.tensor([[4, 5, 6, 7]]), torch.tensor([4])
    _, cached = greedy_decode(model, src, lengths, max_len=6)
    _, full = greedy_decode(model, src, lengths, max_len=6, use_cache=False)
    torch.testing.assert_close(cached, full, rtol=1e-12, atol=1e-12)


def test_decoding_stops_as_soon_as_every_sentence_has_its_end_token():
    model = _model()
    with torch.no_grad():  # the final norm outputs 10·e_EOS whatever x: EOS is always the argmax
        model.embedding.weight[EOS] *= 10.0
        model.decoder_norm.weight.zero_()
        model.decoder_norm.bias.copy_(model.embedding.weight[EOS])
    src, lengths = torch.tensor([[4, 5], [6, PAD]]), torch.tensor([2, 1])
    tokens, logits = greedy_decode(model, src, lengths, max_len=20)
    assert torch.equal(tokens, torch.tensor([[EOS], [EOS]]))
    assert logits.shape == (2, 1, 13)


def test_tokens_after_the_end_token_are_padding():
    model = _model(seed=4)
    generator = torch.Generator().manual_seed(5)
    src = torch.randint(3, 13, (8, 5), generator=generator)
    tokens, _ = greedy_decode(model, src, torch.full((8,), 5), max_len=12)
    for row in tokens.tolist():
        if EOS in row:
            assert all(token == PAD for token in row[row.index(EOS) + 1 :])


def test_greedy_decoding_takes_the_argmax_of_its_logits():
    model = _model()
    src, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    tokens, logits = greedy_decode(model, src, lengths, max_len=5)
    first_eos = (tokens[0] == EOS).nonzero()
    end = int(first_eos[0]) + 1 if len(first_eos) else tokens.shape[1]
    assert torch.equal(tokens[0, :end], logits[0, :end].argmax(dim=-1))
