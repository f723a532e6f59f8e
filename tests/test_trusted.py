"""Trusted checks, in one process: the payload's round trip, the grader's verdicts, the source scan.

The kernel's side (:func:`~selfattn_course.grading.cell.hand_over`) runs here with IPython's
display captured; the grader's side (:mod:`selfattn_course.grading.verdicts.trusted`) then decides
what was captured, as it does after a notebook has run. The end-to-end runs through nbgrader are
in test_grading_tampering.py.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import warnings
from pathlib import Path

import IPython.display
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import masked_softmax_by_hand

from selfattn_course.grading import notebooks
from selfattn_course.grading.cell import hand_over
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.registry import get_task, registered_chapters
from selfattn_course.grading.spec.task import FunctionTask
from selfattn_course.grading.verdicts.handover import prepare_task
from selfattn_course.grading.verdicts.payload import (
    DRAW_FILE,
    MIME_TYPE,
    GradingDraw,
    MalformedPayload,
    Unsendable,
    current_draw,
    decode,
    encode,
    inputs_digest,
)
from selfattn_course.grading.verdicts.source_scan import CodeCell, inspect_cells
from selfattn_course.grading.verdicts.trusted import (
    HIDDEN_PLACEHOLDER,
    apply_verdicts,
    hide_hidden_tests,
    verify,
)

REPO = Path(__file__).resolve().parents[1]
DRAW = GradingDraw(seed=20240601, devices=("cpu",))


# --- learners' functions, written from scratch ----------------------------------------------------


def attention_scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


masked_softmax = masked_softmax_by_hand


def masked_softmax_nan_rows(scores, mask):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def handed(task_id, submission, draw=DRAW):
    """The payload ``check(task_id, submission, hidden=True)`` displays in a graded kernel."""
    shown = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IPython.display, "publish_display_data", shown.append)
        hand_over(prepare_task(get_task(task_id), draw), submission, draw)
    assert len(shown) == 1 and "text/plain" in shown[0]
    return shown[0][MIME_TYPE]


# --- values travel as data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        torch.tensor([[1.5, -2.0], [0.0, 3.25]]),
        torch.arange(6, dtype=torch.float64).reshape(2, 3).T,  # not contiguous
        torch.tensor([1.0, 2.0], dtype=torch.bfloat16),
        torch.tensor([1.0, 2.0], dtype=torch.float16),
        torch.tensor([[True, False]]),
        torch.tensor([3, -4], dtype=torch.int32),
        torch.tensor(7.0, dtype=torch.float64),  # 0-d, what returns_number gives
        torch.zeros(2, 0, 3),
        np.array([[1.0, 2.0]], dtype=np.float32),
        np.array([1, 2, 3], dtype=np.int64),
    ],
    ids=lambda value: f"{type(value).__name__}-{value.dtype}-{tuple(value.shape)}",
)
def test_a_tensor_or_array_comes_back_with_its_kind_dtype_shape_and_values(value):
    back = decode(encode(value))
    assert type(back) is type(value)
    assert back.dtype == value.dtype and tuple(back.shape) == tuple(value.shape)
    assert bool((torch.as_tensor(back) == torch.as_tensor(value)).all())


def test_nan_and_infinity_survive_in_tensors_and_numbers():
    back = decode(encode(torch.tensor([float("nan"), float("inf"), -1.0])))
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -1.0
    numbers = decode(encode((float("nan"), float("-inf"), 10**30, True, None, "text")))
    assert math.isnan(numbers[0]) and numbers[1:] == (float("-inf"), 10**30, True, None, "text")


def test_containers_keep_their_kind():
    assert decode(encode([1, (2.5, {3, 4})])) == [1, (2.5, {3, 4})]
    pair = decode(encode((torch.ones(2), torch.zeros(1, 2))))
    assert isinstance(pair, tuple) and [tuple(t.shape) for t in pair] == [(2,), (1, 2)]


def test_what_is_not_data_arrives_as_a_description():
    back = decode(encode(math))
    assert isinstance(back, Unsendable) and back.type_name == "module"


def test_a_tensor_on_a_device_the_run_does_not_use_arrives_as_a_description():
    data = encode(torch.ones(2))
    data["tensor"]["device"] = "cuda:7"
    back = decode(data, devices=("cpu",))
    assert isinstance(back, Unsendable) and "cuda:7" in back.text


def _npy(array, **kwargs) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return base64.b64encode(buffer.getvalue()).decode()


def _tensor(**fields):
    header = {"library": "torch", "dtype": "float32", "device": "cpu", "shape": [2]}
    header["data"] = _npy(np.zeros(2, dtype=np.float32))
    return {"tensor": {**header, **fields}}


@pytest.mark.parametrize(
    "data",
    [
        {"int": "12", "str": "two keys"},
        {"function": "lambda: 0"},
        {"float": "not a number"},
        _tensor(shape=[3]),  # the header disagrees with the data
        _tensor(dtype="float64"),
        _tensor(dtype="object"),
        _tensor(shape=[-2]),
        _tensor(data="%%% not base64"),
        _tensor(data=_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), dtype="float32"),
        _tensor(library="pickle"),
        "just a string",
    ],
)
def test_a_malformed_value_is_refused_and_never_unpickled(data):
    with pytest.raises(MalformedPayload):
        decode(data)


# --- the grading run and the fresh seed -----------------------------------------------------------


def test_the_run_file_is_found_in_the_working_folder_and_only_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert current_draw() is None
    GradingDraw(5, ("cpu",)).write(tmp_path)
    assert (tmp_path / DRAW_FILE).is_file()
    assert current_draw() == GradingDraw(5, ("cpu",))


def test_a_fresh_run_has_a_new_seed_and_every_available_device():
    first, second = GradingDraw.fresh(), GradingDraw.fresh()
    assert first.seed != second.seed
    assert first.devices[0] == "cpu"


def test_the_run_seed_changes_the_values_but_not_the_shapes_or_the_edge_cases():
    task = get_task("ch02.masked_softmax")
    with C.run_seed(1):
        one = task.hidden_cases([torch.device("cpu")])
    with C.run_seed(2):
        two = task.hidden_cases([torch.device("cpu")])
    plain = task.hidden_cases([torch.device("cpu")])
    assert (
        [case.name for case in one] == [case.name for case in two] == [case.name for case in plain]
    )
    first, second = one[0].inputs(), two[0].inputs()
    assert first["scores"].shape == second["scores"].shape
    assert not torch.equal(first["scores"], second["scores"])
    assert (
        not first["mask"][0, 1, 2].any() and not second["mask"][0, 1, 2].any()
    )  # the all-masked row
    assert inputs_digest(one) != inputs_digest(two) != inputs_digest(plain)
    with C.run_seed(1):
        assert inputs_digest(task.hidden_cases([torch.device("cpu")])) == inputs_digest(one)


# --- the grader's verdicts ------------------------------------------------------------------------


def test_a_correct_function_passes_on_visible_and_hidden_cases_for_any_seed():
    for seed in (0, 1, 2**61 + 17):
        draw = GradingDraw(seed, ("cpu",))
        verdict = verify(
            get_task("ch02.masked_softmax"),
            [handed("ch02.masked_softmax", masked_softmax, draw)],
            draw,
        )
        assert verdict.passed, verdict.message
        assert verdict.message == (
            "ch02.masked_softmax: 3 visible and 14 hidden cases passed (checked by the grader)"
        )


def test_an_all_masked_row_giving_nan_fails_with_the_property_in_words_and_the_shapes():
    task = get_task("ch02.masked_softmax")
    verdict = verify(task, [handed(task.id, masked_softmax_nan_rows)], DRAW)
    assert not verdict.passed
    assert (
        "ch02.masked_softmax failed on visible case 3 of 3: "
        "random mask, row 1 of batch 0 all masked" in verdict.message
    )
    assert (
        "call: masked_softmax(scores (2, 4, 5) float32 cpu, mask (2, 4, 5) bool cpu)"
        in verdict.message
    )
    assert "does not match the reference: largest error inf" in verdict.message
    assert (
        "broken property: every weight is finite (an all-masked row gives 0, not NaN)"
        in verdict.message
    )
    assert "Traceback" not in verdict.message and "File " not in verdict.message


def test_a_float64_case_that_comes_back_in_float32_names_both_dtypes():
    def scores_in_float32(q, k):
        return attention_scores(q.float(), k.float())

    verdict = verify(
        get_task("ch02.attention_scores"),
        [handed("ch02.attention_scores", scores_in_float32)],
        DRAW,
    )
    assert "float64, cpu" in verdict.message
    assert "result has dtype torch.float32, expected torch.float64" in verdict.message


def test_a_changed_value_in_the_payload_is_caught_by_the_grader():
    payload = handed("ch02.attention_scores", attention_scores)
    forged = copy.deepcopy(payload)
    scores = decode(payload["outcomes"][3]["value"])  # hidden case 1, (2, 3, 5, 7)
    scores[1, 2, 3, 4] += 0.5
    forged["outcomes"][3] = {"value": encode(scores)}
    verdict = verify(get_task("ch02.attention_scores"), [forged], DRAW)
    assert not verdict.passed
    assert "failed on hidden case 1 of 10" in verdict.message
    assert "largest error 0.5 at index (1, 2, 3, 4)" in verdict.message


def test_a_payload_from_another_seed_scores_0():
    payload = handed("ch02.attention_scores", attention_scores, GradingDraw(1, ("cpu",)))
    verdict = verify(get_task("ch02.attention_scores"), [payload], GradingDraw(2, ("cpu",)))
    assert not verdict.passed and "not from this grading run" in verdict.message


def test_a_payload_from_other_inputs_scores_0():
    payload = handed("ch02.attention_scores", attention_scores)
    payload["inputs"] = "0" * 64
    verdict = verify(get_task("ch02.attention_scores"), [payload], DRAW)
    assert not verdict.passed and "ran on other inputs than the grader chose" in verdict.message


def test_a_payload_for_another_task_scores_0():
    payload = handed("ch02.attention_scores", attention_scores)
    verdict = verify(get_task("ch02.masked_softmax"), [payload], DRAW)
    assert not verdict.passed and "is for 'ch02.attention_scores'" in verdict.message


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(outcomes=p["outcomes"][:-1]),
        lambda p: p.update(outcomes="all passed"),
        lambda p: p["outcomes"].__setitem__(0, {"value": {"tensor": "zeros"}}),
        lambda p: p["outcomes"].__setitem__(0, {"verdict": "passed"}),
        lambda p: p.update(format=2),
    ],
    ids=["one outcome short", "not a list", "bad tensor", "no value", "another format"],
)
def test_a_malformed_payload_scores_0(change):
    payload = handed("ch02.attention_scores", attention_scores)
    change(payload)
    verdict = verify(get_task("ch02.attention_scores"), [payload], DRAW)
    assert not verdict.passed and "malformed" in verdict.message


def test_no_payload_scores_0_and_says_why():
    task = get_task("ch02.attention")
    silent = verify(task, [], DRAW)
    assert not silent.passed and "did not run or handed no result to the grader" in silent.message
    stopped = verify(task, [], DRAW, stopped_at="NameError: name 'attention' is not defined")
    assert "stopped at NameError: name 'attention' is not defined" in stopped.message
    visible = verify(
        task, [], DRAW, stopped_at="CheckFailed: ch02.attention failed on visible case 1 of 3: ..."
    )
    assert visible.message == "ch02.attention failed on visible case 1 of 3: ..."


def test_two_payloads_in_one_test_cell_score_0():
    payload = handed("ch02.attention_scores", attention_scores)
    verdict = verify(get_task("ch02.attention_scores"), [payload, payload], DRAW)
    assert not verdict.passed and "2 results" in verdict.message


def test_an_exception_and_a_forbidden_call_in_the_kernel_are_reported():
    def broken(q, k):
        raise RuntimeError("shapes do not match")

    verdict = verify(
        get_task("ch02.attention_scores"), [handed("ch02.attention_scores", broken)], DRAW
    )
    assert "it raised RuntimeError: shapes do not match" in verdict.message

    def ready_made(q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    verdict = verify(get_task("ch02.attention"), [handed("ch02.attention", ready_made)], DRAW)
    assert "your code called torch.nn.functional.scaled_dot_product_attention" in verdict.message


def test_something_not_callable_scores_0():
    verdict = verify(
        get_task("ch02.attention_scores"), [handed("ch02.attention_scores", 3.0)], DRAW
    )
    assert (
        verdict.message == "ch02.attention_scores: expected the function attention_scores, got 3.0"
    )


def test_the_verdict_does_not_depend_on_the_random_numbers_the_learners_code_uses():
    def scores_that_draw_random_numbers(q, k):
        torch.manual_seed(int(torch.randint(0, 1000, ())))
        np.random.seed(3)
        np.random.rand(100)
        torch.rand(100)
        return attention_scores(q, k)

    verdicts = [
        verify(get_task("ch02.attention_scores"), [handed("ch02.attention_scores", fn)], DRAW)
        for fn in (attention_scores, scores_that_draw_random_numbers)
    ]
    assert verdicts[0] == verdicts[1] and verdicts[0].passed


def test_warnings_from_correct_code_do_not_change_the_verdict():
    def noisy_scores(q, k):
        warnings.warn("a warning from correct code", UserWarning, stacklevel=2)
        return attention_scores(q, k)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        verdict = verify(
            get_task("ch02.attention_scores"), [handed("ch02.attention_scores", noisy_scores)], DRAW
        )
    assert verdict.passed


def test_an_answer_is_compared_by_the_grader():
    task = get_task("ch02.score_variance")
    assert verify(task, [handed(task.id, (64, 1))], DRAW).passed
    wrong = verify(task, [handed(task.id, (8, 1))], DRAW)
    assert not wrong.passed and "hint: 8 = sqrt(64) is the standard deviation" in wrong.message
    nan = verify(task, [handed(task.id, (float("nan"), 1))], DRAW)
    assert not nan.passed and "score_variance[0] must be a number, got nan" in nan.message


# --- the source checks ----------------------------------------------------------------------------

SETUP = (
    "import math\n\nimport numpy as np\nimport torch\nfrom torch import nn\n\n"
    "from selfattn_course.grading import check"
)
CORRECT_ATTENTION = (
    "def attention(q, k, v, mask=None):\n"
    "    return masked_softmax(attention_scores(q, k), mask) @ v\n"
)


def report_for(*learner_sources: str):
    """The source checks of a notebook: setup, the learner's cells, the attention test cell."""
    cells = [CodeCell("cell 'setup'", SETUP, trusted=True, position=0)]
    cells += [
        CodeCell(f"cell {n}", source, trusted=False, position=n - 1)
        for n, source in enumerate(learner_sources, 2)
    ]
    test = 'check("ch02.attention", attention, hidden=True)'
    cells += [CodeCell("cell 'attention'", test, trusted=True, position=len(cells))]
    return inspect_cells(cells)


@pytest.mark.parametrize(
    "source, what",
    [
        ("np.allclose = lambda *a, **k: True", "replaces numpy.allclose"),
        (
            "np.testing.assert_allclose = lambda *a, **k: None",
            "replaces numpy.testing.assert_allclose",
        ),
        ("torch.allclose = lambda *a, **k: True", "replaces torch.allclose"),
        (
            "import torch.testing as tt\ntt.assert_close = print",
            "replaces torch.testing.assert_close",
        ),
        ("setattr(torch.testing, 'assert_close', print)", "replaces torch.testing.assert_close"),
        (
            "close = np.allclose\nclose.__code__ = (lambda *a, **k: True).__code__",
            "replaces numpy.allclose.__code__",
        ),
        ("check = lambda *a, **k: None", "rebinds `check`, the grader's helper"),
        ("def check(*args, **kwargs):\n    pass", "rebinds `check`, the grader's helper"),
        (
            "def reset():\n    global check\n    check = print",
            "rebinds `check`, the grader's helper",
        ),
        ("globals()['check'] = print", "writes into globals()"),
        (
            "check.__code__ = (lambda *a, **k: None).__code__",
            "reaches into selfattn_course.grading",
        ),
        (
            "import selfattn_course.grading.verdicts.compare as checks\nchecks.check = print",
            "imports selfattn_course.grading.verdicts.compare",
        ),
        (
            "from selfattn_course.grading import CheckFailed",
            "imports CheckFailed from selfattn_course.grading",
        ),
        (
            "import selfattn_course\nselfattn_course.grading.CheckFailed = Warning",
            "reaches into selfattn_course.grading",
        ),
        (
            "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
            "changes how IPython runs cells or shows results",
        ),
        (
            "shell = get_ipython()\nshell.events.register('pre_run_cell', print)",
            "registers IPython event hooks",
        ),
        ("import sys\nsys.modules['selfattn_course.grading'] = None", "uses sys.modules"),
        ("import sys\nsys.setprofile(None)", "uses sys.setprofile"),
        ("import ctypes", "imports ctypes"),
        ("exec(open('helper.py').read())", "runs code the grader cannot read (exec)"),
        ("import importlib\nimportlib.import_module('torch')", "runs code the grader cannot read"),
        ("%run helper.py", "runs code the grader cannot read (%run)"),
    ],
)
def test_tampering_is_found_and_named(source, what):
    findings = report_for(source).tampering
    assert any(what in str(finding) for finding in findings), findings
    assert all("cell 2, line" in finding.where for finding in findings)


@pytest.mark.parametrize(
    "source",
    [
        "torch.manual_seed(0)\nnp.random.seed(1)\ntorch.backends.cudnn.deterministic = True",
        "%timeit attention(q, k, v)\n!echo hello\n%load_ext autoreload\n%autoreload 2",
        "check('ch02.attention', attention)",
        "from selfattn_course.grading import check",
        "class Layer(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        setattr(self, 'scale', 2.0)",
        "results = {}\nresults.update(a=1)\nresults['b'] = 2",
        "def f(check):\n    return check + 1",
        "def broken(:\n    pass",  # does not parse: the kernel reports it, the source scan skips it
    ],
)
def test_ordinary_code_is_not_tampering(source):
    assert report_for(source).tampering == []


def test_a_module_imported_from_a_file_next_to_the_notebook_is_code_the_grader_cannot_read(
    tmp_path,
):
    (tmp_path / "helper.py").write_text("import numpy\nnumpy.allclose = lambda *a, **k: True\n")
    cells = [
        CodeCell("cell 'setup'", SETUP, trusted=True, position=0),
        CodeCell("cell 2", "import helper\n%load_ext helper\n%load_ext autoreload", False, 1),
    ]
    findings = [str(finding) for finding in inspect_cells(cells, tmp_path).tampering]
    assert findings == [
        "imports helper from a file next to the notebook (cell 2, line 1)",
        "imports helper from a file next to the notebook (cell 2, line 2)",
    ]


@pytest.mark.parametrize(
    "source, used",
    [
        (
            "import torch.nn.functional as F\n\n"
            "def attention(q, k, v, mask=None):\n"
            "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n",
            "uses torch.nn.functional.scaled_dot_product_attention",
        ),
        (
            "sdpa = torch.nn.functional.scaled_dot_product_attention\n\n"
            "def helper(*tensors):\n    return sdpa(*tensors)\n\n"
            "def attention(q, k, v, mask=None):\n    return helper(q, k, v)\n",
            "uses torch.nn.functional.scaled_dot_product_attention",
        ),
        (
            "from selfattn_course.attention import scaled_dot_product_attention as reference\n\n"
            "def attention(q, k, v, mask=None):\n    return reference(q, k, v, mask)\n",
            "(the package's reference)",
        ),
        (
            "def attention(q, k, v, mask=None):\n"
            "    return torch._C._nn.scaled_dot_product_attention(q, k, v)\n",
            "uses scaled_dot_product_attention",
        ),
        (
            "def attention(q, k, v, mask=None):\n"
            "    return getattr(torch.nn.functional, 'scaled_dot_product_attention')(q, k, v)\n",
            "names scaled_dot_product_attention in a string",
        ),
        (
            "def attention(q, k, v, mask=None):\n"
            "    name = 'scaled_dot_' + 'product_attention'\n"
            "    return getattr(torch.nn.functional, name)(q, k, v)\n",
            "builds the code it runs at run time (getattr)",
        ),
        (
            "exec('def attention(q, k, v, mask=None): return q')",
            "builds the code it runs at run time (exec)",
        ),
    ],
    ids=[
        "functional",
        "alias and helper",
        "package",
        "private path",
        "getattr",
        "getattr built",
        "exec",
    ],
)
def test_a_from_scratch_task_that_uses_ready_made_attention_is_found(source, used):
    forbidden = report_for(source).forbidden(get_task("ch02.attention"), "attention")
    assert any(used in str(finding) for finding in forbidden), forbidden


def test_a_cell_the_grader_cannot_read_is_reported_not_skipped():
    unreadable = "def attention(q, k, v, mask=None):\n    return (q @ k.mT).softmax(-1) @ v\n)"
    report = report_for(unreadable, CORRECT_ATTENTION)
    forbidden = report.forbidden(get_task("ch02.attention"), "attention")
    assert any("cannot read as Python" in str(finding) for finding in forbidden), forbidden
    assert "cell 2" in str(forbidden[0])


def test_only_what_the_task_uses_counts():
    source = (
        "import torch.nn.functional as F\n"
        "from selfattn_course.attention import softmax\n\n"
        "def masked_softmax(scores, mask):\n"
        "    return softmax(scores, dim=-1, mask=mask)\n\n"
        "def attention_scores(q, k):\n"
        '    """Like the first step of F.scaled_dot_product_attention."""\n'
        "    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n\n"
        "q = k = v = torch.randn(2, 3, 4)\n"
        "expected = F.scaled_dot_product_attention(q, k, v)  # a self-test, not part of a task\n"
    )
    report = report_for(source, CORRECT_ATTENTION)
    assert report.tampering == []
    # attention calls masked_softmax, which the grader provides while attention is checked
    assert report.forbidden(get_task("ch02.attention"), "attention") == []
    assert report.forbidden(get_task("ch02.attention_scores"), "attention_scores") == []
    found = report.forbidden(get_task("ch02.masked_softmax"), "masked_softmax")
    assert "uses selfattn_course.attention.softmax (cell 2, line 5)" in map(str, found)


def test_a_task_that_forbids_nothing_has_no_findings():
    source = (
        "import torch.nn.functional as F\n\n"
        "def split_heads(x, num_heads):\n    return F.scaled_dot_product_attention(x, x, x)\n"
    )
    assert report_for(source).forbidden(get_task("ch05.split_heads"), "split_heads") == []


def test_a_module_class_built_on_nn_multiheadattention_is_found():
    source = (
        "class MultiHeadSelfAttention(nn.Module):\n"
        "    def __init__(self, d_model, num_heads):\n"
        "        super().__init__()\n"
        "        self.inner = nn.MultiheadAttention(d_model, num_heads, batch_first=True)\n\n"
        "multi_head_self_attention = MultiHeadSelfAttention\n"
    )
    found = report_for(source).forbidden(
        get_task("ch05.multi_head_self_attention"), "multi_head_self_attention"
    )
    assert any("torch.nn.MultiheadAttention" in str(finding) for finding in found), found


@pytest.mark.parametrize("chapter", registered_chapters())
def test_the_solution_notebooks_have_no_findings(chapter):
    from selfattn_course.grading.verdicts.trusted import code_cells, hidden_check

    notebook = notebooks.read(REPO / "solutions" / chapter / f"{chapter}.ipynb")
    report = inspect_cells(code_cells(notebook))
    assert report.tampering == []
    for cell in notebooks.graded_cells(notebook):
        task_id, name = hidden_check(cell.source)
        task = get_task(task_id)
        if isinstance(task, FunctionTask):
            assert report.forbidden(task, name) == [], task_id


# --- a whole notebook -----------------------------------------------------------------------------


def _cell(kind, grade_id, source, **meta):
    cell = {
        "cell_type": kind,
        "source": source,
        "metadata": {"nbgrader": {"grade_id": grade_id, **meta}} if grade_id else {},
    }
    if kind == "code":
        cell["outputs"] = []
    return cell


def _stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def graded_notebook(
    scores_outputs, learner_source="def attention_scores(q, k):\n    return q", later_source=None
):
    tests = (
        'check("ch02.attention_scores", attention_scores)\n'
        "### BEGIN HIDDEN TESTS\n"
        'check("ch02.attention_scores", attention_scores, hidden=True)\n'
        "### END HIDDEN TESTS"
    )
    test_cell = _cell("code", "attention_scores", tests, grade=True, locked=True, points=2)
    test_cell["outputs"] = scores_outputs
    cells = [
        _cell("code", "setup", SETUP, locked=True),
        _cell("code", "attention_scores-solution", learner_source, solution=True),
        test_cell,
    ]
    if later_source is not None:  # a cell the learner added after the test cell
        cells.append(_cell("code", None, later_source))
    return {"cells": cells, "metadata": {}}


def _payload_output(payload):
    return {
        "output_type": "display_data",
        "data": {MIME_TYPE: payload, "text/plain": "handed"},
        "metadata": {},
    }


def test_a_passing_test_cell_shows_one_grader_line_and_no_stderr():
    outputs = [
        _stream("stdout", "ch02.attention_scores: 3 visible cases passed\n"),
        _stream("stderr", "UserWarning: something harmless\n"),
        _payload_output(handed("ch02.attention_scores", attention_scores)),
    ]
    notebook = graded_notebook(outputs)
    verdicts = apply_verdicts(notebook, DRAW)
    shown = notebook["cells"][2]["outputs"]
    assert [v.passed for v in verdicts.values()] == [True]
    assert [output["output_type"] for output in shown] == ["stream", "stream"]
    assert all(output["name"] == "stdout" for output in shown)
    assert (
        shown[-1]["text"]
        == "ch02.attention_scores: 3 visible and 10 hidden cases passed (checked by the grader)\n"
    )


def test_a_failing_test_cell_shows_one_error_without_hidden_source():
    leaked = (
        'check("ch02.attention_scores", attention_scores)\n'
        "### BEGIN HIDDEN TESTS\n"
        'check("ch02.attention_scores", attention_scores, hidden=True)\n'
    )
    kernel_error = {
        "output_type": "error",
        "ename": "TypeError",
        "evalue": "bad",
        "traceback": ["Traceback (most recent call last):", leaked, "TypeError: bad"],
    }
    notebook = graded_notebook([_stream("stdout", leaked), kernel_error])
    apply_verdicts(notebook, DRAW)
    shown = notebook["cells"][2]["outputs"]
    assert [output["output_type"] for output in shown] == ["stream", "error"]
    text = str(shown)
    assert "BEGIN HIDDEN" not in text and "hidden=True" not in text
    assert shown[-1]["traceback"] == [f"CheckFailed: {shown[-1]['evalue']}"]
    assert "stopped at TypeError: bad" in shown[-1]["evalue"]


def test_tampering_fails_every_hidden_test_of_the_notebook():
    outputs = [_payload_output(handed("ch02.attention_scores", attention_scores))]
    notebook = graded_notebook(
        outputs,
        learner_source="np.allclose = print\n"
        + "def attention_scores(q, k):\n    return q @ k.mT / math.sqrt(q.shape[-1])",
    )
    (verdict,) = apply_verdicts(notebook, DRAW).values()
    assert not verdict.passed
    assert (
        "changes the grading tools" in verdict.message
        and "replaces numpy.allclose" in verdict.message
    )


def test_what_comes_after_a_test_cell_cannot_cost_it_its_points():
    outputs = [_payload_output(handed("ch02.attention_scores", attention_scores))]
    later = (
        "np.allclose = print\n"
        "import torch.nn.functional as F\n"
        "def attention_scores(q, k):\n"
        "    return F.scaled_dot_product_attention(q, k, k)\n"
    )
    notebook = graded_notebook(outputs, later_source=later)
    (verdict,) = apply_verdicts(notebook, DRAW).values()
    assert verdict.passed, verdict.message


def test_without_a_grading_run_every_hidden_test_fails():
    outputs = [_payload_output(handed("ch02.attention_scores", attention_scores))]
    (verdict,) = apply_verdicts(graded_notebook(outputs), None).values()
    assert not verdict.passed and "did not start a grading run" in verdict.message


def test_hidden_regions_become_one_comment_line():
    source = (
        'check("x", f)\n### BEGIN HIDDEN TESTS\ncheck("x", f, hidden=True)\n'
        "### END HIDDEN TESTS\nprint(1)"
    )
    assert hide_hidden_tests(source) == f'check("x", f)\n{HIDDEN_PLACEHOLDER}\nprint(1)'


def test_the_course_config_runs_the_trusted_checks_around_nbgrader_s_own_steps():
    from nbgrader.converters import Autograde, GenerateFeedback
    from traitlets.config.loader import PyFileConfigLoader

    def names(classes):
        return [f"{cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}" for cls in classes]

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    ours = "selfattn_course.grading.autograde.preprocessors."
    configured = list(config.Autograde.autograde_preprocessors)
    execute = next(i for i, name in enumerate(configured) if name.endswith("Execute"))
    assert configured[execute - 1] == ours + "StartTrustedChecks"
    assert (
        configured[configured.index("nbgrader.preprocessors.SaveAutoGrades") - 1]
        == ours + "VerifyTrustedChecks"
    )
    nbgrader_steps = names(Autograde.class_traits()["autograde_preprocessors"].default())
    # every other step is nbgrader's own, in its order (Execute may be a sandboxed subclass)
    others = [
        name for name in configured if not name.startswith(ours) and not name.endswith("Execute")
    ]
    assert others == [name for name in nbgrader_steps if not name.endswith("Execute")]
    feedback = names(GenerateFeedback.class_traits()["preprocessors"].default())
    # hidden tests hidden first, nbgrader's steps, then the local MathJax put into the page
    assert list(config.GenerateFeedback.preprocessors) == [
        ours + "HideHiddenTests",
        *feedback,
        "selfattn_course.grading.autograde.feedback_page.InlineMathJax",
    ]
