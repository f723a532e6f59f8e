"""Chapter 21's graded tasks (selfattn_course/grading/tasks/ch21.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 21 can: each reference
against an independent computation (by hand, torch.stft, nn.Conv1d, a loop), one property per
test.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from selfattn_course.grading.tasks import ch21
from selfattn_course.masks import causal_mask


def test_num_frames_by_hand_and_by_torch_stft():
    assert ch21.num_frames(10, 4, 2) == 4  # starts 0, 2, 4, 6
    assert ch21.num_frames(3, 4, 2) == 0
    signal = torch.zeros(16000)
    spec = torch.stft(
        signal,
        n_fft=400,
        hop_length=160,
        center=False,
        return_complex=True,
        window=torch.hann_window(400),
    )
    assert ch21.num_frames(16000, 400, 160) == spec.shape[-1] == 98


def test_subsampled_length_equals_the_length_out_of_conv1d_layers():
    convs = nn.Sequential(nn.Conv1d(1, 1, 3, stride=2), nn.Conv1d(1, 1, 3, stride=2))
    assert convs(torch.zeros(1, 1, 2998)).shape[-1] == ch21.subsampled_length(2998, 3, 2, 2)
    assert ch21.subsampled_length(9, 3, 2, 1) == 4  # starts 0, 2, 4, 6
    assert ch21.subsampled_length(77, 3, 2, 0) == 77


def test_hz_to_mel_by_hand():
    mels = ch21.hz_to_mel(torch.tensor([0.0, 700.0, 1000.0], dtype=torch.float64))
    torch.testing.assert_close(
        mels[:2], torch.tensor([0.0, 2595 * math.log10(2)], dtype=torch.float64)
    )
    assert abs(float(mels[2]) - 1000.0) < 0.1


def test_chunk_mask_is_a_loop_over_queries_and_keys():
    length, chunk, lookahead = 10, 4, 1
    by_loop = torch.tensor(
        [[j < (i // chunk + 1) * chunk + lookahead for j in range(length)] for i in range(length)]
    )
    assert torch.equal(ch21.chunk_mask(length, chunk, lookahead), by_loop)
    assert torch.equal(ch21.chunk_mask(5, 1, 0), causal_mask(5))


def test_mixing_ratio_is_the_square_of_the_subsampling_factor():
    assert ch21.MIXING_RATIO.expected == 16.0
