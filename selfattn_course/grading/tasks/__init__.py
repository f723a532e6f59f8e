"""The graded tasks of each chapter, one module per chapter: ``chNN.py`` defines ``TASKS``.

Each task is one block that reads top to bottom: its reference (and the helpers only it uses),
then ``FunctionTask(...)`` or ``AnswerTask(...)`` holding everything else about it::

    def attention_scores(q, k):
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


    ATTENTION_SCORES = FunctionTask(
        id="ch02.attention_scores",
        title="scores",
        points=2,
        statement=r'''
            Write `attention_scores(q, k)` returning the scaled scores ...
            ''',
        reference=attention_scores,
        visible_cases=lambda: [Case("by hand: ...", {"q": ..., "k": ...}), ...],
        hidden_cases=over_devices(lambda dtype, device: [Case("length-1 sequences", ...), ...]),
        mistakes=(
            Mistake("the scores are not divided by sqrt(d_k)", source='''
                def attention_scores(q, k):
                    return q @ k.transpose(-2, -1)
                '''),
        ),
        forbidden=FROM_SCRATCH,
    )

    TASKS = [ATTENTION_SCORES, ...]

(:mod:`selfattn_course.grading.spec.task` lists the fields; ``ch02.py`` is a full example.) A
chapter's points add up to 10 and it has 3 to 6 tasks; ``tests/tasks/test_every_task.py``
checks that and that every mistake's hint fires.

To add chapter NN: write ``chNN.py``, and ``solutions/chNN/chNN.md``, the notebook's text: the
intro, the setup cell, and one code cell per task marked ``:task: <name>`` holding its solution
(:mod:`selfattn_course.authoring.notebooks` builds ``chNN.ipynb`` from the two, with the
statements, points and test cells). Nothing is registered by hand:
:func:`~selfattn_course.grading.spec.registry.get_task` finds the module from the task id.
"""
