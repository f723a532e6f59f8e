"""Chapter 1, what self-attention does: tasks answered with a matrix, numbers, sets and a choice.

The given data (``SCORES``) is printed in the notebook's solution cell as well; the expected
answers are computed from it here, with the package's reference softmax.
"""

from __future__ import annotations

import textwrap

import numpy as np

from selfattn_course.attention import softmax
from selfattn_course.grading.spec import AnswerTask, Mistake, Property
from selfattn_course.grading.spec.answers import Choice, IndexSet, Matrix, Numbers

# --- task 1: weights ------------------------------------------------------------------------------

#: The (already scaled) scores of three tokens: row i holds query i's scores against keys 0, 1, 2.
SCORES = np.array(
    [
        [2.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],
        [1.0, 3.0, 1.0],
    ]
)


def _weights_in_unit_interval(weights: np.ndarray, _inputs) -> bool:
    return bool(np.all((weights >= -1e-9) & (weights <= 1 + 1e-9)))


def _rows_sum_to_one(weights: np.ndarray, _inputs) -> bool:
    return bool(np.allclose(weights.sum(axis=1), 1.0, atol=2e-2))


WEIGHTS = AnswerTask(
    id="ch01.weights",
    title="attention weights by hand",
    points=3,
    statement=r"""
        Three tokens have the (already scaled) scores `scores` below: row *i* holds query *i*'s
        scores against keys 0, 1 and 2. Compute the attention weights
        $A = \operatorname{softmax}(S)$, taken along each row, and store them as a 3×3 NumPy
        array in `weights`. Rounding to two decimals is fine.
        """,
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
            "you divided the scores by sqrt(3); they are already scaled",
            softmax(SCORES / np.sqrt(3), dim=-1),
        ),
    ),
)


# --- task 2: path_lengths -------------------------------------------------------------------------

PATH_LENGTHS = AnswerTask(
    id="ch01.path_lengths",
    title="path length",
    points=2,
    statement=r"""
        Take a sequence of $n = 10$ tokens $x_0, \dots, x_9$ and count how many times a layer or
        a cell is applied on the way from the input $x_0$ to the output at position 9:

        - in **one self-attention layer**, whose output $y_9$ mixes all of $x_0, \dots, x_9$;
        - in an **RNN** $h_t = f(h_{t-1}, x_t)$ with a fixed initial state $h_{-1}$ and output
          $h_9$ (count the applications of $f$).

        Store the two counts as `path_lengths = (self_attention, rnn)`.
        """,
    answer_type=Numbers(count=2, integers=True),
    expected=(1, 10),
    properties=(
        Property("both path lengths are at least 1", lambda lengths, _: min(lengths) >= 1),
    ),
    mistakes=(
        Mistake(
            "count the first step too: x_0 enters through h_0 = f(h_init, x_0), "
            "then f runs 9 more times",
            source="path_lengths = (1, 9)  # h_0 to h_9",
        ),
        Mistake("the order is (self_attention, rnn)", (10, 1)),
        Mistake("one attention layer connects every pair of positions in one step", (10, 10)),
    ),
)


# --- tasks 3 and 4: rows_changed, rows_changed_causal ---------------------------------------------

#: Token 2 of a sentence of 5 tokens changes (the statements say so too).
CHANGED_TOKEN = 2
SENTENCE_LENGTH = 5

INCLUDES_THE_CHANGED_ROW = Property(
    "row 2 is included: query 2 is computed from the changed token itself",
    lambda rows, _: CHANGED_TOKEN in rows,
)

ROWS_CHANGED = AnswerTask(
    id="ch01.rows_changed",
    title="which rows change?",
    points=2,
    statement=r"""
        A sentence of 5 tokens goes through one self-attention layer **without a mask**. Token 2
        is replaced by another word: $x_2$ changes, the other tokens do not. Which rows (queries)
        of the 5×5 matrix of attention weights can change? Store their indices as a set in
        `rows_changed`.
        """,
    answer_type=IndexSet(size=SENTENCE_LENGTH),
    expected=frozenset(range(SENTENCE_LENGTH)),
    properties=(INCLUDES_THE_CHANGED_ROW,),
    mistakes=(
        Mistake(
            "row 2 changes with its query, but every row holds a score against key 2, "
            "which changed too",
            source="rows_changed = {2}",
        ),
    ),
)

ROWS_CHANGED_CAUSAL = AnswerTask(
    id="ch01.rows_changed_causal",
    title="which rows change under a causal mask?",
    points=2,
    statement=r"""
        The same sentence and the same change, but the layer uses a **causal mask**: query $i$
        may attend only to keys $j \le i$. Which rows of the weights can change now? Store their
        indices as a set in `rows_changed_causal`.
        """,
    answer_type=IndexSet(size=SENTENCE_LENGTH),
    expected=frozenset(range(CHANGED_TOKEN, SENTENCE_LENGTH)),
    properties=(INCLUDES_THE_CHANGED_ROW,),
    mistakes=(
        Mistake(
            "reversed: under a causal mask key 2 is seen by the queries at or after it (i >= 2)",
            source="rows_changed_causal = {0, 1, 2}",
        ),
        Mistake("the later queries also see key 2, and it changed", {CHANGED_TOKEN}),
        Mistake(
            "with a causal mask the queries before position 2 cannot see token 2",
            set(range(SENTENCE_LENGTH)),
        ),
    ),
)


# --- task 5: mixing -------------------------------------------------------------------------------

MIXING_OPTIONS = Choice(
    {
        "a": "a weighted average of the value vectors of all positions, with one fixed weight per "
        "pair of positions learned in training (like a convolution kernel)",
        "b": "a weighted average of the value vectors of all positions, with weights computed "
        "from the content of query i and of each key",
        "c": "the value vector of the single position whose key is most similar to query i",
        "d": "a summary of positions 0..i carried step by step in a hidden state",
    }
)

MIXING = AnswerTask(
    id="ch01.mixing",
    title="what is mixed, and how?",
    points=1,
    statement=textwrap.dedent(
        """
        Which statement describes what one self-attention layer computes at position $i$? Store
        the letter as a string in `mixing`, e.g. `mixing = "a"`.
        """
    )
    + "\n"
    + MIXING_OPTIONS.markdown_list(),
    answer_type=MIXING_OPTIONS,
    expected="b",
    mistakes=(
        Mistake(
            "fixed weights per pair of positions describe a convolution; "
            "attention weights depend on the input",
            source='mixing = "a"',
        ),
        Mistake(
            "picking the single best key is hard attention (an argmax); softmax mixes all values",
            "c",
        ),
        Mistake("a hidden state carried step by step is a recurrent network", "d"),
    ),
)


TASKS = [WEIGHTS, PATH_LENGTHS, ROWS_CHANGED, ROWS_CHANGED_CAUSAL, MIXING]
