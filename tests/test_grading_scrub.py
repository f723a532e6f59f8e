"""Hidden tests never reach a learner, and hiding them costs time in proportion to the notebook;
nbgrader itself runs under a wall-clock limit per batch.

The secret lines come from the test cells alone (the instructor's source, put back by nbgrader),
so a learner's cell holding ``### BEGIN HIDDEN TESTS`` and 40,000 lines after it, or an error
message of 40,000 lines, cannot make scrubbing quadratic (it once stalled a class for minutes).
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from selfattn_course.grading.autograde.preprocessors import HideHiddenTests
from selfattn_course.grading.verdicts.trusted import HIDDEN_PLACEHOLDER, hidden_lines

SECRET = "check('ch01.mixing', mixing, hidden=True)  # the hidden call"


def graded_test_cell(source: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "mixing"}
    return cell


def hostile_notebook(lines: int):
    flood = "\n".join(f"line {number}" for number in range(lines))
    learner_cell = new_code_cell("raise ValueError(...)")
    learner_cell.outputs = [
        new_output("error", ename="ValueError", evalue=flood, traceback=flood.split("\n")),
        new_output("stream", name="stdout", text=f"{flood}\n{SECRET}\n"),
    ]
    return new_notebook(
        cells=[
            new_markdown_cell("### BEGIN HIDDEN TESTS\n" + flood),
            learner_cell,
            graded_test_cell(
                f"check('ch01.mixing', mixing)\n### BEGIN HIDDEN TESTS\n{SECRET}\n"
                "### END HIDDEN TESTS"
            ),
        ]
    )


def test_only_test_cells_give_secret_lines_each_once():
    notebook = hostile_notebook(40_000)
    notebook.cells.append(
        graded_test_cell(f"### BEGIN HIDDEN TESTS\n{SECRET}\n### END HIDDEN TESTS")
    )
    assert hidden_lines(notebook) == ["### BEGIN HIDDEN TESTS", SECRET, "### END HIDDEN TESTS"]


def test_a_flood_of_lines_is_scrubbed_of_the_secret_and_kept_otherwise():
    notebook = hostile_notebook(40_000)
    scrubbed, _ = HideHiddenTests().preprocess(nbformat.from_dict(notebook), {})
    text = nbformat.writes(scrubbed)
    assert "the hidden call" not in text
    assert "line 39999" in text  # the learner's own lines stay
    assert scrubbed.cells[0].source == HIDDEN_PLACEHOLDER  # the region hides to its end


def test_nbgrader_past_its_time_limit_is_killed_and_says_so(tmp_path):
    from selfattn_course.grading.autograde.nbgrader_command import run_nbgrader

    command = run_nbgrader(tmp_path, ["--version"], timeout=0.01)
    assert command.timed_out and command.returncode < 0
    finished = run_nbgrader(tmp_path, ["--version"], timeout=120)
    assert not finished.timed_out and finished.ok
