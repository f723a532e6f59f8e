"""The helpers test cells call: comparisons, failure messages, forbidden calls, answers, the
registry's lookup and the case builders.

They use chapter 2's tasks as examples. What every chapter's tasks must satisfy (references pass
their cases, every mistake's hint fires) is in tests/tasks/test_every_task.py; each chapter's
own tests are in tests/tasks/test_chNN.py.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading import CheckFailed, check
from selfattn_course.grading.spec import Case, Mistake, over_devices
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Choice, IndexSet, Matrix, Number, Numbers
from selfattn_course.grading.spec.registry import chapter_of, get_task
from selfattn_course.grading.tasks import ch02
from selfattn_course.grading.verdicts.compare import check_answer, compare_tensors
from selfattn_course.grading.verdicts.forbid import (
    ATTENTION_BUILTINS,
    ForbiddenCall,
    forbid_calls,
    resolve,
)

# --- compare_tensors ----------------------------------------------------------------------------


def test_close_tensors_compare_equal():
    assert (
        compare_tensors(
            torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]), rtol=1e-5, atol=1e-8
        )
        is None
    )


def test_the_message_names_the_largest_error_its_index_and_both_values():
    expected = torch.zeros(2, 3)
    actual = expected.clone()
    actual[1, 2] = 0.5
    actual[0, 0] = 0.1
    message = compare_tensors(actual, expected, rtol=0.0, atol=1e-6)
    assert "largest error 0.5 at index (1, 2): expected 0, got 0.5" in message
    assert "2 of 6 entries off" in message


def test_nan_where_a_number_is_expected_is_an_infinite_error():
    message = compare_tensors(
        torch.tensor([0.2, math.nan]), torch.tensor([0.2, 0.0]), rtol=1e-5, atol=1e-8
    )
    assert "largest error inf at index (1,): expected 0, got nan" in message


def test_numpy_arrays_compare_too():
    assert compare_tensors(np.ones(3), np.ones(3), rtol=1e-9, atol=0) is None
    assert "index (2,)" in compare_tensors(np.array([1.0, 1.0, 2.0]), np.ones(3), rtol=1e-9, atol=0)


# --- check on function tasks --------------------------------------------------------------------


def scores_without_scale(q, k):
    return q @ k.transpose(-2, -1)


def test_a_failure_names_the_case_the_input_shapes_the_largest_error_and_a_hint():
    with pytest.raises(CheckFailed) as failure:
        check("ch02.attention_scores", scores_without_scale)
    message = str(failure.value)
    assert "ch02.attention_scores failed on visible case 1 of 3: by hand" in message
    assert "call: attention_scores(q (1, 2) float32 cpu, k (2, 2) float32 cpu)" in message
    assert "largest error 0.293 at index (0, 0): expected 0.707107, got 1" in message
    assert (
        "hint: your result matches what you get when the scores are not divided by sqrt(d_k)"
        in message
    )


def test_a_broken_property_is_named_in_words():
    def softmax_then_mask(scores, mask):
        weights = torch.softmax(scores, dim=-1)
        return weights if mask is None else weights * mask

    with pytest.raises(
        CheckFailed, match="broken property: each row with at least one allowed key sums to 1"
    ):
        check("ch02.masked_softmax", softmax_then_mask)


def test_a_passing_check_prints_one_line_to_stdout_and_returns_none(capfd):
    assert (
        check("ch02.attention_scores", ch02.attention_scores) is None
    )  # a number would be partial credit
    out, err = capfd.readouterr()
    assert out == "ch02.attention_scores: 3 visible cases passed\n"
    assert err == ""


def test_an_answers_visible_checks_say_they_read_its_form_not_its_value(capfd):
    # (1.0, 1.0) has the right form and the wrong value: the message must not read as accepted.
    check("ch02.score_variance", (1.0, 1.0))
    out, _ = capfd.readouterr()
    assert out.startswith("ch02.score_variance: ")
    assert "the value itself is checked when the notebook is graded" in out


def test_warnings_from_the_learners_code_do_not_reach_stderr(capfd):
    def noisy_scores(q, k):
        warnings.warn("a warning from correct code", UserWarning, stacklevel=2)
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        check("ch02.attention_scores", noisy_scores, hidden=True)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    "result, message",
    [
        (None, "it returned None: is a `return` missing?"),
        ([[0.0]], "result is a list, expected a torch.Tensor of shape (1, 2)"),
        (torch.zeros(2, 1), "result has shape (2, 1), expected (1, 2)"),
        (
            torch.zeros(1, 2, dtype=torch.float64),
            "result has dtype torch.float64, expected torch.float32",
        ),
    ],
)
def test_a_result_of_the_wrong_kind_shape_or_dtype_is_named(result, message):
    with pytest.raises(CheckFailed) as failure:
        check("ch02.attention_scores", lambda q, k: result)
    assert message in str(failure.value)


def test_an_exception_in_the_learners_code_is_reported_and_chained():
    def broken(q, k):
        return (q @ k.transpose(-2, -1)).view(-1, 3)  # case 1 has 2 scores: view raises

    with pytest.raises(CheckFailed, match="it raised RuntimeError") as failure:
        check("ch02.attention_scores", broken)
    assert isinstance(failure.value.__cause__, RuntimeError)


def test_a_stub_that_raises_not_implemented_says_to_write_the_solution():
    def stub(q, k):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="write your solution in place of the stub"):
        check("ch02.attention_scores", stub)


def test_the_learner_writing_into_an_input_does_not_change_the_reference():
    def scores_in_place(q, k):
        return q.mul_(1 / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)

    check("ch02.attention_scores", scores_in_place, hidden=True)


def test_something_not_callable_is_refused():
    with pytest.raises(CheckFailed, match="expected the function attention_scores"):
        check("ch02.attention_scores", 3.0)


# --- provided helpers ---------------------------------------------------------------------------


def learner_attention(q, k, v, mask=None):
    return masked_softmax(attention_scores(q, k), mask) @ v  # noqa: F821 - names the grader provides


def test_provided_helpers_stand_in_for_the_learners_and_are_removed_afterwards():
    namespace = learner_attention.__globals__
    assert "masked_softmax" not in namespace and "attention_scores" not in namespace
    check("ch02.attention", learner_attention, hidden=True)
    assert "masked_softmax" not in namespace and "attention_scores" not in namespace


def test_provided_helpers_restore_the_learners_own_even_after_a_failure():
    namespace = learner_attention.__globals__
    own = namespace["attention_scores"] = scores_without_scale
    try:
        check(
            "ch02.attention", learner_attention
        )  # passes: graded with the reference attention_scores
        namespace["masked_softmax"] = lambda scores, mask: None
        with pytest.raises(CheckFailed):
            check("ch02.attention", lambda q, k, v, mask=None: 1 / 0)
        assert namespace["attention_scores"] is own
    finally:
        namespace.pop("attention_scores", None)
        namespace.pop("masked_softmax", None)


# --- forbidden calls ----------------------------------------------------------------------------


def sdpa_through_an_alias(q, k, v, mask=None):
    from selfattn_course.attention import scaled_dot_product_attention as reference

    return reference(q, k, v, mask)


def torch_sdpa(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def torch_module(q, k, v, mask=None):
    layer = torch.nn.MultiheadAttention(q.shape[-1], 1, bias=False, batch_first=True)
    return layer(q, k, v, need_weights=False)[0]


@pytest.mark.parametrize(
    "attention", [sdpa_through_an_alias, torch_sdpa, torch_module], ids=lambda f: f.__name__
)
def test_ready_made_attention_is_caught_however_it_is_called(attention):
    with pytest.raises(
        CheckFailed, match="your code called .*; this task asks you to write it yourself"
    ):
        check("ch02.attention", attention)


def test_every_forbidden_name_resolves():
    for name in ATTENTION_BUILTINS:
        assert callable(resolve(name)), name


def test_forbid_calls_counts_only_calls_inside_the_block_and_restores_the_profiler():
    x = torch.randn(1, 2, 3)
    previous = sys.getprofile()
    F.scaled_dot_product_attention(x, x, x)  # before the block: not counted
    with forbid_calls(["torch.nn.functional.scaled_dot_product_attention"]):
        torch.softmax(x, dim=-1)
    with pytest.raises(ForbiddenCall, match="torch.nn.functional.scaled_dot_product_attention"):
        with forbid_calls(["torch.nn.functional.scaled_dot_product_attention"]):
            F.scaled_dot_product_attention(x, x, x)
    assert sys.getprofile() is previous


def test_calls_made_inside_an_allowed_function_are_not_counted():
    x = torch.randn(1, 2, 3)

    def helper():
        return scaled_dot_product_attention(x, x, x)

    with forbid_calls(["selfattn_course.attention.scaled_dot_product_attention"], allowed=[helper]):
        helper()
    with pytest.raises(ForbiddenCall):
        with forbid_calls(
            ["selfattn_course.attention.scaled_dot_product_attention"], allowed=[helper]
        ):
            helper()
            scaled_dot_product_attention(x, x, x)


def test_a_forbidden_call_wins_over_the_error_it_led_to():
    x = torch.randn(1, 2, 3)
    with pytest.raises(ForbiddenCall):
        with forbid_calls(["torch.nn.functional.scaled_dot_product_attention"]):
            F.scaled_dot_product_attention(x, x, x)
            raise ValueError("a later error")


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer_type, value, read",
    [
        (Number(), "2.5", 2.5),
        (Numbers(2, integers=True), [1, 10.0], (1, 10)),
        (Matrix((1, 2)), torch.tensor([[0.25, 0.75]]), np.array([[0.25, 0.75]])),
        (Choice({"a": "x", "b": "y"}), " (B) ", "b"),
        (IndexSet(5), [4, np.int64(2), 2], frozenset({2, 4})),
    ],
)
def test_answers_are_read_into_one_canonical_form(answer_type, value, read):
    got = answer_type.read("answer", value)
    assert np.array_equal(got, read) if isinstance(read, np.ndarray) else got == read


@pytest.mark.parametrize(
    "answer_type, value, message",
    [
        (Number(), None, "answer must be a number, got None"),
        (Number(), float("nan"), "answer must be a number, got nan"),
        (Numbers(2), (1,), "answer must be a tuple of 2 numbers, got (1,)"),
        (Numbers(2, integers=True), (1, 2.5), "answer[1] must be an integer, got 2.5"),
        (Matrix((3, 3)), np.ones((3, 2)), "answer must be an array of shape 3x3, got shape (3, 2)"),
        (Matrix((1, 2)), [[1.0, math.inf]], "answer must hold finite numbers"),
        (Choice({"a": "x", "b": "y"}), "c", "answer must be one of 'a', 'b', got 'c'"),
        (IndexSet(5), {1, 5}, "answer must be a set of integers from 0 to 4, but it contains 5"),
        (IndexSet(5), {True}, "but it contains True"),
        (IndexSet(5), "012", "answer must be a set of integers from 0 to 4, got '012'"),
    ],
)
def test_an_answer_of_the_wrong_form_is_refused_with_the_form_expected(answer_type, value, message):
    with pytest.raises(CheckFailed, match=None) as failure:
        answer_type.read("answer", value)
    assert message in str(failure.value)


def test_numbers_compare_within_their_tolerance():
    assert Numbers(2, rtol=0.05).same((63.0, 1.02), (64.0, 1.0))
    assert not Numbers(2, rtol=0.05).same((8.0, 1.0), (64.0, 1.0))


def test_visible_answer_checks_do_not_give_the_answer_away():
    check("ch02.score_variance", (8, 1))  # the right form passes the visible check
    check("ch02.score_variance", (8, 1), hidden=True)  # outside grading: compares nothing
    with pytest.raises(CheckFailed, match="is not the right answer"):
        check_answer(get_task("ch02.score_variance"), (8, 1), hidden=True)  # the grader's side


# --- the registry, for every chapter ------------------------------------------------------------


def test_task_ids_are_chapter_dot_name():
    assert chapter_of("ch02.masked_softmax") == "ch02"
    with pytest.raises(ValueError, match="must look like 'ch02.masked_softmax'"):
        chapter_of("masked_softmax")


def test_an_unknown_task_is_named_with_the_chapters_tasks():
    with pytest.raises(
        KeyError, match="unknown task 'ch02.nope'; chapter ch02 has: ch02.attention_scores"
    ):
        get_task("ch02.nope")
    with pytest.raises(KeyError, match="no grading tasks for chapter 'ch99'"):
        get_task("ch99.anything")


# --- case builders ------------------------------------------------------------------------------


def test_random_tensors_depend_only_on_the_seed():
    assert torch.equal(C.randn((3, 4), seed=5), C.randn((3, 4), seed=5))
    assert not torch.equal(C.randn((3, 4), seed=5), C.randn((3, 4), seed=6))
    assert C.randn((2,), seed=0, dtype=torch.float64).dtype == torch.float64


def test_a_random_mask_blocks_exactly_the_rows_asked_and_keeps_a_key_elsewhere():
    mask = C.random_mask((2, 4, 6), seed=3, p_allowed=0.1, blocked_rows=[(1, 2)])
    rows_with_a_key = mask.any(dim=-1)
    assert not rows_with_a_key[1, 2]
    assert int(rows_with_a_key.sum()) == 2 * 4 - 1


def test_padding_masks_mark_real_tokens():
    # lengths [3, 1] over 4 positions: True for the first 3 and the first 1 positions.
    assert C.key_padding_mask([3, 1], 4).tolist() == [
        [[[True, True, True, False]]],
        [[[True, False, False, False]]],
    ]


def test_cases_run_in_float32_and_float64_on_each_device_that_has_them():
    pairs = list(C.for_each([torch.device("cpu"), torch.device("mps")]))
    assert pairs == [
        (torch.device("cpu"), torch.float32),
        (torch.device("cpu"), torch.float64),
        (torch.device("mps"), torch.float32),
    ]


def test_a_case_describes_its_call_with_shapes():
    case = C.Case("demo", {"q": torch.zeros(2, 3)}, {"mask": None})
    assert case.call_str("f") == "f(q (2, 3) float32 cpu, mask=None)"


def test_over_devices_builds_the_cases_of_every_dtype_and_device_and_tags_their_names():
    hidden = over_devices(
        lambda dtype, device: [Case("one", {"x": torch.zeros(1, dtype=dtype, device=device)})]
    )
    cases = hidden([torch.device("cpu"), torch.device("meta")])
    assert [case.name for case in cases] == [
        "one, float32, cpu",
        "one, float64, cpu",
        "one, float32, meta",
        "one, float64, meta",
    ]
    assert [(case.args["x"].dtype, case.args["x"].device.type) for case in cases][1] == (
        torch.float64,
        "cpu",
    )


def test_over_devices_only_tags_the_device_and_joined_keeps_the_order():
    masks = C.over_devices_only(lambda device: [Case("mask", {"m": torch.ones(1, device=device)})])
    sizes = over_devices(lambda dtype, device: [Case("n", {"n": 1})], dtypes=(torch.float32,))
    names = [case.name for case in C.joined(sizes, masks)([torch.device("cpu")])]
    assert names == ["n, float32, cpu", "mask, cpu"]


def test_a_mistake_written_as_a_cell_is_run_like_the_notebook_and_taken_by_the_tasks_name():
    mistake = Mistake(
        "the scores are not divided by sqrt(d_k)",
        source="""
            def attention_scores(q, k):
                return q @ k.transpose(-2, -1)
            """,
    )
    assert mistake.source.startswith("def attention_scores(q, k):\n    return")
    task = dataclasses.replace(get_task("ch02.attention_scores"), mistakes=(mistake,))
    q = torch.ones(1, 4)
    assert float(task.mistakes[0].wrong(q, q)) == 4.0  # compiled with torch in its namespace


def test_a_mistake_needs_a_wrong_version_and_its_cell_must_define_the_name():
    with pytest.raises(TypeError, match="needs `wrong` or `source`"):
        Mistake("nothing wrong")
    with pytest.raises(NameError, match="does not define 'attention_scores'"):
        Mistake("typo", source="def attention_score(q, k):\n    return q\n").bound(
            "attention_scores"
        )
