"""selfattn_course.audio against hand-worked values, the HTK formula, torch.stft and Conv1d."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from selfattn_course import audio
from selfattn_course.masks import causal_mask


def test_hz_to_mel_is_htks_formula_worked_by_hand():
    assert audio.hz_to_mel(0.0) == 0.0
    assert audio.hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))  # 781.17
    assert audio.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # the scale's anchor


def test_mel_to_hz_inverts_hz_to_mel_for_arrays_and_tensors():
    freqs = np.array([0.0, 100.0, 1000.0, 8000.0])
    np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(freqs)), freqs, atol=1e-9)
    tensor = torch.tensor(freqs)
    torch.testing.assert_close(audio.mel_to_hz(audio.hz_to_mel(tensor)), tensor)


def test_num_frames_of_one_second_at_16_khz_with_25_ms_and_10_ms():
    assert audio.num_frames(16000, 400, 160) == 98  # 1 + (16000 - 400) // 160
    assert audio.num_frames(399, 400, 160) == 0
    assert audio.num_frames(400, 400, 160) == 1


def test_num_frames_matches_torch_stft_without_centering():
    signal = torch.zeros(12345)
    spec = torch.stft(
        signal,
        n_fft=512,
        hop_length=160,
        win_length=400,
        center=False,
        window=torch.hann_window(400),
        return_complex=True,
    )
    assert spec.shape[-1] == audio.num_frames(12345, 512, 160)


@pytest.mark.parametrize(
    ("length", "kernel", "stride", "padding"), [(100, 3, 2, 0), (98, 3, 2, 1), (7, 7, 1, 0)]
)
def test_conv_output_length_matches_conv1d(length, kernel, stride, padding):
    conv = nn.Conv1d(1, 1, kernel, stride=stride, padding=padding)
    assert conv(torch.zeros(1, 1, length)).shape[-1] == audio.conv_output_length(
        length, kernel, stride, padding
    )


def test_filterbank_triangles_peak_at_one_and_are_nonnegative():
    filters = audio.mel_filterbank(512, 20, 16000)
    assert filters.shape == (257, 20)
    assert filters.min() >= 0
    assert filters.max() <= 1
    # each filter's peak is near 1 (the centre falls between two bins) and the peaks rise
    assert bool((filters.max(dim=0).values > 0.5).all())
    peaks = filters.argmax(dim=0)
    assert bool((peaks[1:] >= peaks[:-1]).all())


def test_filterbank_by_hand_two_filters_over_four_bins():
    # sample_rate 6 Hz, n_fft 6: bins at 0, 1, 2, 3 Hz; edges evenly spaced in mel over 0..3 Hz
    filters = audio.mel_filterbank(6, 2, 6, dtype=torch.float64)
    edges = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(3.0), 4))
    bins = np.arange(4.0)
    for m in range(2):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        expected = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
        np.testing.assert_allclose(filters[:, m].numpy(), expected)


def test_stft_of_a_pure_tone_peaks_at_its_bin_and_its_mel_band():
    sample_rate, freq = 16000, 1000.0  # bin 1000 · 400 / 16000 = 25
    t = torch.arange(sample_rate, dtype=torch.float64) / sample_rate
    tone = torch.sin(2 * math.pi * freq * t)
    spec = torch.stft(
        tone,
        n_fft=400,
        hop_length=160,
        win_length=400,
        center=False,
        window=torch.hann_window(400, dtype=torch.float64),
        return_complex=True,
    )
    assert int(spec.abs().mean(dim=-1).argmax()) == 25
    features = audio.log_mel(tone, sample_rate, n_mels=40)
    assert features.shape == (audio.num_frames(16000, 400, 160), 40)
    filters = audio.mel_filterbank(400, 40, sample_rate, dtype=torch.float64)
    assert int(features.mean(dim=0).argmax()) == int(filters[25].argmax())


def test_log_mel_keeps_the_batch_shape():
    signal = torch.randn(2, 3, 4000, generator=torch.Generator().manual_seed(0))
    assert audio.log_mel(signal, 16000, n_mels=8).shape == (
        2,
        3,
        audio.num_frames(4000, 400, 160),
        8,
    )


def test_chunk_mask_by_hand_chunk_2_lookahead_1():
    expected = torch.tensor(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(audio.chunk_mask(5, 2, 1), expected)


def test_chunk_mask_of_chunk_1_is_causal_and_of_a_long_chunk_is_full():
    assert torch.equal(audio.chunk_mask(6, 1), causal_mask(6))
    assert bool(audio.chunk_mask(6, 8).all())
