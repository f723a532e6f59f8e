"""Chapter 2's tasks (selfattn_course/grading/tasks/ch02.py): the references against torch, and
the from-scratch rule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfattn_course.grading.spec import FunctionTask
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.tasks import ch02
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS


def test_the_chapter_2_references_agree_with_torch():
    inputs = C.qkv(batch=(2, 3), lq=5, lk=6, d=8, seed=0, dtype=torch.float64)
    mask = C.random_mask((2, 3, 5, 6), seed=1)
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    torch.testing.assert_close(
        ch02.attention(q, k, v, mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    )
    weights = torch.softmax(ch02.attention_scores(q, k).masked_fill(~mask, -math.inf), dim=-1)
    torch.testing.assert_close(ch02.masked_softmax(ch02.attention_scores(q, k), mask), weights)


@pytest.mark.parametrize(
    "task", [t for t in ch02.TASKS if isinstance(t, FunctionTask)], ids=lambda t: t.id
)
def test_the_chapter_2_functions_are_written_from_scratch(task):
    assert set(ATTENTION_BUILTINS) <= set(task.forbidden)


def test_attention_is_graded_with_the_reference_scores_and_softmax():
    assert ch02.ATTENTION.provided == {
        "attention_scores": ch02.attention_scores,
        "masked_softmax": ch02.masked_softmax,
    }
