"""End to end through ``nbgrader autograde`` with the course's config: tampering earns nothing.

One temporary course releases chapters 2 and 5 (a fixed sample: functions, an answer, module
classes, provided helpers) and autogrades (the class pipeline, two local workers) submissions that
try to win
points without earning them: no-op comparison functions (numpy's, torch's, the course's own
``check`` and ``CheckFailed``), an IPython input transformer that turns every later cell into
``pass``, a forged result for the grader, torch's attention in a from-scratch task (plain and
hidden behind ``getattr``); and honest ones that must keep full marks: correct code that warns on
stderr, correct code that draws random numbers. Each has its expected score per task. Then
``nbgrader generate_feedback`` runs and no feedback page may show hidden test source.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import filled_release, released_course

from selfattn_course.cli import main
from selfattn_course.grading import notebooks
from selfattn_course.grading.classroom import course, intake, pipeline, pools, report

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = ["ch02", "ch05"]
DRAW_FILE = ".selfattn-course-grading.json"

NOOP_COMPARISONS = (
    "import numpy as np\n"
    "np.allclose = lambda *args, **kwargs: True\n"
    "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
    "torch.allclose = lambda *args, **kwargs: True\n"
    "torch.testing.assert_close = lambda *args, **kwargs: None\n\n"
)

NAN_SOFTMAX = (
    "def masked_softmax(scores, mask):\n"
    "    if mask is not None:\n"
    "        scores = scores.masked_fill(~mask, float('-inf'))\n"
    "    return torch.softmax(scores, dim=-1)\n"
)

FORGED_RESULT = (
    "import json, os\n"
    "from IPython.display import publish_display_data\n\n"
    "def masked_softmax(scores, mask):\n"
    "    run = {'seed': 0, 'devices': ['cpu']}\n"
    f"    if os.path.exists('{DRAW_FILE}'):\n"
    f"        run = json.load(open('{DRAW_FILE}'))\n"
    "    forged = {'format': 1, 'task': 'ch02.masked_softmax', 'seed': run['seed'],\n"
    "              'devices': run['devices'], 'inputs': '0' * 64, 'outcomes': []}\n"
    "    publish_display_data({'application/vnd.selfattn-course.result+json': forged})\n"
    "    return torch.zeros_like(scores)\n"
)

NOISY_SCORES = (
    "import sys\nimport warnings\n\n"
    "def attention_scores(q, k):\n"
    "    warnings.warn('computing scores', UserWarning)\n"
    "    print('a note on stderr', file=sys.stderr)\n"
    "    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
)

RANDOM_SCORES = (
    "import numpy as np\n"
    "torch.manual_seed(1234)\n"
    "np.random.seed(0)\n\n"
    "def attention_scores(q, k):\n"
    "    torch.manual_seed(int(torch.randint(0, 10**6, ())))\n"
    "    np.random.rand(1000)\n"
    "    torch.rand(1000)\n"
    "    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
)

SDPA_ATTENTION = (
    "import torch.nn.functional as F\n\n"
    "def attention(q, k, v, mask=None):\n"
    "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).nan_to_num()\n"
)

SDPA_BY_GETATTR = (
    "def attention(q, k, v, mask=None):\n"
    "    ready_made = getattr(torch.nn.functional, 'scaled_dot_' + 'product_attention')\n"
    "    return ready_made(q, k, v, attn_mask=mask).nan_to_num()\n"
)

PATCH_COURSE_CHECKS = (
    "import selfattn_course.grading as grading\n"
    "import selfattn_course.grading.verdicts.compare as course_checks\n"
    "course_checks.check.__code__ = (lambda *args, **kwargs: None).__code__\n"
    "grading.CheckFailed = Warning\n\n"
)

MHA_HEAD = (
    "class MultiHeadSelfAttention(nn.Module):\n"
    "    def __init__(self, d_model, num_heads):\n"
    "        super().__init__()\n"
    "        torch.manual_seed(0)  # draws nothing the grader uses: its weights are loaded\n"
    "        self.d_model, self.num_heads = d_model, num_heads\n"
    "        self.q_proj = nn.Linear(d_model, d_model)\n"
    "        self.k_proj = nn.Linear(d_model, d_model)\n"
    "        self.v_proj = nn.Linear(d_model, d_model)\n"
    "        self.out_proj = nn.Linear(d_model, d_model)\n\n"
)

MHA_WITH_SDPA = MHA_HEAD + (
    "    def forward(self, x, mask=None):\n"
    "        projections = (self.q_proj, self.k_proj, self.v_proj)\n"
    "        q, k, v = (split_heads(p(x), self.num_heads) for p in projections)\n"
    "        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
    "        if mask is not None:\n"
    "            scores = scores.masked_fill(~mask, float('-inf'))\n"
    "        weights = torch.softmax(scores, dim=-1).nan_to_num()\n"
    "        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
    "        out = out.nan_to_num()\n"
    "        return self.out_proj(merge_heads(out)), weights\n\n\n"
    "multi_head_self_attention = MultiHeadSelfAttention\n"
)

MHA_NOISY = MHA_HEAD + (
    "    def forward(self, x, mask=None):\n"
    "        import sys, warnings\n"
    "        warnings.warn('a warning from correct code', RuntimeWarning)\n"
    "        print('stderr from correct code', file=sys.stderr)\n"
    "        torch.rand(10)\n"
    "        projections = (self.q_proj, self.k_proj, self.v_proj)\n"
    "        q, k, v = (split_heads(p(x), self.num_heads) for p in projections)\n"
    "        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
    "        if mask is not None:\n"
    "            scores = scores.masked_fill(~mask, float('-inf'))\n"
    "        weights = torch.softmax(scores, dim=-1).nan_to_num()\n"
    "        return self.out_proj(merge_heads(weights @ v)), weights\n\n\n"
    "multi_head_self_attention = MultiHeadSelfAttention\n"
)

TORCH_CONVENTION_MASK = (
    "def course_mask(attn_mask, key_padding_mask):\n"
    "    return attn_mask[None, None] | key_padding_mask[:, None, None, :]\n"
)

CH02_TASKS = {"attention_scores", "masked_softmax", "attention", "score_variance"}
CH05_TASKS = {
    "self_attention",
    "split_heads",
    "merge_heads",
    "multi_head_self_attention",
    "course_mask",
}

#: name -> chapter, solution cells replaced (id -> source), cells added after a cell (id -> source),
#: the release's stubs kept, and the tasks that must score 0 (every other task keeps full marks).
SUBMISSIONS = {
    "solution-ch02": dict(chapter="ch02", loses=set()),
    "noop_comparisons": dict(
        chapter="ch02",
        prepend={"attention_scores-solution": NOOP_COMPARISONS},
        replace={"masked_softmax-solution": NAN_SOFTMAX},
        loses=CH02_TASKS,
    ),
    "check_replaced_by_a_noop": dict(
        chapter="ch02",
        add_after={"setup": "check = lambda *args, **kwargs: None"},
        stubs=True,
        loses=CH02_TASKS,
    ),
    "input_transformer_turns_cells_into_pass": dict(
        chapter="ch02",
        prepend={
            "attention_scores-solution": (
                "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n\n"
            )
        },
        loses=CH02_TASKS,
    ),
    "forged_result": dict(
        chapter="ch02", replace={"masked_softmax-solution": FORGED_RESULT}, loses={"masked_softmax"}
    ),
    "torch_sdpa_in_attention": dict(
        chapter="ch02", replace={"attention-solution": SDPA_ATTENTION}, loses={"attention"}
    ),
    "torch_sdpa_by_getattr": dict(
        chapter="ch02", replace={"attention-solution": SDPA_BY_GETATTR}, loses={"attention"}
    ),
    "warnings_on_stderr": dict(
        chapter="ch02", replace={"attention_scores-solution": NOISY_SCORES}, loses=set()
    ),
    "random_numbers": dict(
        chapter="ch02", replace={"attention_scores-solution": RANDOM_SCORES}, loses=set()
    ),
    "solution-ch05": dict(chapter="ch05", loses=set()),
    "patched_course_checks": dict(
        chapter="ch05",
        prepend={"self_attention-solution": PATCH_COURSE_CHECKS},
        replace={"course_mask-solution": TORCH_CONVENTION_MASK},
        loses=CH05_TASKS,
    ),
    "torch_sdpa_in_multi_head": dict(
        chapter="ch05",
        replace={"multi_head_self_attention-solution": MHA_WITH_SDPA},
        loses={"multi_head_self_attention"},
    ),
    "warnings_and_random_numbers": dict(
        chapter="ch05", replace={"multi_head_self_attention-solution": MHA_NOISY}, loses=set()
    ),
}


def build_submission(solution, release, entry):
    """The release with its solution cells filled in (or left as stubs), then the entry's."""
    return filled_release(
        solution,
        release,
        replace=entry.get("replace"),
        prepend=entry.get("prepend"),
        add_after=entry.get("add_after"),
        keep_stubs=entry.get("stubs", False),
    )


@dataclass
class Graded:
    course_dir: Path
    scores: dict[str, dict[str, tuple[float, float]]]  # student -> task -> (score, max)
    autograde_ok: bool
    log: str
    seconds: float
    grading: pipeline.ClassGrading


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    root = tmp_path_factory.mktemp("tampering")
    course_dir = released_course(REPO, root / "course", CHAPTERS)
    incoming = root / "incoming"
    for name, entry in SUBMISSIONS.items():
        chapter = entry["chapter"]
        solution = notebooks.read(course_dir / "solutions" / chapter / f"{chapter}.ipynb")
        release = notebooks.read(course_dir / "exercises" / chapter / f"{chapter}.ipynb")
        notebooks.write(
            build_submission(solution, release, entry),
            incoming / name / chapter / f"{chapter}.ipynb",
        )
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # two kernels share the cores
        found = intake.inspect(incoming, CHAPTERS)
        grading = pipeline.grade_class(
            course_dir, found, pools.LocalPool(2), progress_stream=io.StringIO()
        )
        feedback_commands = course.feedback(course_dir)
    seconds = time.perf_counter() - started
    assert all(command.ok for command in feedback_commands), [
        command.log[-3000:] for command in feedback_commands
    ]
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    for score in report.gradebook_scores(course_dir):
        scores.setdefault(score.student, {})[score.task] = (score.score, score.max_score)
    graded_all = (grading.summary.failed, grading.summary.retried) == (0, 0)
    log = "\n".join(grading.logs.values()) or grading.summary.format()
    return Graded(course_dir, scores, graded_all, log, seconds, grading)


@pytest.mark.slow
def test_every_submission_was_graded(graded):
    assert graded.autograde_ok, graded.log[-3000:]
    assert set(graded.scores) == set(SUBMISSIONS)
    print(f"autograded {len(SUBMISSIONS)} notebooks and their feedback in {graded.seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_task_gets_its_expected_score(graded, name):
    entry = SUBMISSIONS[name]
    tasks = graded.scores[name]
    expected = {task: 0.0 if task in entry["loses"] else top for task, (_, top) in tasks.items()}
    assert {task: score for task, (score, _) in tasks.items()} == expected
    assert set(tasks) == (CH02_TASKS if entry["chapter"] == "ch02" else CH05_TASKS)


def _autograded(graded, name):
    chapter = SUBMISSIONS[name]["chapter"]
    return notebooks.read(graded.course_dir / "autograded" / name / chapter / f"{chapter}.ipynb")


def _feedback(graded, name):
    chapter = SUBMISSIONS[name]["chapter"]
    return (graded.course_dir / "feedback" / name / chapter / f"{chapter}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_no_feedback_page_shows_hidden_test_source(graded, name):
    html = _feedback(graded, name)
    assert "BEGIN HIDDEN" not in html and "END HIDDEN" not in html
    assert "hidden=True" not in html
    assert "hidden tests: they run when the notebook is graded" in html


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_test_cells_show_no_traceback_into_hidden_code_and_no_stderr(graded, name):
    for cell in notebooks.graded_cells(_autograded(graded, name)):
        shown = str(cell.outputs)
        assert "BEGIN HIDDEN" not in shown and "hidden=True" not in shown
        assert not any(output.get("name") == "stderr" for output in cell.outputs)
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert all(error.traceback == [f"CheckFailed: {error.evalue}"] for error in errors)


@pytest.mark.slow
def test_the_feedback_says_why_a_task_scored_0(graded):
    html = _feedback(graded, "torch_sdpa_in_attention")
    assert "this task asks you to write it yourself" in html
    assert "scaled_dot_product_attention" in html
    tampered = _feedback(graded, "noop_comparisons")
    assert "changes the grading tools" in tampered and "replaces numpy.allclose" in tampered


@pytest.mark.slow
def test_every_0_in_the_csv_has_its_reason(graded, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    report.report_grading(
        graded.grading, graded.course_dir, tmp_path / "grades.csv", out=out, err=err
    )
    with (tmp_path / "grades.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    zeros = [row for row in rows if float(row["score"]) == 0]
    assert len(zeros) == sum(len(entry["loses"]) for entry in SUBMISSIONS.values())
    assert all(row["reason"] for row in zeros), [row for row in zeros if not row["reason"]]
    assert all(not row["reason"] for row in rows if row["score"] == row["max_score"])
    reasons = {(row["student"], row["task"]): row["reason"] for row in zeros}
    tampered = reasons[("noop_comparisons", "attention_scores")]
    assert "changes the grading tools" in tampered and "replaces numpy.allclose" in tampered
    assert "\n" not in tampered
    forbidden = reasons[("torch_sdpa_in_attention", "attention")]
    assert "this task asks you to write it yourself" in forbidden
    assert "scaled_dot_product_attention" in forbidden
    assert "ch02.masked_softmax" in reasons[("forged_result", "masked_softmax")]


@pytest.mark.slow
def test_the_grading_run_is_recorded_and_its_file_removed(graded):
    notebook = _autograded(graded, "solution-ch02")
    run = notebook.metadata["selfattn_course"]["grading_run"]
    assert isinstance(run["seed"], int) and run["devices"][0] == "cpu"
    assert not (graded.course_dir / "autograded" / "solution-ch02" / "ch02" / DRAW_FILE).exists()


# --- the instructor's validate and the learner's check --------------------------------------------

FLOAT32_SCORES = (
    "def attention_scores(q, k):\n"
    "    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).float()\n"
)


def _source_with(tmp_path, replace):
    solution = notebooks.read(REPO / "solutions" / "ch02" / "ch02.ipynb")
    for cell in solution.cells:
        grade_id = notebooks.nbgrader_meta(cell).get("grade_id")
        cell.source = replace.get(grade_id, cell.source)
    path = tmp_path / "ch02" / "ch02.ipynb"
    notebooks.write(solution, path)
    return path


@pytest.mark.slow
def test_validate_grades_a_source_notebook_as_autograde_does(tmp_path, capsys):
    assert main(["validate", str(REPO / "solutions" / "ch02" / "ch02.ipynb"), "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "ch02.ipynb: 4 of 4 tasks pass (10/10 points)" in out
    assert "hidden tests checked by the grader: seed 7" in out

    wrong = _source_with(tmp_path, {"attention-solution": SDPA_ATTENTION})
    assert main(["validate", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  attention (3 points)" in out and "this task asks you to write it yourself" in out


@pytest.mark.slow
def test_check_runs_the_visible_tests_only_and_validate_the_hidden_ones_too(tmp_path, capsys):
    float32_only = _source_with(tmp_path, {"attention_scores-solution": FLOAT32_SCORES})
    assert main(["check", str(float32_only)]) == 0  # the visible cases are all float32
    assert "4 of 4 tasks pass" in capsys.readouterr().out
    assert main(["validate", str(float32_only)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  attention_scores (2 points)" in out
    assert "result has dtype torch.float32, expected torch.float64" in out
