"""Grading: what the exercise notebooks' test cells call, and what the instructor's tools run.

For notebooks (the only thing a test cell needs)::

    from selfattn_course.grading import check
    check("ch02.masked_softmax", masked_softmax)               # visible tests
    check("ch02.masked_softmax", masked_softmax, hidden=True)  # hidden tests

Modules, one job each:

- :mod:`.registry`  the task registry: task id -> reference, cases, tolerances, properties, mistakes
- :mod:`.tasks`     one module per chapter listing its tasks (``tasks/ch02.py``)
- :mod:`.cases`     input builders for cases (random q/k/v, masks), deterministic by seed
- :mod:`.checks`    :func:`check`: run a learner's function or answer, compare, explain failures
- :mod:`.errors`    :class:`CheckFailed`, the one exception a check raises
- :mod:`.answers`   answer types for conceptual questions (number, matrix, choice, index set)
- :mod:`.forbid`    forbid calls to ready-made attention in "from scratch" tasks
- :mod:`.notebooks` read and write nbgrader notebooks (task cells, metadata)
- :mod:`.course`    the course directory, its chapters, and running nbgrader
- :mod:`.report`    scores from the gradebook as a table and a CSV
- :mod:`.progress`  the progress bar of long grading runs
- :mod:`.selfcheck` a learner's self-check of a notebook's visible tests
- :mod:`.runners`   how to call answers that are not plain tensor functions (numbers, nn.Modules)

The hardened grader (what ``nbgrader autograde`` runs with the course's ``nbgrader_config.py``):

- :mod:`.payload`       the result a hidden test cell hands over: task, seed, input digest, outputs
- :mod:`.trusted`       the grader's verdict on a hand-over, decided in the grader's own process
- :mod:`.source_checks` what the grader reads in the learner's source: forbidden calls, tampering
- :mod:`.preprocessors` the nbgrader steps: start a grading run, verify it, hide hidden tests
- :mod:`.execute`       cell-by-cell sandboxed execution that survives crashes, timeouts and floods
- :mod:`.sandbox`, :mod:`.sandbox_kernel`  the bubblewrap sandbox and its Jupyter kernel manager
- :mod:`.intake`        submitted files checked before grading: bad JSON, wrong names, links

What a test cell imports (:func:`check` and the registry) needs only torch and numpy; the Jupyter
tools (nbformat, nbclient, nbgrader) are imported by :mod:`.notebooks`, :mod:`.selfcheck`,
:mod:`.course` and :mod:`.report` (nbgrader only when called).
"""

from .checks import check
from .errors import CheckFailed

__all__ = ["check", "CheckFailed"]
