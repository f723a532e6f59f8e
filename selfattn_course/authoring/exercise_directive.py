"""The book's ``{exercise-list}`` directive: a chapter's exercises, from its task specs.

A chapter page's Exercises section holds::

    ```{exercise-list} ch02
    ```

and the build writes there the list that :func:`selfattn_course.authoring.book.exercise_markdown`
makes from the chapter's task specs (titles, points, statements, as the notebook shows them),
parsed as the page's own MyST, maths included. It is made when the page is read, at every build
(``--all``), so no execution cache stands between a task spec and the page; and the page is read
again whenever the chapter's task module changes.

Loaded by ``_config.yml`` (``sphinx: config: extensions``). This module imports Sphinx; the rest of
the package does not.
"""

from __future__ import annotations

import importlib.util

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from selfattn_course.authoring.book import exercise_markdown

DIRECTIVE = "exercise-list"


class ExerciseList(SphinxDirective):
    """``{exercise-list} chNN``: the exercises of chapter ``chNN``."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        chapter = self.arguments[0]
        module = importlib.util.find_spec(f"selfattn_course.grading.tasks.{chapter}")
        if module is not None and module.origin:
            self.env.note_dependency(module.origin)
        try:
            markdown = exercise_markdown(chapter)
        except (KeyError, ValueError) as error:
            raise self.error(f"{DIRECTIVE} {chapter}: {error}") from None
        return self.parse_text_to_nodes(markdown)


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive(DIRECTIVE, ExerciseList)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
