"""Grading: what the exercise notebooks' test cells call, and what the instructor's tools run.

For notebooks (the only thing a test cell needs)::

    from selfattn_course.grading import check
    check("ch02.masked_softmax", masked_softmax)               # visible tests
    check("ch02.masked_softmax", masked_softmax, hidden=True)  # hidden tests

The subpackages follow the pipeline, in the order a submission meets them:

- :mod:`.spec`       how a task is declared: the task types, cases, answer types, how to call an
                     answer, and the registry that finds a chapter's tasks
- :mod:`.tasks`      the chapters' tasks, one module per chapter (``tasks/ch02.py``)
- :mod:`.cell`       :func:`check`, what a test cell runs: visible checks, or the hand-over
- :mod:`.verdicts`   deciding a result: comparison and hints (``compare``), the hand-over payload
                     (``payload``), the grader's verdict on it (``trusted``), what the learner's
                     source may not do (``source_scan``, ``forbid``)
- :mod:`.autograde`  nbgrader integration: preprocessors, sandboxed execution and its kernel,
                     a local run of one notebook (``local_run``)
- :mod:`.classroom`  running a class: the course folder and nbgrader calls (``course``), intake
                     of submitted files, parallel grading, the gradebook report, progress
- :mod:`.notebooks`  reading and writing nbgrader notebooks (cells and their metadata)
- :mod:`.errors`     :class:`CheckFailed`, the one exception a check raises

What a test cell imports (:func:`check` and the registry) needs only torch and numpy; the Jupyter
tools (nbformat, nbclient, nbgrader) are imported by :mod:`.notebooks`, :mod:`.autograde` and
:mod:`.classroom` (nbgrader only when called).
"""

from selfattn_course.grading.cell import check
from selfattn_course.grading.errors import CheckFailed

__all__ = ["check", "CheckFailed"]
