"""Tests for the backward pass and the grouped-query attention of ``flash_attention``.

The gradients come from the Triton kernels of ``selfattn_course/kernels/_flash_bwd.py``; every
case is compared with autograd through the course's reference attention in float64
(``scaled_dot_product_attention(..., enable_gqa=True)``, which repeats the key/value heads).

As in ``test_kernels.py``, the interpreter cases run in a child process (this file run as a
script with ``TRITON_INTERPRET=1``, which must be set before ``triton`` is imported); the tests
read its JSON report, one property per test. Interpreter shapes are tiny (the interpreter runs
each program in NumPy), yet cross several blocks each way: its fixed tiles are 16 x 32 (dK/dV)
and 32 x 16 (dQ), so ``Lq = 37, Lk = 53`` gives ragged ends and a causal diagonal through tiles.

bfloat16 is left out under the interpreter: it multiplies bfloat16 as raw integers. The GPU
tests (marked ``gpu``) cover it, with bigger shapes and head dims 32/64/128.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.kernels import flash_attention

# Largest |grad - reference| / max(1, max |reference|), reference in float64. float32 runs
# exact (IEEE) dots, so only the summation order differs; float16 also rounds P and dS to 16 bits
# before their products, as every FlashAttention backward does.
GRAD_TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 6e-2}
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@dataclasses.dataclass(frozen=True)
class GradCase:
    """One call: q ``(batch, heads, Lq, d)``, k and v ``(kv_batch, kv_heads, Lk, d)``."""

    lq: int
    lk: int
    d: int = 32
    heads: int = 4
    kv_heads: int = 2
    causal: bool = False
    dtype: torch.dtype = torch.float32
    scale: float | None = None
    batch: int = 1
    kv_batch: int | None = None  # None: same as batch; 1 broadcasts k and v over the batch

    @property
    def gqa(self) -> bool:
        return self.kv_heads != self.heads

    @property
    def id(self) -> str:
        parts = [
            str(self.dtype).removeprefix("torch."),
            f"lq{self.lq}",
            f"lk{self.lk}",
            f"d{self.d}",
            f"h{self.heads}kv{self.kv_heads}",
        ]
        parts += ["causal"] if self.causal else []
        parts += [f"scale{self.scale}"] if self.scale is not None else []
        parts += [f"b{self.batch}"] if self.batch != 1 else []
        parts += [f"kvb{self.kv_batch}"] if self.kv_batch is not None else []
        return "-".join(parts)


def make_inputs(case: GradCase, device="cpu"):
    """Deterministic q, k, v and an output gradient, standard normal, rounded to the dtype."""
    generator = torch.Generator().manual_seed(sum(map(ord, case.id)))
    kv_batch = case.batch if case.kv_batch is None else case.kv_batch

    def draw(*shape):
        return torch.randn(*shape, generator=generator).to(device=device, dtype=case.dtype)

    q = draw(case.batch, case.heads, case.lq, case.d)
    k = draw(kv_batch, case.kv_heads, case.lk, case.d)
    v = draw(kv_batch, case.kv_heads, case.lk, case.d)
    grad_out = draw(case.batch, case.heads, case.lq, case.d)
    return q, k, v, grad_out


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.double() - expected).abs().max() / expected.abs().max().clamp_min(1.0))


def run_grad_case(case: GradCase, device="cpu") -> dict:
    """Gradients of flash_attention against float64 autograd through the reference."""
    q, k, v, grad_out = make_inputs(case, device)
    inputs = [x.detach().requires_grad_() for x in (q, k, v)]
    out = flash_attention(*inputs, causal=case.causal, scale=case.scale, enable_gqa=case.gqa)
    grads = torch.autograd.grad(out, inputs, grad_out)

    exact = [x.detach().double().requires_grad_() for x in (q, k, v)]
    expected = scaled_dot_product_attention(
        *exact, causal=case.causal, scale=case.scale, enable_gqa=True
    )
    expected_grads = torch.autograd.grad(expected, exact, grad_out.double())
    return {
        "out_error": relative_error(out.detach(), expected.detach()),
        "grad_errors": {
            name: relative_error(g, e)
            for name, g, e in zip(("dq", "dk", "dv"), grads, expected_grads, strict=True)
        },
        "grad_dtypes": [str(g.dtype) for g in grads],
        "grad_shapes_match": [list(g.shape) for g in grads] == [list(x.shape) for x in inputs],
    }


def check_grad_report(case: GradCase, report: dict) -> None:
    assert "error" not in report, report.get("error")
    assert report["grad_dtypes"] == [str(case.dtype)] * 3
    assert report["grad_shapes_match"]
    tolerance = GRAD_TOLERANCE[case.dtype]
    for name, error in report["grad_errors"].items():
        assert error <= tolerance, f"{name}: relative error {error:.3g} > {tolerance:g}"


# --- cases ----------------------------------------------------------------------------------
# Ragged lengths both ways round, head dims 32 and 64, grouped (h_kv = 2), multi-query
# (h_kv = 1) and multi-head (h_kv = h), causal and not, float32 and float16.

GRAD_CASES = [
    GradCase(lq, lk, d=d, heads=4, kv_heads=kv_heads, causal=causal, dtype=dtype)
    for dtype in (torch.float32, torch.float16)
    for causal in (False, True)
    for lq, lk, d, kv_heads in ((37, 53, 32, 2), (53, 37, 64, 1), (37, 53, 64, 4))
]
EXTRA_GRAD_CASES = [
    GradCase(37, 53, causal=True, scale=0.3),  # the scale multiplies dQ and dK
    GradCase(37, 37, causal=True, scale=-0.5),  # a negative scale flips which key dominates
    GradCase(20, 33, batch=2, kv_batch=1),  # k, v broadcast over the batch: autograd sums
    GradCase(1, 1, kv_heads=1, causal=True),  # one query, one key: P = 1, so dQ = dK = 0
]
GRADCHECK_CASES = [  # tiny: torch.autograd.gradcheck's finite differences, in float32
    GradCase(19, 35, heads=2, kv_heads=1, causal=True),
    GradCase(35, 19, heads=2, kv_heads=2),
]


def _ids(cases):
    return [case.id for case in cases]


def _gradcheck(case: GradCase) -> bool:
    """``torch.autograd.gradcheck``: the kernels' backward against finite differences of their
    own forward, with no reference involved. (These tolerances catch every gradient scaled by
    1.01; fast mode multiplies ``atol`` by the sums of its random vectors, hence so small.)

    In float32, not float64: the interpreter does run float64 ``tl.dot``, but the kernels keep
    their running sums (softmax statistics, log-sum-exp, ``dQ``/``dK``/``dV``) in float32 as on
    the GPU, and a float64 product into a float32 accumulator comes back as garbage under the
    interpreter (Triton 3.9). So the step is large (``eps = 1e-3``: float32 forward rounding of
    ~1e-7 becomes ~1e-4 in a difference quotient); the float64 reference comparisons above are
    the precise check. Fast mode compares one random projection
    of the Jacobian: a few kernel calls instead of one per input element.
    """
    q, k, v, _ = make_inputs(case)
    inputs = tuple(x.requires_grad_() for x in (q, k, v))

    def attention(q, k, v):
        return flash_attention(q, k, v, causal=case.causal, enable_gqa=case.gqa)

    with warnings.catch_warnings():  # "not a double precision floating point": known, see above
        warnings.simplefilter("ignore", UserWarning)
        return torch.autograd.gradcheck(
            attention, inputs, eps=1e-3, atol=1e-7, rtol=2e-3, fast_mode=True
        )


def _saved_tensor_shapes() -> dict:
    """Shapes of what the autograd node of a flash_attention call keeps for backward."""
    q, k, v, _ = make_inputs(GradCase(48, 80, causal=True))
    out = flash_attention(*(x.requires_grad_() for x in (q, k, v)), causal=True, enable_gqa=True)
    node, seen = out.grad_fn, []
    while node is not None and "FlashAttention" not in type(node).__name__:
        seen.append(type(node).__name__)
        node = next((fn for fn, _ in node.next_functions if fn is not None), None)
    assert node is not None, f"no FlashAttention node among {seen}"
    return {"shapes": [list(t.shape) for t in node.saved_tensors], "lq": 48, "lk": 80}


def _gqa_vs_repeated_heads() -> dict:
    """Grouped-query flash attention against multi-head flash attention on repeated heads."""
    q, k, v, grad_out = make_inputs(GradCase(37, 53, heads=4, kv_heads=2, causal=True))
    inputs = [x.requires_grad_() for x in (q, k, v)]
    out = flash_attention(*inputs, causal=True, enable_gqa=True)
    grads = torch.autograd.grad(out, inputs, grad_out)
    repeated = [x.detach().requires_grad_() for x in (q, k, v)]
    # repeat_interleave: query head t reads key/value head t // 2
    out_mha = flash_attention(
        repeated[0],
        repeated[1].repeat_interleave(2, dim=1),
        repeated[2].repeat_interleave(2, dim=1),
        causal=True,
    )
    grads_mha = torch.autograd.grad(out_mha, repeated, grad_out)
    return {
        "out_identical": bool(torch.equal(out, out_mha)),
        "grad_differences": [
            float((a - b).abs().max()) for a, b in zip(grads, grads_mha, strict=True)
        ],
    }


def _mha_through_gqa_flag() -> dict:
    """enable_gqa=True with h_kv = h runs exactly the multi-head computation."""
    q, k, v, grad_out = make_inputs(GradCase(37, 53, heads=2, kv_heads=2))
    results = []
    for gqa in (False, True):
        inputs = [x.detach().requires_grad_() for x in (q, k, v)]
        out = flash_attention(*inputs, enable_gqa=gqa)
        results.append([out, *torch.autograd.grad(out, inputs, grad_out)])
    return {"identical": all(torch.equal(a, b) for a, b in zip(*results, strict=True))}


def _backward_is_deterministic() -> dict:
    """Two backward passes of the same call give the same bits (no atomics in the kernels)."""
    q, k, v, grad_out = make_inputs(GradCase(37, 53, heads=4, kv_heads=1, causal=True))
    inputs = [x.requires_grad_() for x in (q, k, v)]
    out = flash_attention(*inputs, causal=True, enable_gqa=True)
    first = torch.autograd.grad(out, inputs, grad_out, retain_graph=True)
    second = torch.autograd.grad(out, inputs, grad_out)
    return {"identical": all(torch.equal(a, b) for a, b in zip(first, second, strict=True))}


CHECKS = {
    "saved_tensors": _saved_tensor_shapes,
    "gqa_vs_repeated_heads": _gqa_vs_repeated_heads,
    "mha_through_gqa_flag": _mha_through_gqa_flag,
    "deterministic": _backward_is_deterministic,
}


# --- input checks: everywhere ---------------------------------------------------------------


def test_gqa_head_count_that_does_not_divide_raises_value_error_naming_shapes():
    q, k = torch.randn(1, 4, 8, 32), torch.randn(1, 3, 8, 32)
    with pytest.raises(
        ValueError,
        match=r"h_kv must divide the query heads h .*q has shape \(1, 4, 8, 32\), "
        r"k has shape \(1, 3, 8, 32\)",
    ):
        flash_attention(q, k, k, enable_gqa=True)


def test_gqa_with_different_key_and_value_heads_raises_value_error():
    q, k, v = torch.randn(1, 4, 8, 32), torch.randn(1, 2, 8, 32), torch.randn(1, 1, 8, 32)
    with pytest.raises(ValueError, match=r"k and v must have the same number of heads"):
        flash_attention(q, k, v, enable_gqa=True)


def test_gqa_needs_a_head_dim():
    q = torch.randn(8, 32)
    with pytest.raises(ValueError, match=r"with enable_gqa, q must be \(\.\.\., heads, L, d\)"):
        flash_attention(q, q, q, enable_gqa=True)


def test_fewer_kv_heads_without_enable_gqa_raise_value_error():
    # Without enable_gqa, 2 key heads against 4 query heads is a broadcasting error, as in SDPA.
    q, k = torch.randn(1, 4, 8, 32), torch.randn(1, 2, 8, 32)
    with pytest.raises(ValueError, match="do not broadcast"):
        flash_attention(q, k, k)


# --- the kernels under Triton's interpreter (CPU, child process) --------------------------


def _write_interpreter_report(path: str) -> None:
    """Child-process entry point: run every case and check, write ``{id: report}`` as JSON."""
    torch.set_num_threads(1)
    reports = {}
    jobs = {case.id: (run_grad_case, case) for case in GRAD_CASES + EXTRA_GRAD_CASES}
    jobs |= {f"gradcheck-{case.id}": (_gradcheck, case) for case in GRADCHECK_CASES}
    jobs |= {name: (check, None) for name, check in CHECKS.items()}
    for name, (job, case) in jobs.items():
        try:
            reports[name] = job(case) if case is not None else job()
        except Exception:  # reported to the parent test of that case
            reports[name] = {"error": traceback.format_exc()}
    Path(path).write_text(json.dumps(reports, indent=1))


@pytest.fixture(scope="module")
def interpreter_report(tmp_path_factory):
    if not HAS_TRITON:
        pytest.skip("Triton is not installed (it ships wheels for Linux x86_64 only)")
    path = tmp_path_factory.mktemp("flash_bwd") / "interpreter_report.json"
    child = subprocess.run(
        [sys.executable, __file__, "--interpreter-report", str(path)],
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(path.read_text())


def _no_error(report):
    assert not (isinstance(report, dict) and "error" in report), report["error"]
    return report


@pytest.mark.parametrize("case", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_interpreter_gradients_match_float64_reference(interpreter_report, case):
    check_grad_report(case, interpreter_report[case.id])


@pytest.mark.parametrize("case", EXTRA_GRAD_CASES, ids=_ids(EXTRA_GRAD_CASES))
def test_interpreter_gradients_with_scale_broadcast_and_single_key(interpreter_report, case):
    check_grad_report(case, interpreter_report[case.id])


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=_ids(GRADCHECK_CASES))
def test_interpreter_gradcheck_against_finite_differences(interpreter_report, case):
    assert _no_error(interpreter_report[f"gradcheck-{case.id}"]) is True


def test_backward_saves_only_per_row_tensors_never_the_weights(interpreter_report):
    # q (1, 4, 48, 32) with k, v (1, 2, 80, 32) as the kernels see them: (BH, L, d) rows and
    # the log-sum-exp (BH, Lq). Nothing of Lq x Lk = 48 x 80, nothing with more than L x d.
    report = _no_error(interpreter_report["saved_tensors"])
    shapes = report["shapes"]
    assert sorted(shapes) == sorted(
        [[4, 48, 32], [2, 80, 32], [2, 80, 32], [4, 48, 32], [4, 48]]
    )  # q, k, v, out, lse
    for shape in shapes:
        assert not {report["lq"], report["lk"]} <= set(shape), f"an (Lq, Lk) tensor: {shape}"


def test_gqa_equals_multi_head_attention_on_repeated_heads(interpreter_report):
    # Same forward bits (the same tiles in the same order); dK, dV summed over each group
    # inside the kernel, versus by autograd over the repeated copies: float32 rounding only.
    report = _no_error(interpreter_report["gqa_vs_repeated_heads"])
    assert report["out_identical"]
    assert max(report["grad_differences"]) <= 1e-5


def test_enable_gqa_with_as_many_kv_heads_is_multi_head_attention(interpreter_report):
    assert _no_error(interpreter_report["mha_through_gqa_flag"])["identical"]


def test_backward_gives_the_same_bits_every_run(interpreter_report):
    assert _no_error(interpreter_report["deterministic"])["identical"]


# --- the compiled kernels on CUDA ---------------------------------------------------------

CUDA_GRAD_SHAPES = [(256, 256), (300, 1100), (1100, 300), (1024, 1024)]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_cuda_gradients_match_float64_reference(dtype, d, causal):
    for (lq, lk), kv_heads in zip(CUDA_GRAD_SHAPES, (8, 2, 1, 2), strict=True):
        case = GradCase(
            lq, lk, d=d, heads=8, kv_heads=kv_heads, causal=causal, dtype=dtype, batch=2
        )
        check_grad_report(case, run_grad_case(case, "cuda"))


@pytest.mark.gpu
@needs_cuda
def test_cuda_gradients_match_torch_flash_backend_with_gqa():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    generator = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(2, 16, 2048, 128, device="cuda", dtype=torch.bfloat16, generator=generator)
    k, v = torch.randn(
        2, 2, 4, 2048, 128, device="cuda", dtype=torch.bfloat16, generator=generator
    ).unbind(0)
    grad_out = torch.randn_like(q)
    ours = [x.clone().requires_grad_() for x in (q, k, v)]
    theirs = [x.clone().requires_grad_() for x in (q, k, v)]
    out = flash_attention(*ours, causal=True, enable_gqa=True)
    out.backward(grad_out)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        expected = torch.nn.functional.scaled_dot_product_attention(
            *theirs, is_causal=True, enable_gqa=True
        )
    expected.backward(grad_out)
    torch.testing.assert_close(out, expected, atol=2e-2, rtol=2e-2)
    for ours_x, theirs_x in zip(ours, theirs, strict=True):
        torch.testing.assert_close(ours_x.grad, theirs_x.grad, atol=5e-2, rtol=5e-2)


@pytest.mark.gpu
@needs_cuda
def test_cuda_backward_is_deterministic():
    case = GradCase(1000, 1000, d=64, heads=8, kv_heads=1, causal=True, dtype=torch.float16)
    q, k, v, grad_out = make_inputs(case, "cuda")
    inputs = [x.requires_grad_() for x in (q, k, v)]
    out = flash_attention(*inputs, causal=True, enable_gqa=True)
    first = torch.autograd.grad(out, inputs, grad_out, retain_graph=True)
    second = torch.autograd.grad(out, inputs, grad_out)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


if __name__ == "__main__" and sys.argv[1:2] == ["--interpreter-report"]:
    _write_interpreter_report(sys.argv[2])
