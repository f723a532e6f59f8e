"""What a chapter page shows from the task specs: its list of exercises.

A chapter's Exercises section holds the directive of
:mod:`selfattn_course.authoring.exercise_directive`::

    ```{exercise-list} ch02
    ```

which the book build replaces by :func:`exercise_markdown`: where the notebook is, how to check
it, and each task's statement with its title and points, exactly as the notebook shows them
(:func:`~selfattn_course.authoring.notebooks.statement_markdown`). The points are thus written
once, in the task spec, and the page cannot disagree with the notebook.
"""

from __future__ import annotations

from selfattn_course.grading.spec.registry import chapter_tasks


def exercise_markdown(chapter: str) -> str:
    """The Exercises list of ``chapter`` (``"ch02"``) as Markdown (MyST, with ``$...$`` maths).

    ``KeyError`` if the chapter has no tasks module, ``ValueError`` if it has no task.
    """
    from selfattn_course.authoring.notebooks import points_text, statement_markdown

    tasks = list(chapter_tasks(chapter).values())
    if not tasks:
        raise ValueError(f"chapter {chapter} has no task: its TASKS list is empty")
    notebook = f"exercises/{chapter}/{chapter}.ipynb"
    total = sum(task.points for task in tasks)
    count = f"{len(tasks)} task{'' if len(tasks) == 1 else 's'}"
    lines = [
        f"Open `{notebook}` in Jupyter: {count}, {points_text(total)} in all. Each task has a "
        "solution cell for your code and a test cell that gives feedback. Check the whole "
        "notebook from a terminal with",
        "",
        "```bash",
        f"selfattn-course check {notebook}",
        "```",
    ]
    for number, task in enumerate(tasks, start=1):
        lines += ["", statement_markdown(number, task)]
    return "\n".join(lines) + "\n"
