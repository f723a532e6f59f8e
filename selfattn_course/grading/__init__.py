"""Grading: what the exercise notebooks' test cells call, and what the instructor's tools run.

For notebooks (the only thing a test cell needs)::

    from selfattn_course.grading import check
    check("ch02.masked_softmax", masked_softmax)               # visible tests
    check("ch02.masked_softmax", masked_softmax, hidden=True)  # hidden tests

The subpackages follow the pipeline a submission goes through:

- :mod:`.spec`       how a task is declared (``task``: the task types, ``cases``, ``answers``,
                     ``calls``: how an answer is called) and the ``registry`` that finds a
                     chapter's tasks from a task id
- :mod:`.verdicts`   deciding a result: comparison and hints (``compare``), forbidden calls
                     (``forbid``), the hand-over payload and the draw of seed and devices
                     (``payload``), the grader's verdict on it (``trusted``), what the learner's
                     source may not do (``source_scan``)
- :mod:`.tasks`      the chapters' tasks, one module per chapter (``tasks/ch02.py``)
- :mod:`.cell`       :func:`check`, what a test cell runs: visible checks, or the hand-over
- :mod:`.autograde`  nbgrader integration: running nbgrader (``nbgrader_command``), the
                     preprocessors, sandboxed execution (``execute``, ``sandbox``,
                     ``sandbox_kernel``, ``plain_files``) and one notebook run here
                     (``local_run``: ``selfattn-course check`` and ``validate``), and the
                     feedback page (``feedback_page``: its template, MathJax inlined)
- :mod:`.classroom`  running a class: the course folder, release and feedback (``course``), the
                     intake of submitted files, units and their batches (``units``), where
                     they are graded (``pools``), the one gradebook writer (``gradebook``), the
                     one pipeline for one worker or many (``pipeline``), the report
                     (``report``) and the progress bar
- :mod:`.notebooks`  reading and writing nbgrader notebooks (cells and their metadata)
- :mod:`.errors`     :class:`CheckFailed`, the one exception a check raises
- :mod:`.names`      what a dotted function name (a forbidden or provided one) refers to
- :mod:`.tripwires`  in a graded kernel, what the notebook's tasks forbid stops working (an audit
                     hook, in-place rewrites, dispatcher kernels), installed by ``cell.arm``

Imports go down these stages, never up, and never in a cycle (tests/test_grading_layout.py
checks it): ``errors``, ``names``, ``notebooks`` and ``tripwires`` < ``spec`` < ``verdicts`` <
``tasks`` < ``cell`` < ``autograde`` < ``classroom`` < this package's ``__init__``. The verdicts
judge any task through the spec's types and never name a chapter; the tasks are the course's
content, written with the spec and the verdicts' lists of forbidden calls. One lookup goes up by
design: the registry finds a chapter's module in :mod:`.tasks` by its name.

What a test cell imports (:func:`check`, the spec, the verdicts but ``trusted``; the tasks only
outside grading, since the sandbox hides them) needs only torch and numpy; the Jupyter tools
(nbformat, nbclient, nbgrader) are imported by :mod:`.notebooks`, :mod:`.verdicts.trusted`,
:mod:`.autograde` and :mod:`.classroom` (nbgrader only when called).
"""

from selfattn_course.grading.cell import check
from selfattn_course.grading.errors import CheckFailed

__all__ = ["check", "CheckFailed"]
