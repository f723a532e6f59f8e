"""Chapter 22's graded tasks (selfattn_course/grading/tasks/ch22.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 22 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.encodings import sinusoidal
from selfattn_course.grading.tasks import ch22


def test_time_encoding_at_whole_days_equals_the_package_sinusoidal_table():
    days = torch.tensor([[0, 3, 17], [100, 365, 729]])
    table = sinusoidal(730, 16, dtype=torch.float64)
    torch.testing.assert_close(ch22.time_encoding(days.double(), 16), table[days])


def test_time_encoding_by_hand_at_half_a_day():
    # dim 4: frequencies 1 and 1/10000^(2/4) = 1/100
    expected = torch.tensor([math.sin(0.5), math.cos(0.5), math.sin(0.005), math.cos(0.005)])
    torch.testing.assert_close(ch22.time_encoding(torch.tensor([0.5]), 4)[0], expected)


def test_time_encoding_dot_product_depends_only_on_the_time_difference():
    a = ch22.time_encoding(torch.tensor([10.0, 410.0], dtype=torch.float64), 32)
    b = ch22.time_encoding(torch.tensor([35.0, 435.0], dtype=torch.float64), 32)
    torch.testing.assert_close((a * b).sum(-1)[0], (a * b).sum(-1)[1])


def _ece_by_loop(probs, labels, num_bins):
    bins = [[] for _ in range(num_bins)]
    for p, y in zip(probs.tolist(), labels.tolist(), strict=True):
        m = max(0, math.ceil(p * num_bins) - 1)
        bins[min(m, num_bins - 1)].append((p, y))
    total = 0.0
    for members in bins:
        if members:
            mean_p = sum(p for p, _ in members) / len(members)
            mean_y = sum(y for _, y in members) / len(members)
            total += len(members) / len(probs) * abs(mean_p - mean_y)
    return total


def test_ece_matches_a_loop_over_patients():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(300, generator=g, dtype=torch.float64)
    labels = (torch.rand(300, generator=g, dtype=torch.float64) < probs**2).double()
    for num_bins in (1, 5, 10, 15):
        got = ch22.expected_calibration_error(probs, labels, num_bins)
        assert math.isclose(float(got), _ece_by_loop(probs, labels, num_bins), abs_tol=1e-12)


def test_ece_by_hand_two_bins():
    # bin (0, 0.5]: p 0.2, 0.4, labels 0, 0 -> gap 0.3, weight 1/2
    # bin (0.5, 1]: p 0.8, 1.0, labels 1, 0 -> gap 0.4, weight 1/2
    probs = torch.tensor([0.2, 0.4, 0.8, 1.0], dtype=torch.float64)
    labels = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    got = ch22.expected_calibration_error(probs, labels, 2)
    assert got.dtype == torch.float64 and math.isclose(float(got), 0.35)


def test_constant_predictor_at_the_prevalence_has_zero_ece():
    probs = torch.full((1000,), 0.1, dtype=torch.float64)
    labels = (torch.arange(1000) < 100).double()
    assert float(ch22.expected_calibration_error(probs, labels)) < 1e-12
    assert ch22.CONSTANT_PREDICTOR.expected == (0.0, 0.5)


def test_attention_pool_matches_softmax_written_out():
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    query = torch.randn(4, generator=g, dtype=torch.float64)
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    for b in range(3):
        real = hidden[b, valid[b]]
        weights = torch.softmax(real @ query / 2.0, dim=0)
        torch.testing.assert_close(ch22.attention_pool(hidden, valid, query)[b], weights @ real)


def test_attention_pool_of_a_patient_with_no_visit_is_zero():
    hidden = torch.ones(2, 3, 4)
    valid = torch.tensor([[False, False, False], [True, False, False]])
    pooled = ch22.attention_pool(hidden, valid, torch.ones(4))
    torch.testing.assert_close(pooled, torch.tensor([[0.0] * 4, [1.0] * 4]))
