"""The tripwires of ``selfattn_course.grading.tripwires``.

Audit hooks cannot be removed, so every scenario runs in a fresh interpreter: each script below
installs the wires once and prints one ``label: outcome`` line per check; the test asserts on
the lines. Scenarios are batched into few interpreters (each imports torch).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = textwrap.dedent(
    """
    import sys, threading, time
    import torch
    import torch.nn.functional as F
    import selfattn_course.attention as A
    import selfattn_course.masks as M
    from selfattn_course.grading import tripwires as tw

    def hand_over(task, fn):
        tw.begin(task)
        try:
            return fn()
        finally:
            tw.end(task)

    def check(label, fn):
        try:
            fn()
        except tw.Tripped as error:
            print(f"{label}: tripped | {error}")
        except (tw.Refused, tw.NoNewProcess) as error:
            print(f"{label}: refused | {error}")
        except Exception as error:
            print(f"{label}: error {type(error).__name__} | {error}")
        else:
            print(f"{label}: ok")
    """
)

ATTENTION_SCRIPT = textwrap.dedent(
    """
    import importlib, gc, subprocess
    from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS, CONV_BUILTINS

    torch.manual_seed(0)
    cases = []
    q = torch.randn(2, 4, 5, 8, dtype=torch.float64)
    k = torch.randn(2, 4, 7, 8, dtype=torch.float64)
    v = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    boolean = torch.rand(5, 7) > 0.3
    additive = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    kg, vg = k[:, :2], v[:, :2]
    calls = [
        dict(args=(q, k, v)),
        dict(args=(q, k, v), kwargs=dict(attn_mask=boolean)),
        dict(args=(q, k, v), kwargs=dict(attn_mask=additive)),
        dict(args=(q, k, v), kwargs=dict(is_causal=True)),
        dict(args=(q, k, v), kwargs=dict(scale=0.3)),
        dict(args=(q, kg, vg), kwargs=dict(enable_gqa=True)),
    ]
    expected = [F.scaled_dot_product_attention(*c["args"], **c.get("kwargs", {})) for c in calls]

    forbidden = {n: ["ch02.sdpa"] for n in ATTENTION_BUILTINS}
    forbidden.update({n: ["ch07.conv"] for n in CONV_BUILTINS})
    forbidden["torch.nn.functional.unfold"] = ["ch07.conv"]
    forbidden["torch.softmax"] = ["ch28.x"]
    forbidden["selfattn_course.attention.split_heads"] = ["ch05.split"]

    import types, tempfile, os
    helper_dir = tempfile.mkdtemp()
    with open(os.path.join(helper_dir, "helper_mod.py"), "w") as f:
        f.write(
            "import torch.nn.functional as F\\n"
            "def helper_sdpa(*args, **kwargs):\\n"
            "    return F.scaled_dot_product_attention(*args, **kwargs)\\n"
        )
    sys.path.insert(0, helper_dir)
    import helper_mod

    start = time.perf_counter()
    tw.install(
        forbidden=forbidden,
        order=["ch02.sdpa", "ch05.split", "ch05.mh", "ch05.other", "ch06.last"],
        provided={
            "ch05.mh": ["selfattn_course.attention.split_heads", "helper_mod.helper_sdpa"],
            "ch06.last": ["helper_mod.helper_sdpa"],
        },
        hand_over=hand_over,
    )
    print(f"install seconds: {time.perf_counter() - start:.3f}")

    x = torch.randn(2, 5, 8)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    check("package softmax", lambda: A.softmax(q))
    check("package sdpa", lambda: A.scaled_dot_product_attention(q, k, v))
    check("F.sdpa", lambda: F.scaled_dot_product_attention(q, k, v))
    check("torch.ops.aten sdpa", lambda: torch.ops.aten.scaled_dot_product_attention(q, k, v))
    check("torch._C._nn sdpa", lambda: torch._C._nn.scaled_dot_product_attention(q, k, v))
    name = "_scaled_dot_product_" + "flash_attention_for_cpu"
    check("aten flash for cpu", lambda: getattr(torch.ops.aten, name)(q, k, v))
    check("mha need_weights", lambda: mha(x, x, x, need_weights=True))
    check("mha no weights", lambda: mha(x, x, x, need_weights=False))
    mha.eval()
    with torch.no_grad():
        check("mha fast path", lambda: mha(x, x, x, need_weights=False))
    check("native mha", lambda: torch._native_multi_head_attention(
        x, x, x, 8, 2, mha.in_proj_weight, mha.in_proj_bias,
        mha.out_proj.weight, mha.out_proj.bias))
    check("mha forward python", lambda: F.multi_head_attention_forward(
        x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), 8, 2, mha.in_proj_weight,
        mha.in_proj_bias, None, None, False, 0.0, mha.out_proj.weight, mha.out_proj.bias))
    check("grad sdpa", lambda: F.scaled_dot_product_attention(
        q.requires_grad_(), k, v, dropout_p=0.5))
    q.requires_grad_(False)
    check("conv1d", lambda: torch.conv1d(torch.randn(1, 2, 5), torch.randn(3, 2, 2)))
    check("Conv1d module", lambda: torch.nn.Conv1d(2, 3, 2)(torch.randn(1, 2, 5)))
    check("conv2d", lambda: F.conv2d(torch.randn(1, 2, 5, 5), torch.randn(3, 2, 2, 2)))
    check("convolution_backward", lambda: torch.ops.aten.convolution_backward(
        torch.randn(1, 3, 4), torch.randn(1, 2, 5), torch.randn(3, 2, 2), None, [1], [0],
        [1], False, [0], 1, [True, True, False]))
    check("unfold", lambda: F.unfold(torch.randn(1, 2, 5, 5), 2))
    check("im2col", lambda: torch._C._nn.im2col(torch.randn(1, 2, 5, 5), [2, 2], [1, 1],
                                                 [0, 0], [1, 1]))
    check("torch.softmax", lambda: torch.softmax(q, -1))
    check("Tensor.softmax", lambda: q.softmax(-1))
    check("matmul", lambda: q @ k.transpose(-2, -1))
    check("causal_mask", lambda: M.causal_mask(4))

    def in_thread():
        check("thread sdpa", lambda: F.scaled_dot_product_attention(q, k, v))
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()

    getattr(sys, "setprofile")(None)
    check("after setprofile None", lambda: F.scaled_dot_product_attention(q, k, v))
    check("settrace", lambda: sys.settrace(lambda *a: None))
    plain = (lambda x, dim=-1, mask=None: x).__code__
    check("set __code__", lambda: setattr(A.softmax, "__code__", plain))
    check("set hand_over __code__", lambda: setattr(hand_over, "__code__", check.__code__))
    check("gc.get_referents", lambda: gc.get_referents(A.softmax))
    check("gc.get_objects", lambda: gc.get_objects())
    check("reload", lambda: importlib.reload(sys.modules["selfattn_course.attention.softmax"]))
    check("subprocess python", lambda: subprocess.run([sys.executable, "-c", "print(1)"]))
    check("os.system", lambda: os.system("true"))
    import _posixsubprocess
    check("fork_exec", lambda: _posixsubprocess.fork_exec())

    def first_matplotlib_import():  # builds its font cache, asking fc-list (a new process)
        import os, tempfile
        os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp()
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.figure().savefig(os.path.join(os.environ["MPLCONFIGDIR"], "figure.png"))

    check("matplotlib first import", first_matplotlib_import)

    # Scopes.
    check("begin from learner", lambda: tw.begin("ch05.mh"))
    check("sys.audit scope from learner", lambda: sys.audit(tw.SCOPE_EVENT, "begin", "ch05.mh"))
    def my_hand_over(task, fn):
        tw.begin(task)
        return fn()
    check("begin from copy", lambda: my_hand_over("ch05.mh", lambda: None))
    copy = types.FunctionType(hand_over.__code__, {"tw": tw}, "hand_over")
    check("hand_over code, other globals", lambda: copy("ch05.mh", lambda: None))
    check("unknown task", lambda: hand_over("ch99.nope", lambda: None))
    check("split outside scope", lambda: A.split_heads(x, 2))
    check("helper outside scope", lambda: helper_mod.helper_sdpa(q, k, v))
    helper = lambda: helper_mod.helper_sdpa(q, k, v)  # noqa: E731
    check("helper in ch05.split", lambda: hand_over("ch05.split", helper))
    results = []
    def allowed_fallbacks():
        for c in calls:
            results.append(helper_mod.helper_sdpa(*c["args"], **c.get("kwargs", {})))
        check("split in ch05.mh", lambda: A.split_heads(x, 2))
        # a direct call by the learner inside the scope still trips
        check("direct sdpa in ch05.mh", lambda: F.scaled_dot_product_attention(q, k, v))
        check("nested begin", lambda: tw.begin("ch05.other"))
    check("helper in ch05.mh", lambda: hand_over("ch05.mh", allowed_fallbacks))
    close = all(torch.allclose(r, e, atol=1e-12) for r, e in zip(results, expected))
    print(f"fallback equal: {close and len(results) == len(calls)}")
    check("redo ch05.mh", lambda: hand_over("ch05.mh", lambda: None))
    check("earlier ch05.split", lambda: hand_over("ch05.split", lambda: None))
    check("skip to ch06.last", lambda: hand_over("ch06.last", helper))
    check("after scopes", lambda: helper_mod.helper_sdpa(q, k, v))
    """
)

NOTHING_SCRIPT = textwrap.dedent(
    """
    tw.install(
        forbidden={"selfattn_course.masks.causal_mask": ["ch04.mask"]},
        order=["ch04.mask"], provided={}, hand_over=hand_over,
    )
    q = torch.randn(1, 3, 4)
    check("causal_mask forbidden", lambda: M.causal_mask(4))
    check("sdpa not forbidden", lambda: F.scaled_dot_product_attention(q, q, q))
    check("conv not forbidden", lambda: torch.conv1d(torch.randn(1, 2, 5), torch.randn(3, 2, 2)))
    check("package softmax", lambda: A.softmax(q))
    """
)


def _run(script: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = {}
    for line in done.stdout.splitlines():
        label, _, outcome = line.partition(": ")
        lines[label] = outcome
    return lines


@pytest.fixture(scope="module")
def attention() -> dict[str, str]:
    return _run(ATTENTION_SCRIPT)


TRIPPED = [
    "package softmax",
    "package sdpa",
    "F.sdpa",
    "torch.ops.aten sdpa",
    "torch._C._nn sdpa",
    "aten flash for cpu",
    "mha need_weights",
    "mha no weights",
    "mha fast path",
    "native mha",
    "mha forward python",
    "grad sdpa",
    "conv1d",
    "Conv1d module",
    "conv2d",
    "convolution_backward",
    "unfold",
    "im2col",
    "thread sdpa",
    "after setprofile None",
    "split outside scope",
    "helper outside scope",
    "helper in ch05.split",
    "direct sdpa in ch05.mh",
    "after scopes",
]


@pytest.mark.parametrize("label", TRIPPED)
def test_wired_calls_trip(attention, label):
    assert attention[label].startswith("tripped |"), attention[label]


def test_message_names_function_and_tasks(attention):
    message = attention["F.sdpa"]
    assert "torch.nn.functional.scaled_dot_product_attention" in message
    assert "ch02.sdpa" in message and "from scratch" in message


REFUSED = [
    "settrace",
    "set __code__",
    "set hand_over __code__",
    "gc.get_referents",
    "gc.get_objects",
    "reload",
    "subprocess python",
    "os.system",
    "fork_exec",
    "begin from learner",
    "sys.audit scope from learner",
    "begin from copy",
    "hand_over code, other globals",
    "unknown task",
    "nested begin",
    "redo ch05.mh",
    "earlier ch05.split",
]


@pytest.mark.parametrize("label", REFUSED)
def test_capabilities_refused(attention, label):
    assert attention[label].startswith("refused |"), attention[label]


def test_a_refused_new_process_is_an_os_error_as_when_the_program_cannot_run():
    from selfattn_course.grading.tripwires import NoNewProcess

    assert issubclass(NoNewProcess, PermissionError)


@pytest.mark.parametrize(
    "label",
    ["torch.softmax", "Tensor.softmax", "matmul", "causal_mask", "split in ch05.mh",
     "helper in ch05.mh", "skip to ch06.last", "matplotlib first import"],
)  # fmt: skip
def test_allowed_calls_work(attention, label):
    assert attention[label] == "ok", attention[label]


def test_allowed_fallback_equals_torch(attention):
    assert attention["fallback equal"] == "True"


def test_install_is_fast(attention):
    assert float(attention["install seconds"]) < 1.5


def test_only_forbidden_names_are_wired():
    lines = _run(NOTHING_SCRIPT)
    assert lines["causal_mask forbidden"].startswith("tripped |")
    for label in ("sdpa not forbidden", "conv not forbidden", "package softmax"):
        assert lines[label] == "ok", lines[label]
