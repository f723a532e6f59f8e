"""Each task that lost points has its reason in grades.csv, read from its autograded test cell.

The end-to-end case (tampering, forbidden calls, forged results through ``nbgrader autograde``)
is in tests/test_grading_tampering.py; here the reasons are read from notebooks written by hand.
"""

from __future__ import annotations

import csv

from nbformat.v4 import new_code_cell, new_notebook, new_output

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.execute import CELL_NOT_RUN, CELL_STOPPED
from selfattn_course.grading.classroom import report
from selfattn_course.grading.classroom.report import TaskScore


def graded_cell(grade_id: str, *outputs) -> object:
    meta = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1, "solution": False}
    cell = new_code_cell(f"check('ch01.{grade_id}', {grade_id}, hidden=True)")
    cell.metadata["nbgrader"] = {**meta, "schema_version": 3}
    cell.outputs = list(outputs)
    return cell


def error(name: str, message: str):
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


TAMPERING = (
    "ch01.weights: code before this test changes the grading tools or runs code the grader "
    "cannot read, so this test cannot be trusted and scores 0:\n"
    "  - cell 3 replaces numpy.allclose"
)
TIMEOUT = "the cell ran past its time limit of 120 s and did not stop when interrupted"


def write_autograded(course_dir):
    notebook = new_notebook(
        cells=[
            graded_cell("weights", error("CheckFailed", TAMPERING)),
            graded_cell("mixing", error(CELL_STOPPED, TIMEOUT), error("KeyboardInterrupt", "")),
            graded_cell("shapes", error(CELL_NOT_RUN, "not run: the kernel died")),
            graded_cell(
                "scores", new_output("stream", name="stdout", text="ch01.scores: passed\n")
            ),
            graded_cell("answer"),
        ]
    )
    notebooks.write(notebook, course_dir / "autograded" / "alice" / "ch01" / "ch01.ipynb")


def test_the_reasons_are_the_first_error_of_each_test_cell_on_one_line(tmp_path):
    write_autograded(tmp_path)
    reasons = report.task_reasons(tmp_path, [("alice", "ch01"), ("bob", "ch01")])
    assert reasons == {
        ("alice", "ch01", "weights"): " ".join(line.strip() for line in TAMPERING.splitlines()),
        ("alice", "ch01", "mixing"): f"{CELL_STOPPED}: {TIMEOUT}",
        ("alice", "ch01", "shapes"): f"{CELL_NOT_RUN}: not run: the kernel died",
    }


def test_every_task_that_lost_points_has_a_reason_in_the_csv(tmp_path):
    write_autograded(tmp_path)
    scores = [
        TaskScore("alice", "ch01", task, score, 1)
        for task, score in [("weights", 0), ("mixing", 0), ("shapes", 0), ("scores", 1)]
    ]
    scores.append(TaskScore("alice", "ch01", "answer", 0, 1))
    reasons = report.task_reasons(tmp_path, [("alice", "ch01")])
    path = report.write_csv(scores, tmp_path / "grades.csv", (), reasons)
    with path.open(newline="") as handle:
        by_task = {row["task"]: row["reason"] for row in csv.DictReader(handle)}
    assert by_task["weights"].startswith("ch01.weights: code before this test changes")
    assert "replaces numpy.allclose" in by_task["weights"]
    assert by_task["mixing"] == f"{CELL_STOPPED}: {TIMEOUT}"
    assert by_task["shapes"].startswith(CELL_NOT_RUN)
    assert by_task["scores"] == ""
    assert by_task["answer"] == report.NO_ERROR_SHOWN


def test_a_long_reason_is_cut(tmp_path):
    notebook = new_notebook(cells=[graded_cell("weights", error("CheckFailed", "x" * 5000))])
    notebooks.write(notebook, tmp_path / "autograded" / "alice" / "ch01" / "ch01.ipynb")
    (reason,) = report.task_reasons(tmp_path, [("alice", "ch01")]).values()
    assert len(reason) == report.MAX_REASON_CHARS and reason.endswith("...")
