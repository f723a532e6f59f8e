"""Chapter 1's tasks (selfattn_course/grading/tasks/ch01.py): the expected answers by hand."""

from __future__ import annotations

import numpy as np

from selfattn_course.grading.tasks import ch01


def test_the_expected_weights_are_the_row_softmax_of_the_given_scores():
    weights = ch01.WEIGHTS.expected
    # row 1 has equal scores: equal weights; row 0: e^2, e^1, e^0 over their sum
    np.testing.assert_allclose(weights[1], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(weights[0], np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum())


def test_under_a_causal_mask_only_the_queries_at_or_after_the_changed_token_change():
    assert ch01.ROWS_CHANGED_CAUSAL.expected == {2, 3, 4}
    assert ch01.ROWS_CHANGED.expected == set(range(ch01.SENTENCE_LENGTH))


def test_the_mixing_statement_lists_every_option_of_the_choice():
    for key, text in ch01.MIXING_OPTIONS.options.items():
        assert f"- ({key}) {text}" in ch01.MIXING.statement
