"""Trusted checks: in its own process, the grader decides each hidden test from the payload.

After an executed notebook comes back from the learner's kernel, :func:`verify_notebook` takes
each test cell whose source calls ``check(task_id, name, hidden=True)`` and gives it a
:class:`Verdict`:

1. the learner's source is read (:mod:`.source_scan`): tampering with the grading tools fails
   every test cell after it, a from-scratch task that uses what it must write by hand fails
   (only the cells before a test cell count: later ones cannot change what it checked);
2. the cell must hold exactly one payload (:mod:`.payload`) for its task, from this grading's draw
   (seed and devices) and from the inputs the grader builds (same digest);
3. the grader computes the reference on those inputs and compares each outcome with
   :func:`~.compare.check_result` or :func:`~.compare.check_answer`: the same comparison,
   properties, hints and messages as a learner's own ``check``.

A cell with no payload (it did not run, stopped at an error, or ``check`` was replaced), a
malformed one, or one from other inputs fails. :func:`rewrite_outputs` then replaces what the
cell shows with the verdict: a line on stdout when it passed, one error whose message is the
teaching message when it failed (task, case, input shapes, largest error, broken properties in
words; never a traceback into hidden code). nbgrader scores the cell from those outputs.
:mod:`selfattn_course.grading.autograde.preprocessors` runs all of this inside
``nbgrader autograde``.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfattn_course.grading.errors import CheckFailed
from selfattn_course.grading.notebooks import nbgrader_meta
from selfattn_course.grading.spec.cases import run_seed
from selfattn_course.grading.spec.registry import get_task
from selfattn_course.grading.spec.task import AnswerTask, FunctionTask, Task
from selfattn_course.grading.verdicts.compare import (
    case_header,
    check_answer,
    check_result,
    not_a_function,
    raised_message,
)
from selfattn_course.grading.verdicts.handover import write_hand_over
from selfattn_course.grading.verdicts.payload import (
    FORMAT,
    MIME_TYPE,
    GradingDraw,
    MalformedPayload,
    decode,
    inputs_digest,
)
from selfattn_course.grading.verdicts.source_scan import CodeCell, SourceReport, inspect_cells

log = logging.getLogger(__name__)

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
HIDDEN_PLACEHOLDER = "# (hidden tests: they run when the notebook is graded; their result is below)"


@dataclass(frozen=True)
class Verdict:
    """The grader's decision on one test cell: passed, and the message the learner sees."""

    task_id: str
    passed: bool
    message: str


# --- one task -------------------------------------------------------------------------------------


def verify(
    task: Task, payloads: Sequence[Any], draw: GradingDraw, *, stopped_at: str | None = None
) -> Verdict:
    """Decide ``task`` from the payloads its test cell displayed.

    ``stopped_at`` is the error (``"NameError: name 'attention' is not defined"``) that stopped
    the cell, if one did: with no payload it is the reason given.
    """
    try:
        with run_seed(draw.seed):
            message = _verify(task, payloads, draw, stopped_at)
    except CheckFailed as failure:
        return Verdict(task.id, False, str(failure))
    except MalformedPayload as error:
        return Verdict(
            task.id,
            False,
            f"{task.id}: the result handed to the grader is malformed ({error}), "
            "so this task scores 0",
        )
    except Exception as error:  # a result the comparison cannot handle: fail, never crash grading
        log.exception("could not check %s", task.id)
        return Verdict(
            task.id,
            False,
            f"{task.id}: the grader could not check the result ({type(error).__name__}: {error})",
        )
    return Verdict(task.id, True, message)


def _verify(task: Task, payloads: Sequence[Any], draw: GradingDraw, stopped_at: str | None) -> str:
    if not payloads:
        raise CheckFailed(_no_result(task, stopped_at))
    if len(payloads) > 1:
        raise CheckFailed(
            f"{task.id}: the test cell showed {len(payloads)} results for the grader instead of "
            "one, so this task scores 0"
        )
    payload = payloads[0]
    _check_header(task, payload, draw)
    if isinstance(task, AnswerTask):
        if "answer" not in payload:
            raise MalformedPayload("it holds no answer")
        passed = check_answer(task, decode(payload["answer"], draw.devices), hidden=True)
        return f"{task.id}: {passed} checks passed (checked by the grader)"
    if "not_callable" in payload:
        raise CheckFailed(not_a_function(task, str(payload["not_callable"])[:200]))
    return _verify_function(task, payload, draw)


def _no_result(task: Task, stopped_at: str | None) -> str:
    if stopped_at is None:
        return (
            f"{task.id}: the hidden tests did not run or handed no result to the grader, so this "
            "task scores 0 (did the test cell run to its end? does the notebook change `check` "
            "or how cells run?)"
        )
    if stopped_at.startswith(f"{CheckFailed.__name__}: "):
        return stopped_at.removeprefix(f"{CheckFailed.__name__}: ")  # the visible tests' message
    return f"{task.id}: the test cell stopped at {stopped_at}\n  so the hidden tests did not run"


def _check_header(task: Task, payload: Any, draw: GradingDraw) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MalformedPayload(f"it is not a format-{FORMAT} result")
    if payload.get("task") != task.id:
        raise CheckFailed(
            f"{task.id}: the result in this test cell is for {str(payload.get('task'))[:60]!r}, "
            "so this task scores 0"
        )
    if payload.get("seed") != draw.seed or payload.get("devices") != list(draw.devices):
        raise CheckFailed(
            f"{task.id}: the result in this test cell is not from this grading run (it was made "
            "with another seed or other devices), so this task scores 0"
        )


def _verify_function(task: FunctionTask, payload: dict, draw: GradingDraw) -> str:
    visible = task.visible_cases()
    hidden = task.hidden_cases(draw.torch_devices())
    cases = [*visible, *hidden]
    if payload.get("inputs") != inputs_digest(cases):
        raise CheckFailed(
            f"{task.id}: the hidden tests ran on other inputs than the grader chose, so this task "
            "scores 0"
        )
    outcomes = payload.get("outcomes")
    if not isinstance(outcomes, list) or len(outcomes) != len(cases):
        raise MalformedPayload(f"it should hold {len(cases)} outcomes")
    for index, (case, outcome) in enumerate(zip(cases, outcomes, strict=True)):
        which = (
            f"visible case {index + 1} of {len(visible)}"
            if index < len(visible)
            else f"hidden case {index - len(visible) + 1} of {len(hidden)}"
        )
        header = case_header(task, case, which)
        if not isinstance(outcome, dict):
            raise MalformedPayload(f"outcome {index + 1} is not an object")
        if "raised" in outcome:
            error = outcome["raised"]
            if not isinstance(error, dict):
                raise MalformedPayload(f"outcome {index + 1} is not an object")
            kind, message = str(error.get("type"))[:100], str(error.get("message"))
            raise CheckFailed(f"{header}\n  {raised_message(kind, message)}")
        if "value" not in outcome:
            raise MalformedPayload(f"outcome {index + 1} holds neither a value nor an error")
        check_result(task, case, decode(outcome["value"], draw.devices), header)
    return (
        f"{task.id}: {len(visible)} visible and {len(hidden)} hidden cases passed "
        "(checked by the grader)"
    )


def payloads_in(outputs: Iterable[Any]) -> list[Any]:
    """The payloads among a cell's outputs (display data or results of type :data:`MIME_TYPE`)."""
    return [
        output["data"][MIME_TYPE]
        for output in outputs
        if output.get("output_type") in ("display_data", "execute_result")
        and isinstance(output.get("data"), dict)
        and MIME_TYPE in output["data"]
    ]


# --- one notebook ---------------------------------------------------------------------------------


def is_course_cell(cell: Any) -> bool:
    """A locked cell nbgrader knows (it restores their source from the source notebook before
    the run); every other code cell holds the learner's code."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade_id")) and bool(meta.get("locked"))


def is_test_cell(cell: Any) -> bool:
    return (
        cell.get("cell_type") == "code"
        and is_course_cell(cell)
        and bool(nbgrader_meta(cell).get("grade"))
    )


def hidden_check(source: str) -> tuple[str, str] | None:
    """``(task id, name checked)`` of the call ``check("chNN.x", x, hidden=True)`` in a test
    cell's source, or None when it has none (the cell is then scored as nbgrader does)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "check"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Name)
            and any(
                keyword.arg == "hidden"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
                for keyword in node.keywords
            )
        ):
            return node.args[0].value, node.args[1].id
    return None


def notebook_tasks(notebook: Any) -> list[Task]:
    """The registered tasks whose hidden test is in ``notebook``'s test cells, in its order, once
    each (an id the registry does not know is left out: its cell fails for want of a payload)."""
    found: dict[str, Task] = {}
    for _, _, task_id, _ in hidden_tests(notebook):
        try:
            found.setdefault(task_id, get_task(task_id))
        except KeyError:
            continue
    return list(found.values())


def hidden_tests(notebook: Any) -> list[tuple[int, Any, str, str]]:
    """``(index, cell, task id, name checked)`` of each test cell that calls a hidden check."""
    return [
        (index, cell, *call)
        for index, cell in enumerate(notebook.get("cells", []))
        if is_test_cell(cell) and (call := hidden_check(cell.get("source", ""))) is not None
    ]


def start_grading_run(notebook: Any, draw: GradingDraw, folder: str | Path) -> list[Path]:
    """Leave in ``folder`` (where the notebook's kernel starts) what the kernel needs to be graded
    with ``draw``: the draw (:data:`~.payload.DRAW_FILE`) and the prepared cases of the notebook's
    tasks (:data:`~.handover.HANDOVER_FILE`); returns the two paths, for removal afterwards."""
    handover = write_hand_over(folder, draw, notebook_tasks(notebook))
    return [draw.write(folder), handover]


def calls_check(source: str) -> bool:
    """Whether a test cell calls the course's ``check`` (visible or hidden)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
        for node in ast.walk(tree)
    )


def code_cells(notebook: Any) -> list[CodeCell]:
    """The notebook's code cells for :mod:`.source_scan`, labelled by grade id or number."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        label = f"cell '{grade_id}'" if grade_id else f"cell {index + 1}"
        source = cell.get("source", "")
        found.append(CodeCell(label, source, trusted=is_course_cell(cell), position=index))
    return found


def verify_notebook(
    notebook: Any, draw: GradingDraw | None, folder: str | Path | None = None
) -> dict[int, Verdict]:
    """A verdict for each test cell (by its index in ``notebook.cells``) that calls a hidden check.

    ``run`` None means the notebook did not run as part of a grading run: every such cell fails.
    ``folder`` is where the notebook ran (the source checks look for modules imported from it).
    """
    tests = hidden_tests(notebook)
    if not tests:
        return {}
    report = inspect_cells(code_cells(notebook), folder)
    verdicts = {}
    for index, cell, task_id, name in tests:
        verdicts[index] = _verdict(get_task(task_id), name, index, cell, report, draw)
    return verdicts


def _verdict(
    task: Task, name: str, index: int, cell: Any, report: SourceReport, draw: GradingDraw | None
) -> Verdict:
    """The verdict on the test cell at ``index``: only the cells before it can affect it."""
    if draw is None:
        return Verdict(
            task.id,
            False,
            f"{task.id}: the grader did not start a grading run for this notebook, so its hidden "
            "tests could not be checked (is StartTrustedChecks in nbgrader_config.py?)",
        )
    tampering = report.tampering_before(index)
    if tampering:
        return Verdict(
            task.id,
            False,
            _listing(
                f"{task.id}: code before this test changes the grading tools or runs code the "
                "grader cannot read, so this test cannot be trusted and scores 0:",
                tampering,
            ),
        )
    if isinstance(task, FunctionTask):
        forbidden = report.forbidden(task, name, before=index)
        if forbidden:
            return Verdict(
                task.id,
                False,
                _listing(
                    f"{task.id}: this task asks you to write it yourself, so it scores 0; "
                    "your code",
                    forbidden,
                ),
            )
    outputs = cell.get("outputs", [])
    return verify(task, payloads_in(outputs), draw, stopped_at=_stopped_at(outputs))


def _listing(intro: str, findings: Sequence[Any], most: int = 5) -> str:
    lines = [intro, *(f"  - {finding}" for finding in findings[:most])]
    if len(findings) > most:
        lines.append(f"  - ... and {len(findings) - most} more")
    return "\n".join(lines)


def _stopped_at(outputs: Iterable[Any]) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


# --- what the cells show --------------------------------------------------------------------------


def hidden_lines(notebook: Any) -> list[str]:
    """The lines of every hidden-test region (delimiters included), stripped, each once: text
    that must not reach a learner.

    Only test cells (graded, not solutions) are read: they are the instructor's (nbgrader puts
    their source back before grading), so the list stays as short as the course's hidden tests,
    and scrubbing an output costs time in proportion to its length. A region a learner writes in
    a cell of their own hides nothing of the course's.
    """
    lines: dict[str, None] = {}
    for cell in notebook.get("cells", []):
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        inside = False
        for line in cell.get("source", "").splitlines():
            if HIDDEN_BEGIN in line:
                inside = True
            if inside and line.strip():
                lines[line.strip()] = None
            if HIDDEN_END in line:
                inside = False
    return list(lines)


def hide_hidden_tests(source: str) -> str:
    """``source`` with every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region
    replaced by :data:`HIDDEN_PLACEHOLDER` (an unfinished region is hidden to the end)."""
    lines, inside = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside = True
            lines.append(HIDDEN_PLACEHOLDER)
        elif not inside:
            lines.append(line)
        elif HIDDEN_END in line:
            inside = False
    return "\n".join(lines)


def scrub(text: str, secret_lines: Sequence[str]) -> str:
    """``text`` without the lines that show a hidden test's source."""
    markers = (HIDDEN_BEGIN, HIDDEN_END, *secret_lines)
    kept = [line for line in text.splitlines(keepends=True) if not any(m in line for m in markers)]
    return "".join(kept)


def rewrite_outputs(cell: Any, verdict: Verdict | None, secret_lines: Sequence[str]) -> None:
    """Make a test cell show what the grader decided (in place).

    The learner's stdout stays (scrubbed of hidden source); stderr goes (warnings cost nothing);
    the kernel's errors, displays and payloads go. Then the verdict: a stdout line when passed,
    one ``CheckFailed`` error with the message and no traceback frames when failed. With no
    verdict (a test cell without a hidden check) only stderr goes, and hidden source is scrubbed.
    """
    outputs = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") == "stdout":
            output["text"] = scrub(output.get("text", ""), secret_lines)
            if output["text"]:
                outputs.append(output)
        elif verdict is None and not (kind == "stream" and output.get("name") == "stderr"):
            outputs.append(_scrubbed(output, secret_lines))
    if verdict is not None:
        outputs.append(_verdict_output(verdict, secret_lines))
    cell["outputs"] = outputs


def scrub_outputs(cell: Any, secret_lines: Sequence[str]) -> None:
    """Remove hidden source from what any code cell shows (in place)."""
    cell["outputs"] = [_scrubbed(output, secret_lines) for output in cell.get("outputs", [])]


def _scrubbed(output: Any, secret_lines: Sequence[str]) -> Any:
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = scrub(output.get("text", ""), secret_lines)
    elif kind == "error":
        output["evalue"] = scrub(str(output.get("evalue", "")), secret_lines)
        output["traceback"] = [scrub(line, secret_lines) for line in output.get("traceback", [])]
    elif isinstance(output.get("data"), dict) and isinstance(output["data"].get("text/plain"), str):
        output["data"]["text/plain"] = scrub(output["data"]["text/plain"], secret_lines)
    return output


def _verdict_output(verdict: Verdict, secret_lines: Sequence[str]) -> Any:
    from nbformat.v4 import new_output

    message = scrub(verdict.message, secret_lines)
    if verdict.passed:
        return new_output("stream", name="stdout", text=message + "\n")
    return new_output(
        "error",
        ename=CheckFailed.__name__,
        evalue=message,
        traceback=[f"{CheckFailed.__name__}: {message}"],
    )


def apply_verdicts(
    notebook: Any, draw: GradingDraw | None, folder: str | Path | None = None
) -> dict[int, Verdict]:
    """:func:`verify_notebook`, then rewrite every test cell's outputs and scrub the others.
    Returns the verdicts."""
    verdicts = verify_notebook(notebook, draw, folder)
    secret = hidden_lines(notebook)
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if index in verdicts or (is_test_cell(cell) and calls_check(cell.get("source", ""))):
            rewrite_outputs(cell, verdicts.get(index), secret)
        else:
            scrub_outputs(cell, secret)
    return verdicts
