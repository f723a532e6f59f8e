"""nbgrader preprocessors: trusted checks when autograding, no hidden source in feedback.

``nbgrader_config.py`` puts them in nbgrader's pipelines, so ``nbgrader autograde``, the
formgrader and ``selfattn-course grade`` all use them:

- :class:`StartTrustedChecks` (autograde, just before ``Execute``): draws the notebook's
  :class:`~selfattn_course.grading.verdicts.payload.GradingDraw` (a fresh seed unless
  ``c.StartTrustedChecks.seed`` fixes one; the available devices) and writes it next to the
  notebook, where the kernel starts, with the cases of the notebook's tasks prepared from it
  (:mod:`selfattn_course.grading.verdicts.handover`), so the hidden tests hand their results
  over instead of deciding (:func:`selfattn_course.grading.cell.hand_over`).
- :class:`VerifyTrustedChecks` (autograde, just before ``SaveAutoGrades``): removes those files,
  decides each hidden test in the grader's process and rewrites the test cells' outputs
  (:func:`selfattn_course.grading.verdicts.trusted.apply_verdicts`), which ``SaveAutoGrades``
  then scores. The draw is recorded in the notebook's metadata
  (``selfattn_course.grading_run``), so a grading can be repeated.
- :class:`HideHiddenTests` (generate_feedback): replaces each hidden-test region of the source
  with one comment line and scrubs any output that shows it. It accepts nbconvert's
  ``display_data_priority`` as configuration, as nbgrader's own ``GetGrades`` does (the HTML
  exporter sets it for every preprocessor; otherwise traitlets warns on every feedback run).

- :class:`OverwriteCellsQuietly` (autograde's sanitize step, in place of nbgrader's
  ``OverwriteCells``): the same, without the warning ``Attribute 'checksum' for cell ... has
  changed!`` for a test cell exactly as released. The release removed its hidden tests, so its
  checksum differs from the source's (nbgrader #1961); the cell is restored from the source
  either way, and a test cell the learner did change still gets the warning.

The configuration lists them by dotted name
(``"selfattn_course.grading.autograde.preprocessors.X"``), so reading it imports nothing.
"""

from __future__ import annotations

from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Integer, List, Unicode

#: Where the draw travels from StartTrustedChecks to VerifyTrustedChecks.
RESOURCES_KEY = "selfattn_course"


class StartTrustedChecks(NbGraderPreprocessor):
    """Draw the notebook's seed and devices and leave them where the kernel will find it."""

    seed = Integer(
        None,
        allow_none=True,
        help="Seed of every grading run (default None: a fresh random seed for each notebook). "
        "Set it to repeat a run: the seed used is in each autograded notebook's metadata.",
    ).tag(config=True)
    devices = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="Devices the hidden cases run on (default None: those a grading kernel can use: "
        "the CPU alone inside the sandbox, which shows no GPU device; every device of this "
        "machine without a sandbox).",
    ).tag(config=True)

    def kernel_devices(self) -> list[str] | None:
        """:attr:`devices`, else ``["cpu"]`` where kernels run sandboxed, else None (all here).

        The draw's devices must be those the learner's kernel has: the kernel builds the hidden
        cases on each of them, and a device it lacks would leave the task without a result."""
        if self.devices is not None:
            return list(self.devices)
        from selfattn_course.grading.autograde.execute import GradingKernelManager

        return ["cpu"] if GradingKernelManager(parent=self).sandboxed else None

    def preprocess(self, nb, resources):
        from selfattn_course.grading.verdicts.payload import GradingDraw
        from selfattn_course.grading.verdicts.trusted import start_grading_run

        draw = GradingDraw.fresh(self.seed, self.kernel_devices())
        folder = resources.get("metadata", {}).get("path") or "."
        state = resources.setdefault(RESOURCES_KEY, {})
        state["draw"] = draw
        state["run_files"] = [str(path) for path in start_grading_run(nb, draw, folder)]
        self.log.info("Trusted checks: seed %d on %s", draw.seed, ", ".join(draw.devices))
        return nb, resources


class VerifyTrustedChecks(NbGraderPreprocessor):
    """Decide the hidden tests in the grader's process and rewrite the test cells' outputs."""

    def preprocess(self, nb, resources):
        from selfattn_course.grading.verdicts.trusted import apply_verdicts

        state = resources.get(RESOURCES_KEY, {})
        for run_file in state.get("run_files", []):
            Path(run_file).unlink(missing_ok=True)
        draw = state.get("draw")
        if draw is None:
            self.log.error("StartTrustedChecks did not run: every hidden test scores 0")
        verdicts = apply_verdicts(nb, draw, resources.get("metadata", {}).get("path"))
        if draw is not None:
            nb.metadata[RESOURCES_KEY] = {
                "grading_run": {"seed": draw.seed, "devices": list(draw.devices)}
            }
        for verdict in verdicts.values():
            outcome = "passed" if verdict.passed else "failed: " + verdict.message.splitlines()[0]
            self.log.info("%s %s", verdict.task_id, outcome)
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback: show each hidden-test region as one comment line and scrub outputs."""

    display_data_priority = List(
        NbGraderPreprocessor.class_traits()["display_data_priority"].default_value,
        help="The output formats in order of preference (set by nbconvert's exporters; unused "
        "here, declared as nbgrader's GetGrades does so that setting it is no error).",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        from selfattn_course.grading.verdicts.trusted import (
            hidden_lines,
            hide_hidden_tests,
            scrub_outputs,
        )

        secret = hidden_lines(nb)
        for cell in nb.cells:
            cell.source = hide_hidden_tests(cell.source)
            if cell.cell_type == "code":
                scrub_outputs(cell, secret)
        return nb, resources


class OverwriteCellsQuietly(OverwriteCells):
    """nbgrader's ``OverwriteCells``, quiet about the checksum of a test cell left as released
    (module doc); configured as ``c.OverwriteCells.*`` like the original."""

    _as_released = False

    def preprocess_cell(self, cell, resources, cell_index):
        self._as_released = self._is_as_released(cell)
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr == "checksum" and self._as_released:
            self.log.debug("Cell %s is as released (its hidden tests removed): restored", name)
            return
        super().report_change(name, attr, old, new)

    def _is_as_released(self, cell) -> bool:
        """Whether ``cell`` is its source cell with the hidden-test regions removed, as
        ``generate_assignment`` released it."""
        from nbformat.v4 import new_code_cell
        from nbgrader.api import MissingEntry
        from nbgrader.preprocessors import ClearHiddenTests

        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            return False
        try:
            source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
        except MissingEntry:
            return False
        released = new_code_cell(source.source)
        try:
            ClearHiddenTests(parent=self)._remove_hidden_test_region(released)
        except RuntimeError:  # an unfinished hidden region: not what a release holds
            return False
        return cell.source == released.source
