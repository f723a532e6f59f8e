"""nbgrader configuration of the course (nbgrader 0.9.6).

Layout, relative to this file (the course root):

    solutions/chNN/chNN.md      what an author writes: the chapter's statements and solutions
    solutions/chNN/chNN.ipynb   source notebooks, with solutions and hidden tests, built from it
                                (`selfattn-course release` builds them first)
    exercises/chNN/chNN.ipynb   their releases (`selfattn-course release`), committed
    submitted/<student>/chNN/   what learners hand in; autograded/ and feedback/ beside it
    gradebook.db                nbgrader's database

One assignment per chapter, named like its folder (ch01, ch02, ...), found from solutions/ch*
(a folder with chNN.md or chNN.ipynb).
nbgrader 0.9 keeps no assignment list in its configuration (generate_assignment adds each one to
the gradebook), so the list is recorded under `SelfattnCourse.assignments`, where
`selfattn_course.grading.classroom.course` reads it.
"""

import copy
import importlib.util
import os
import sys
from pathlib import Path

from traitlets.config.loader import LazyConfigValue

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

course_root = Path(__file__).resolve().parent

c.CourseDirectory.root = str(course_root)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# A chapter's text source (solutions/chNN/chNN.md) holds its solutions: never copy it out.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "ch??.md"]
c.SelfattnCourse.assignments = sorted(
    folder.name
    for folder in (course_root / "solutions").glob("ch[0-9][0-9]")
    if any((folder / f"{folder.name}{suffix}").is_file() for suffix in (".md", ".ipynb"))
)

# The exchange: where `nbgrader release_assignment` puts a chapter for learners to fetch, where
# `nbgrader submit` hands it in and `nbgrader collect` picks it up, and where
# `nbgrader release_feedback` leaves the feedback for `nbgrader fetch_feedback`. By default a
# course-local folder, exchange/ here (for a class on one machine), made when missing with the
# permissions nbgrader requires (rwx for everyone: learners write into <course id>/inbound);
# SELFATTN_EXCHANGE=/path points at a shared one instead (made and permissioned by its admin).
# nbgrader's exchange files everything under a course id: SELFATTN_COURSE_ID, "selfattn" unless
# set. Learners fetch into ./chNN of the folder they run nbgrader in.
c.CourseDirectory.course_id = os.environ.get("SELFATTN_COURSE_ID") or "selfattn"
c.Exchange.root = os.environ.get("SELFATTN_EXCHANGE") or str(course_root / "exchange")
if not os.environ.get("SELFATTN_EXCHANGE") and not os.path.isdir(c.Exchange.root):
    try:
        os.mkdir(c.Exchange.root)
        os.chmod(c.Exchange.root, 0o777)  # what release_assignment sets (and warns about otherwise)
    except OSError:
        pass  # a read-only course folder: nbgrader then says the exchange is missing

# Seconds each cell may run when autograding. nbgrader reads Execute.timeout;
# ExecutePreprocessor.timeout is ignored.
c.Execute.timeout = 120

# Sandboxed execution (selfattn_course/grading/autograde/execute.py, sandbox.py). Every
# submission's kernel runs in a bubblewrap sandbox: no network, none of the course's files, a
# private /tmp, these caps.
# Where no sandbox can be made, autograde stops before grading anything and says why, unless
# SELFATTN_UNSAFE_NO_SANDBOX=1 (`selfattn-course grade --unsafe-no-sandbox`) or
# --SandboxedKernelManager.unsafe_no_sandbox=True: only for code you trust.
# A cell that runs past its timeout, kills the kernel or leaves processes behind scores 0 for its
# task, with the reason in the feedback; the kernel is restarted and the later tasks are graded
# as usual. A cell that prints past its output cap keeps the first bytes and a marker, and runs on.
c.Autograde.pre_convert_hook = (
    "selfattn_course.grading.autograde.execute.require_sandbox_before_grading"
)
# A learner nbgrader adds while grading gets their id as first name (formgrader: not "None, None").
c.Autograde.post_convert_hook = "selfattn_course.grading.autograde.execute.name_unnamed_learners"
c.SandboxedKernelManager.unsafe_no_sandbox = os.environ.get("SELFATTN_UNSAFE_NO_SANDBOX") == "1"
c.SandboxedKernelManager.memory_bytes = 2 * 1024**3  # address space of each process
c.SandboxedKernelManager.max_processes = 256  # processes and threads of one kernel
c.GradingExecute.notebook_wall_seconds = 600  # the whole notebook, kernel restarts included
c.GradingExecute.max_cell_output_bytes = 4 * 1024**2
c.GradingExecute.max_notebook_output_bytes = 16 * 1024**2

# A learner who deletes a test cell would otherwise get no score for it (not even 0 of N):
# put the missing cells back from the source before grading.
c.OverwriteCells.add_missing_cells = True
# nbgrader 0.9.6's sanitize steps, with OverwriteCells replaced by a subclass (it reads the
# setting above) that does not warn "Attribute 'checksum' for cell ... has changed!" for a test
# cell left exactly as released (nbgrader #1961: hidden tests change the checksum); a test cell
# the learner changed still warns.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "selfattn_course.grading.autograde.preprocessors.OverwriteCellsQuietly",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Trusted checks (selfattn_course/grading/autograde/preprocessors.py): the hidden tests only hand
# the learner's results over, and the grader decides them in its own process, so nothing the
# learner's code does in the kernel can earn a point. nbgrader 0.9.6's autograde pipeline, with
# StartTrustedChecks just before Execute and VerifyTrustedChecks just before SaveAutoGrades.
c.Autograde.autograde_preprocessors = [
    "selfattn_course.grading.autograde.preprocessors.StartTrustedChecks",
    # nbgrader's Execute, sandboxed (above)
    "selfattn_course.grading.autograde.execute.GradingExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "selfattn_course.grading.autograde.preprocessors.VerifyTrustedChecks",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A fresh seed per notebook; set one to repeat a grading (each autograded notebook records its
# own).
c.StartTrustedChecks.seed = None

# Feedback shows no hidden test source: each hidden region becomes one comment line.
c.GenerateFeedback.preprocessors = [
    "selfattn_course.grading.autograde.preprocessors.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "selfattn_course.grading.autograde.feedback_page.InlineMathJax",
]

# The feedback page (selfattn_course/grading/autograde/feedback_page.py): nbgrader's template, each
# task named in its summary, and the course's MathJax inlined (`make vendor` puts it in _extra/ of
# the course, or of the repository the package is installed from, editable), so its formulas
# render offline. Scoped to generate_feedback: formgrader keeps its own template.
_package = importlib.util.find_spec("selfattn_course")
_package_dir = Path(_package.origin).parent if _package and _package.origin else course_root
_mathjax_files = [
    folder / "_extra" / "mathjax" / "tex-svg-full.js"
    for folder in (course_root, _package_dir.parent)
]
c.InlineMathJax.mathjax_file = str(
    next((f for f in _mathjax_files if f.is_file()), _mathjax_files[0])
)
_nbgrader = importlib.util.find_spec("nbgrader")
_feedback_templates = [_package_dir / "grading" / "autograde" / "feedback_templates"]
if _nbgrader is not None and _nbgrader.origin is not None:
    _feedback_templates.append(
        Path(_nbgrader.origin).parent / "server_extensions" / "formgrader" / "templates"
    )
c.GenerateFeedback.HTMLExporter.extra_template_basedirs = [
    str(path) for path in _feedback_templates
]
c.GenerateFeedback.HTMLExporter.template_name = "feedback"
c.GenerateFeedback.HTMLExporter.template_file = "selfattn_feedback.html.j2"

# formgrader's manual grading page (selfattn_course/grading/autograde/formgrader_templates/):
# nbgrader's formgrade template with the same MathJax inlined instead of MathJax 2.7.7 from a CDN,
# so its formulas render offline. formgrader's exporter reads these unscoped HTMLExporter settings;
# generate_feedback's exporter reads the GenerateFeedback.HTMLExporter ones above, which win.
_formgrader_templates = [_package_dir / "grading" / "autograde" / "formgrader_templates"]
if _nbgrader is not None and _nbgrader.origin is not None:
    _formgrader_templates.append(
        Path(_nbgrader.origin).parent / "server_extensions" / "formgrader" / "templates"
    )
c.HTMLExporter.extra_template_basedirs = [str(path) for path in _formgrader_templates]
c.HTMLExporter.template_name = "formgrade"
c.HTMLExporter.template_file = "selfattn_formgrade.html.j2"
c.HTMLExporter.preprocessors = ["selfattn_course.grading.autograde.feedback_page.InlineMathJax"]
c.GenerateFeedback.HTMLExporter.preprocessors = []  # GenerateFeedback.preprocessors inline it

# formgrader shows its configuration as JSON on its Manage Assignments page. jupyter_server puts
# ServerApp.jpserver_extensions into the configuration as a LazyConfigValue (ServerApp.
# find_server_extensions: `self.config.ServerApp.jpserver_extensions.update(...)`), which
# json.dumps cannot write, so formgrader logged "Formgrader config is not serializable" on every
# page load. Loaded inside a running Jupyter server (formgrader, the Assignments panel), this file
# gives such settings their effective values instead; only nbgrader's copy of the configuration
# changes, not the server's.
_serverapp = sys.modules.get("jupyter_server.serverapp")
if _serverapp is not None and _serverapp.ServerApp.initialized():
    _server = _serverapp.ServerApp.instance()
    for _name, _value in list(_server.config.ServerApp.items()):
        if isinstance(_value, LazyConfigValue) and _server.has_trait(_name):
            c.ServerApp[_name] = copy.deepcopy(getattr(_server, _name))
