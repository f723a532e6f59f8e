"""The feedback page: nbgrader's feedback HTML, readable offline and naming each task.

nbgrader's feedback template loads MathJax 2.7.7 from a CDN, so with no internet its formulas
stay raw ``$...$``, and its summary says "Test cell" for every task. ``nbgrader_config.py``
points ``generate_feedback`` at ``feedback_templates/feedback/selfattn_feedback.html.j2``, which
extends nbgrader's template, names each task by its test cell's ``grade_id`` and loads no
MathJax from the network; :class:`InlineMathJax` hands it the course's MathJax to inline.

The script is inlined, not linked: ``nbgrader release_feedback`` copies only the HTML file to
the exchange, so a link next to it would not reach the learner. It is MathJax 3's
``tex-svg-full.js`` (about 2.2 MB per feedback page), vendored in ``_extra/mathjax/`` by
``make vendor``: SVG output draws its glyphs as paths, so it needs no web font (CHTML's fonts
would be fetched from a URL), and ``-full`` holds every TeX extension, so none is fetched
either. Without it, feedback falls back to MathJax from the CDN, with a warning.
"""

from __future__ import annotations

from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

# extra_template_basedirs for nbconvert: it holds the ``feedback/`` template folder.
TEMPLATE_BASEDIR = Path(__file__).resolve().with_name("feedback_templates")
TEMPLATE_FILE = "selfattn_feedback.html.j2"
CDN_MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg-full.js"


class InlineMathJax(Preprocessor):
    """Put the text of :attr:`mathjax_file` in ``resources["selfattn_mathjax"]``, for the
    feedback template to inline (``resources["selfattn_mathjax_url"]`` when it is missing)."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled

    mathjax_file = Unicode(
        "", help="MathJax 3 single-file component to inline in the feedback (tex-svg-full.js)"
    ).tag(config=True)

    def preprocess(self, nb, resources):
        path = Path(self.mathjax_file)
        if self.mathjax_file and path.is_file():
            resources["selfattn_mathjax"] = path.read_text(encoding="utf-8")
        else:
            self.log.warning(
                "No MathJax at %r (run `make vendor`): the feedback loads it from %s, "
                "so its formulas need the internet",
                self.mathjax_file,
                CDN_MATHJAX,
            )
            resources["selfattn_mathjax_url"] = CDN_MATHJAX
        return nb, resources
