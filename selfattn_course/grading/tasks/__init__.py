"""The graded tasks of each chapter, one module per chapter: ``chNN.py`` defines ``TASKS``.

To add chapter NN: write ``chNN.py`` with ``TASKS = [FunctionTask(...), AnswerTask(...), ...]``
(see :mod:`selfattn_course.grading.spec.registry` for the fields and ``ch02.py`` for an example), and
make each test cell of ``solutions/chNN/chNN.ipynb`` call ``check("chNN.<name>", <name>)``.
Nothing else is registered by hand: :func:`~selfattn_course.grading.spec.registry.get_task` finds the
module from the task id.
"""
