"""Verdicts on a learner's result: compare it with the reference, name what is wrong, give a hint.

:func:`check_function` runs a learner's function on cases (the visible tests, in the kernel);
:func:`check_result` and :func:`check_answer` decide one result or answer (the same functions
decide a hand-over in the grader's process, :mod:`.trusted`, so the messages are the same in both
places). A failure raises :class:`~selfattn_course.grading.errors.CheckFailed` whose message names
the case, the call with the shapes of its inputs, the largest error (where and how big), the
properties in words that the result breaks, and a hint when the result matches a known mistake.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from selfattn_course.grading.errors import CheckFailed
from selfattn_course.grading.spec.calls import provide, quiet
from selfattn_course.grading.spec.cases import Case, describe
from selfattn_course.grading.spec.task import AnswerTask, FunctionTask
from selfattn_course.grading.verdicts.forbid import ForbiddenCall, forbid_calls
from selfattn_course.grading.verdicts.payload import Unsendable

__all__ = [
    "check_function",
    "check_result",
    "check_answer",
    "compare_tensors",
    "run_learner",
    "CheckFailed",
]


# --- function tasks -------------------------------------------------------------------------------


def check_function(
    task: FunctionTask, fn: Any, cases: Sequence[Case], *, level: str = "visible"
) -> int:
    """Run ``fn`` on every case and compare with ``task.reference``; the number of cases passed."""
    if not callable(fn):
        raise CheckFailed(not_a_function(task, describe(fn)))
    for index, case in enumerate(cases, start=1):
        header = case_header(task, case, f"{level} case {index} of {len(cases)}")
        result = _run_learner(task, fn, case.copy(), header)
        check_result(task, case, result, header)
    return len(cases)


def not_a_function(task: FunctionTask, description: str) -> str:
    """The failure of a function task given something that is not a function."""
    return f"{task.id}: expected the function {task.name}, got {description}"


def case_header(task: FunctionTask, case: Case, which: str) -> str:
    """The first two lines of a failure: the task, which case (``"hidden case 3 of 14"``), its
    name and the call with the shapes of its inputs."""
    return f"{task.id} failed on {which}: {case.name}\n  call: {case.call_str(task.name)}"


def check_result(task: FunctionTask, case: Case, result: Any, header: str) -> None:
    """Compare the learner's ``result`` on ``case`` with the reference's (computed here); raise
    :class:`CheckFailed` (``header`` + what is wrong) unless they agree and every property holds."""
    expected = _call(task, task.reference, case.copy())
    _compare_case(task, case, result, expected, header)


def _call(task: FunctionTask, function: Callable[..., Any], case: Case) -> Any:
    with quiet():
        if task.runner is not None:
            return task.runner(function, case)
        return function(*case.args.values(), **case.kwargs)


def run_learner(task: FunctionTask, fn: Callable[..., Any], case: Case) -> Any:
    """Call the learner's ``fn`` on ``case`` with the task's provided helpers bound and its
    forbidden functions watched (:class:`ForbiddenCall` if one was called)."""
    allowed = tuple(task.provided.values())
    with provide(fn, task.provided), forbid_calls(task.forbidden, allowed=allowed):
        return _call(task, fn, case)


def _run_learner(task: FunctionTask, fn: Callable[..., Any], case: Case, header: str) -> Any:
    try:
        return run_learner(task, fn, case)
    except ForbiddenCall as error:
        raise CheckFailed(f"{header}\n  {error}") from None
    except Exception as error:
        raise CheckFailed(
            f"{header}\n  {raised_message(type(error).__name__, str(error))}"
        ) from error


def raised_message(type_name: str, message: str) -> str:
    """What a failure says about an exception the learner's code raised (type and message)."""
    if type_name in (ForbiddenCall.__name__, "Tripped"):  # Tripped: grading.tripwires
        return message
    if type_name == NotImplementedError.__name__:
        return "it raised NotImplementedError: write your solution in place of the stub"
    return f"it raised {type_name}: {message}"


def _compare_case(task: FunctionTask, case: Case, result: Any, expected: Any, header: str) -> None:
    lines = []
    for label, got, want in _pairs(result, expected):
        wrong_kind = _wrong_kind(label, got, want)
        if wrong_kind:
            raise CheckFailed(f"{header}\n  {wrong_kind}")
        rtol, atol = _tolerance(task, want)
        difference = compare_tensors(got, want, rtol=rtol, atol=atol)
        if difference is not None:
            lines.append(
                f"  {label} {tuple(want.shape)} does not match the reference: {difference}"
            )
    broken = _broken_properties(task.properties, result, case.inputs())
    if not lines and not broken:
        return
    lines += [f"  broken property: {description}" for description in broken]
    hint = _matching_mistake(task, case, result)
    if hint is not None:
        lines.append(f"  hint: your result matches what you get when {hint}")
    raise CheckFailed("\n".join([header, *lines]))


def _pairs(result: Any, expected: Any) -> list[tuple[str, Any, Any]]:
    """``(label, result part, expected part)`` for a single array or a tuple of arrays."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(result, (tuple, list)) or len(result) != len(expected):
            return [("result", result, expected)]
        return [
            (f"result[{i}]", got, want)
            for i, (got, want) in enumerate(zip(result, expected, strict=True))
        ]
    return [("result", result, expected)]


def _tolerance(task: FunctionTask, expected: Any) -> tuple[float, float]:
    dtype = (
        expected.dtype
        if isinstance(expected, torch.Tensor)
        else _TORCH_DTYPES.get(str(expected.dtype), torch.float64)
    )
    return task.tolerances.get(dtype, (1e-4, 1e-5))


_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def _wrong_kind(label: str, result: Any, expected: Any) -> str | None:
    """A message if ``result`` is not an array of ``expected``'s kind, shape, dtype and device."""
    if isinstance(expected, (tuple, list)):
        return f"it returned {describe(result)}, expected a tuple of {len(expected)}"
    kind = "torch.Tensor" if isinstance(expected, torch.Tensor) else "numpy.ndarray"
    if result is None:
        return "it returned None: is a `return` missing?"
    if isinstance(result, Unsendable):  # what the grader was told of a value that is not data
        return f"{label} is {result.text}, expected a {kind} of shape {tuple(expected.shape)}"
    if type(result).__name__ != type(expected).__name__ and not isinstance(result, type(expected)):
        shape = tuple(expected.shape)
        return f"{label} is a {type(result).__name__}, expected a {kind} of shape {shape}"
    if tuple(result.shape) != tuple(expected.shape):
        return f"{label} has shape {tuple(result.shape)}, expected {tuple(expected.shape)}"
    if result.dtype != expected.dtype:
        return (
            f"{label} has dtype {result.dtype}, expected {expected.dtype} (the dtype of the inputs)"
        )
    if isinstance(expected, torch.Tensor) and result.device != expected.device:
        return (
            f"{label} is on {result.device}, expected {expected.device} (the device of the inputs)"
        )
    return None


def compare_tensors(actual: Any, expected: Any, *, rtol: float, atol: float) -> str | None:
    """None when ``actual`` is close to ``expected`` everywhere, else where and by how much not.

    Works on torch tensors and NumPy arrays of the same shape. The message names the largest
    error, its index and both values; NaN where a number was expected counts as an infinite error::

        largest error 0.5 at index (0, 2, 1): expected 0.25, got 0.75
        (1 of 24 entries off; tolerance 1e-05 + 0.0001·|expected|)

    (on one line).
    """
    actual64 = _float64(actual)
    expected64 = _float64(expected)
    close = torch.isclose(actual64, expected64, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    error = (actual64 - expected64).abs().nan_to_num(nan=math.inf, posinf=math.inf)
    error = torch.where(close, torch.zeros_like(error), error)
    flat_index = int(torch.argmax(torch.where(close, -1.0, error)))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat_index), error.shape))
    count = int((~close).sum())
    return (
        f"largest error {float(error[index]):.3g} at index {index}: "
        f"expected {float(expected64[index]):.6g}, "
        f"got {float(actual64[index]):.6g} ({count} of {close.numel()} entries off; "
        f"tolerance {atol:g} + {rtol:g}·|expected|)"
    )


def _float64(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(x, dtype=torch.float64)


def _broken_properties(
    properties: Sequence[Any], result: Any, inputs: Mapping[str, Any]
) -> list[str]:
    broken = []
    for prop in properties:
        try:
            with quiet():
                holds = bool(prop.holds(result, inputs))
        except Exception:
            holds = False
        if not holds:
            broken.append(prop.description)
    return broken


def _matching_mistake(task: FunctionTask, case: Case, result: Any) -> str | None:
    """The description of the first known mistake whose output equals ``result``, if any."""
    for mistake in task.mistakes:
        try:
            wrong = _call(task, mistake.wrong, case.copy())
            if all(_same(task, got, want) for _, got, want in _pairs(result, wrong)):
                return mistake.description
        except Exception:
            continue
    return None


def _same(task: FunctionTask, got: Any, want: Any) -> bool:
    if _wrong_kind("result", got, want) is not None:
        return False
    rtol, atol = _tolerance(task, want)
    return compare_tensors(got, want, rtol=rtol, atol=atol) is None


# --- answer tasks ---------------------------------------------------------------------------------


def check_answer(task: AnswerTask, value: Any, *, hidden: bool = False) -> int:
    """Read ``value`` (visible: its form and properties); with ``hidden`` also compare it with the
    expected answer. Returns the number of checks that passed."""
    answer = task.answer_type.read(task.name, value)
    broken = _broken_properties(task.properties, answer, {})
    if broken:
        lines = [f"{task.id}: {task.name} = {_show(value)}"]
        lines += [f"  broken property: {description}" for description in broken]
        raise CheckFailed("\n".join(lines))
    passed = 1 + len(task.properties)
    if not hidden:
        return passed
    if not task.answer_type.same(answer, task.expected):
        lines = [f"{task.id}: {task.name} = {_show(value)} is not the right answer"]
        for mistake in task.mistakes:
            if task.answer_type.same(answer, task.answer_type.read(task.name, mistake.wrong)):
                lines.append(f"  hint: {mistake.description}")
                break
        raise CheckFailed("\n".join(lines))
    return passed + 1


def _show(value: Any) -> str:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, separator=", ").replace("\n", "")
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
