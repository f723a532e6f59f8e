"""Chapter 1, what self-attention does: tasks answered with a matrix, numbers, sets and a choice.

The given data (``SCORES``) is printed in the notebook's solution cell as well; the expected
answers are computed from it here, with the package's reference softmax.
"""

from __future__ import annotations

import numpy as np

from selfattn_course.attention import softmax
from selfattn_course.grading.spec.answers import Choice, IndexSet, Matrix, Numbers
from selfattn_course.grading.spec.registry import AnswerTask, Mistake, Property

#: The (already scaled) scores of three tokens: row i holds query i's scores against keys 0, 1, 2.
SCORES = np.array(
    [
        [2.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],
        [1.0, 3.0, 1.0],
    ]
)

#: Tasks ``rows_changed*``: token 2 of a sentence of 5 tokens changes (the statements say so too).
CHANGED_TOKEN = 2
SENTENCE_LENGTH = 5


def _weights_in_unit_interval(weights: np.ndarray, _inputs) -> bool:
    return bool(np.all((weights >= -1e-9) & (weights <= 1 + 1e-9)))


def _rows_sum_to_one(weights: np.ndarray, _inputs) -> bool:
    return bool(np.allclose(weights.sum(axis=1), 1.0, atol=2e-2))


def _contains_changed_token(rows: frozenset[int], _inputs) -> bool:
    return CHANGED_TOKEN in rows


INCLUDES_THE_CHANGED_ROW = Property(
    "row 2 is included: query 2 is computed from the changed token itself", _contains_changed_token
)


MIXING_OPTIONS = {
    "a": "a weighted average of the value vectors of all positions, with one fixed weight per pair "
    "of positions learned in training (like a convolution kernel)",
    "b": "a weighted average of the value vectors of all positions, with weights computed from the "
    "content of query i and of each key",
    "c": "the value vector of the single position whose key is most similar to query i",
    "d": "a summary of positions 0..i carried step by step in a hidden state",
}

TASKS = [
    AnswerTask(
        id="ch01.weights",
        answer_type=Matrix(shape=(3, 3), atol=5e-3),
        expected=softmax(SCORES, dim=-1),
        properties=(
            Property("every weight is between 0 and 1", _weights_in_unit_interval),
            Property(
                "each row of the weights sums to 1 (a query's weights over the keys lie along its row)",
                _rows_sum_to_one,
            ),
        ),
        mistakes=(
            Mistake(
                "you normalised each column (axis 0); softmax runs along each row, over the keys",
                softmax(SCORES, dim=0),
            ),
            Mistake(
                "you divided the scores by sqrt(3); they are already scaled",
                softmax(SCORES / np.sqrt(3), dim=-1),
            ),
        ),
    ),
    AnswerTask(
        id="ch01.path_lengths",
        answer_type=Numbers(count=2, integers=True),
        expected=(1, 10),
        properties=(
            Property("both path lengths are at least 1", lambda lengths, _: min(lengths) >= 1),
        ),
        mistakes=(
            Mistake(
                "count the first step too: x_0 enters through h_0 = f(h_init, x_0), "
                "then f runs 9 more times",
                (1, 9),
            ),
            Mistake("the order is (self_attention, rnn)", (10, 1)),
            Mistake("one attention layer connects every pair of positions in one step", (10, 10)),
        ),
    ),
    AnswerTask(
        id="ch01.rows_changed",
        answer_type=IndexSet(size=SENTENCE_LENGTH),
        expected=frozenset(range(SENTENCE_LENGTH)),
        properties=(INCLUDES_THE_CHANGED_ROW,),
        mistakes=(
            Mistake(
                "row 2 changes with its query, but every row holds a score against key 2, "
                "which changed too",
                {CHANGED_TOKEN},
            ),
        ),
    ),
    AnswerTask(
        id="ch01.rows_changed_causal",
        answer_type=IndexSet(size=SENTENCE_LENGTH),
        expected=frozenset(range(CHANGED_TOKEN, SENTENCE_LENGTH)),
        properties=(INCLUDES_THE_CHANGED_ROW,),
        mistakes=(
            Mistake(
                "reversed: under a causal mask key 2 is seen by the queries at or after it (i >= 2)",
                set(range(CHANGED_TOKEN + 1)),
            ),
            Mistake("the later queries also see key 2, and it changed", {CHANGED_TOKEN}),
            Mistake(
                "with a causal mask the queries before position 2 cannot see token 2",
                set(range(SENTENCE_LENGTH)),
            ),
        ),
    ),
    AnswerTask(
        id="ch01.mixing",
        answer_type=Choice(MIXING_OPTIONS),
        expected="b",
        mistakes=(
            Mistake(
                "fixed weights per pair of positions describe a convolution; "
                "attention weights depend on the input",
                "a",
            ),
            Mistake(
                "picking the single best key is hard attention (an argmax); softmax mixes all values",
                "c",
            ),
            Mistake("a hidden state carried step by step is a recurrent network", "d"),
        ),
    ),
]
