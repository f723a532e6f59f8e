"""The graded kernel works without the grader's task modules (references, expected answers).

- every registered task prepares into data that unpickles where ``selfattn_course.grading.tasks``
  cannot be imported (as in the sandbox, which hides it);
- a hand-over from prepared cases gives the payload the grader accepts, and the grader rebuilds
  the same inputs;
- outside grading, a hidden check compares nothing (no trying answers until one passes);
- while grading, a visible check needs no registry.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import IPython.display
import pytest
import torch
from helpers import masked_softmax_by_hand

from selfattn_course.grading.cell import check, hand_over
from selfattn_course.grading.spec.provided import masked_softmax
from selfattn_course.grading.spec.registry import chapter_tasks, get_task, registered_chapters
from selfattn_course.grading.verdicts import payload as payload_module
from selfattn_course.grading.verdicts.handover import (
    HANDOVER_FILE,
    kernel_reachable,
    prepare_task,
    read_hand_over,
    write_hand_over,
)
from selfattn_course.grading.verdicts.payload import MIME_TYPE, GradingDraw
from selfattn_course.grading.verdicts.trusted import verify

DRAW = GradingDraw(20261207, ("cpu",))
EVERY_TASK = [task for chapter in registered_chapters() for task in chapter_tasks(chapter).values()]

# Run in a fresh interpreter: the task modules cannot be imported, as in the sandbox.
WITHOUT_TASKS = textwrap.dedent(
    """
    import sys, importlib.abc

    class HideTasks(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "selfattn_course.grading.tasks" or name.startswith(
                "selfattn_course.grading.tasks."
            ):
                raise ModuleNotFoundError(f"hidden: {name}")
            return None

    sys.meta_path.insert(0, HideTasks())
    import torch
    data = torch.load(sys.argv[1], weights_only=False)
    assert "selfattn_course.grading.tasks" not in sys.modules
    print(len(data["tasks"]), sum(len(task.cases) for task in data["tasks"].values()))
    """
)


def test_every_task_prepares_into_data_the_kernel_can_unpickle_without_the_task_modules(tmp_path):
    path = write_hand_over(tmp_path, DRAW, EVERY_TASK)
    assert path.name == HANDOVER_FILE
    script = tmp_path / "load.py"
    script.write_text(WITHOUT_TASKS)
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tasks, cases = map(int, done.stdout.split())
    expected_cases = sum(len(prepare_task(task, DRAW).cases) for task in EVERY_TASK)
    assert tasks == len(EVERY_TASK) and cases == expected_cases > len(EVERY_TASK)


def test_a_prepared_task_holds_no_reference_answer_or_hidden_task_name():
    for task in EVERY_TASK:
        prepared = prepare_task(task, DRAW)
        assert not hasattr(prepared, "reference") and not hasattr(prepared, "expected")
        assert all(kernel_reachable(name) for name in prepared.forbidden)
    ch16 = prepare_task(get_task("ch16.best_span"), DRAW)
    assert "selfattn_course.grading.tasks.ch16.best_span" in get_task("ch16.best_span").forbidden
    assert not any("grading.tasks" in name for name in ch16.forbidden)


def shown_payload(prepared, submission):
    shown = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IPython.display, "publish_display_data", shown.append)
        hand_over(prepared, submission, DRAW)
    assert len(shown) == 1
    return shown[0][MIME_TYPE]


def test_a_hand_over_from_prepared_cases_is_accepted_by_the_grader_that_rebuilds_them(tmp_path):
    write_hand_over(tmp_path, DRAW, [get_task("ch02.masked_softmax")])
    DRAW.write(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payload_module, "_START_FOLDER", tmp_path)
        (prepared,) = read_hand_over(DRAW).values()
    verdict = verify(
        get_task("ch02.masked_softmax"), [shown_payload(prepared, masked_softmax_by_hand)], DRAW
    )
    assert verdict.passed, verdict.message
    verdict = verify(
        get_task("ch02.masked_softmax"), [shown_payload(prepared, masked_softmax)], DRAW
    )
    assert "called selfattn_course.attention.softmax" in verdict.message

    def forgets_the_mask(scores, mask):
        return torch.softmax(scores, dim=-1)

    verdict = verify(
        get_task("ch02.masked_softmax"), [shown_payload(prepared, forgets_the_mask)], DRAW
    )
    assert not verdict.passed


def test_a_hand_over_of_another_runs_file_is_refused(tmp_path):
    write_hand_over(tmp_path, GradingDraw(1, ("cpu",)), [get_task("ch01.mixing")])
    DRAW.write(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payload_module, "_START_FOLDER", tmp_path)
        with pytest.raises(RuntimeError, match="not this grading run"):
            read_hand_over(DRAW)


def test_outside_grading_a_hidden_check_compares_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(payload_module, "_START_FOLDER", tmp_path)
    answer_task = next(task for task in EVERY_TASK if not hasattr(task, "reference"))
    for guess in (answer_task.expected, "certainly wrong", None):
        check(answer_task.id, guess, hidden=True)  # never raises: nothing is compared
    said = capsys.readouterr().out
    assert said.count("run only when the notebook is graded") == 3
    check("ch02.masked_softmax", lambda scores, mask: None, hidden=True)
    assert "nothing was checked here" in capsys.readouterr().out


def test_while_grading_a_visible_check_defers_to_the_grader_without_the_registry(
    capsys, tmp_path, monkeypatch
):
    DRAW.write(tmp_path)
    monkeypatch.setattr(payload_module, "_START_FOLDER", tmp_path)
    import selfattn_course.grading.spec.registry as registry

    monkeypatch.setattr(registry, "get_task", lambda task_id: pytest.fail("registry read"))
    check("ch02.masked_softmax", lambda scores, mask: None)
    assert "the grader checks these cases" in capsys.readouterr().out


def test_a_module_tasks_weights_are_prepared_under_the_runs_seed_as_the_grader_draws_them():
    from selfattn_course.grading.spec.cases import run_seed

    task = get_task("ch05.self_attention")
    prepared = prepare_task(task, DRAW)
    layer = next(iter(prepared.cases)).args["layer"]
    with run_seed(DRAW.seed):
        expected = task.runner.weights(layer)
    got = prepared.runner.weights(layer)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)
