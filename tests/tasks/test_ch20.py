"""Chapter 20's graded tasks (selfattn_course/grading/tasks/ch20.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 20 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfattn_course.grading.tasks import ch20


def test_tubelets_first_token_by_hand():
    video = torch.arange(32.0).reshape(1, 2, 1, 4, 4)  # frame 0 holds 0..15, frame 1 16..31
    tokens = ch20.tubelets(video, 2, 2)
    assert tokens.shape == (1, 4, 8)
    torch.testing.assert_close(tokens[0, 0], torch.tensor([0.0, 1, 4, 5, 16, 17, 20, 21]))


def test_tubelets_match_a_loop_over_tubelets():
    video = torch.randn(2, 6, 3, 4, 6, generator=torch.Generator().manual_seed(0))
    t, p = 3, 2
    tokens = ch20.tubelets(video, t, p)
    expected = []
    for i in range(6 // t):
        for r in range(4 // p):
            for c in range(6 // p):
                block = video[:, i * t : (i + 1) * t, :, r * p : (r + 1) * p, c * p : (c + 1) * p]
                expected.append(block.transpose(1, 2).reshape(2, -1))  # (C, t, p, p)
    torch.testing.assert_close(tokens, torch.stack(expected, dim=1))


def test_tubelets_then_linear_equal_conv3d():
    generator = torch.Generator().manual_seed(1)
    video = torch.randn(2, 4, 3, 8, 8, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 3, 2, 4, 4, generator=generator, dtype=torch.float64)
    conv = F.conv3d(video.transpose(1, 2), weight, stride=(2, 4, 4))  # (B, D, T/t, H/p, W/p)
    linear = ch20.tubelets(video, 2, 4) @ weight.reshape(5, -1).T
    torch.testing.assert_close(linear, conv.flatten(2).transpose(1, 2))


def test_time_attention_equals_joint_attention_masked_to_the_same_position():
    generator = torch.Generator().manual_seed(2)
    b, t, s, d = 2, 3, 4, 5
    q, k, v = (torch.randn(b, t, s, d, generator=generator, dtype=torch.float64) for _ in "qkv")
    position = torch.arange(t * s) % s  # token n = frame·S + patch
    same_position = position[:, None] == position[None, :]
    scores = q.reshape(b, t * s, d) @ k.reshape(b, t * s, d).transpose(1, 2) / d**0.5
    weights = scores.masked_fill(~same_position, float("-inf")).softmax(-1)
    joint = (weights @ v.reshape(b, t * s, d)).reshape(b, t, s, d)
    torch.testing.assert_close(ch20.time_attention(q, k, v), joint)


def test_time_attention_with_one_frame_returns_v():
    q, k, v = (
        torch.randn(1, 1, 3, 2, generator=torch.Generator().manual_seed(i)) for i in range(3)
    )
    torch.testing.assert_close(ch20.time_attention(q, k, v), v)


def test_divided_mixing_flops_by_hand():
    # time: S = 3 sequences of T = 2 tokens, 3·4·4·1 = 48; space: 2 sequences of 3, 2·4·9 = 72
    assert ch20.divided_mixing_flops(2, 3, 1) == 120


def test_divided_over_joint_is_ts_over_t_plus_s():
    frames, patches, d = 8, 196, 64
    joint = 4 * (frames * patches) ** 2 * d
    ratio = joint / ch20.divided_mixing_flops(frames, patches, d)
    assert abs(ratio - frames * patches / (frames + patches)) < 1e-12
