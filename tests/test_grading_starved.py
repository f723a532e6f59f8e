"""A cell that times out while the machine is too busy is not the learner's fault: it is graded
again (execute.starved, the notebook's STARVED_KEY, UnitResult.worth_retrying).

The issue's case: another notebook's 150 threads of matrix products in a one-CPU cgroup made an
honest learner's cell pass its 120 s limit, and the learner scored 0 with no retry.
"""

from __future__ import annotations

import itertools
import json

import pytest
from test_grading_robustness import needs_sandbox, run_tiny, tiny

from selfattn_course.grading.autograde.execute import STARVED_KEY, GradingExecute, starved
from selfattn_course.grading.classroom import pools
from selfattn_course.grading.classroom.intake import Intake, Problem
from selfattn_course.grading.classroom.pipeline import ClassGrading, Summary
from selfattn_course.grading.classroom.units import Unit, UnitResult, _starved_reason


@pytest.mark.parametrize(
    "ran, waited, timeout, expected",
    [
        (0.0, 0.0, 10, False),  # time.sleep: neither runs nor waits
        (9.8, 0.1, 10, False),  # an endless loop on a quiet machine
        (1.0, 8.0, 10, True),  # runnable most of the time, rarely running
        (0.05, 0.1, 10, False),  # waited more than it ran, but for too little of the limit
        (4.0, 5.0, 10, True),
    ],
)
def test_starved_means_waiting_for_a_cpu_longer_than_running_and_for_a_real_share(
    ran, waited, timeout, expected
):
    assert starved(ran, waited, timeout) is expected


@needs_sandbox
def test_a_timed_out_cell_of_a_starved_sandbox_marks_the_notebook(tmp_path, monkeypatch):
    counter = itertools.count()

    def busy_machine(self):  # every look: 1 s more run, 8 s more waiting
        step = next(counter)
        return float(step), 8.0 * step

    monkeypatch.setattr(GradingExecute, "_sandbox_schedstat", busy_machine)
    nb = run_tiny(tiny("while True:\n    pass", "print('next')"), tmp_path, timeout=2)
    (reason,) = nb.metadata[STARVED_KEY]
    assert reason.startswith("a cell ran past its 2 s limit while the machine was too busy")
    assert "waited 8.0 s for a CPU and ran 1.0 s" in reason


@needs_sandbox
def test_a_cell_that_times_out_alone_is_not_marked(tmp_path):
    nb = run_tiny(tiny("import time\ntime.sleep(30)"), tmp_path, timeout=2)
    assert STARVED_KEY not in nb.metadata
    assert "time limit" in json.dumps(nb.cells[0].outputs)


def test_the_unit_reads_the_mark_from_its_autograded_notebook():
    marked = json.dumps({"metadata": {STARVED_KEY: ["too busy"]}, "cells": []}).encode()
    assert _starved_reason({"ch01.ipynb": marked, "data.txt": b"x"}) == "too busy"
    assert _starved_reason({"ch01.ipynb": b'{"metadata": {}}'}) is None
    assert _starved_reason({"ch01.ipynb": b"not json"}) is None


def test_a_starved_unit_is_graded_again_alone_and_a_plain_one_is_not():
    units = [Unit("a", "ch01", {}, "h"), Unit("b", "ch01", {}, "h")]
    results = [
        UnitResult("a", "ch01", "h", ok=True, starved="too busy"),
        UnitResult("b", "ch01", "h", ok=True),
    ]
    seen, again = [], []
    pools._after_batch(
        units,
        1,
        results,
        lambda result, _attempt: seen.append(result.student),
        lambda batch, attempt: again.append((batch, attempt)),
    )
    assert seen == ["a", "b"]
    assert again == [([units[0]], 2)]


def test_a_unit_graded_twice_under_strain_keeps_its_grade_with_a_remark():
    remark = Problem("a", "ch01", "graded twice while the machine was too busy (x)", graded=True)
    grading = ClassGrading(Intake(None), Summary("1 worker"), [remark])
    assert grading.not_graded == []
    assert grading.problems == [remark]
