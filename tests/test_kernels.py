"""Tests for selfattn_course.kernels.flash_attention, the Triton FlashAttention-2 kernels: the
forward here, with a few gradient cases; the backward and grouped-query attention in
``test_flash_backward.py``.

Three groups:

- input checks and the lazy Triton import: run everywhere, with or without Triton;
- the kernel under Triton's CPU interpreter: ``TRITON_INTERPRET=1`` must be set before ``triton``
  is imported, so a child process (this file run as a script) computes every case once and
  writes a JSON report; the tests here read it, one property per test;
- the compiled kernel on CUDA (marked ``gpu``): bigger shapes, all dtypes, head dims 32/64/128.

Every case is compared with the course's reference attention computed in float64.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.kernels import flash_attention

# Largest |flash - reference| allowed, reference in float64. float32 runs exact (IEEE) dots, so
# only summation order differs; 16-bit inputs also round the weights and the output.
TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
GRAD_TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 6e-2}
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of flash_attention: shapes, options, and how to build the inputs."""

    lq: int
    lk: int
    d: int = 32
    dv: int | None = None  # None: same as d
    causal: bool = False
    dtype: torch.dtype = torch.float32
    q_batch: tuple[int, ...] = (1, 2)  # leading dims of q
    kv_batch: tuple[int, ...] | None = None  # leading dims of k and v; None: same as q
    scale: float | None = None
    input_scale: float = 1.0  # multiplies q and k: large values test the running maximum
    heads_last: bool = False  # build (B, L, H, d) and transpose: non-contiguous inputs
    grad: bool = False

    @property
    def id(self) -> str:
        parts = [
            str(self.dtype).removeprefix("torch."),
            f"lq{self.lq}",
            f"lk{self.lk}",
            f"d{self.d}",
        ]
        parts += [f"dv{self.dv}"] if self.dv else []
        parts += ["causal"] if self.causal else []
        parts += [f"qb{'x'.join(map(str, self.q_batch))}"] if self.q_batch != (1, 2) else []
        parts += [f"kvb{'x'.join(map(str, self.kv_batch))}"] if self.kv_batch is not None else []
        parts += [f"scale{self.scale}"] if self.scale is not None else []
        parts += [f"x{self.input_scale:g}"] if self.input_scale != 1.0 else []
        parts += ["heads_last"] if self.heads_last else []
        parts += ["grad"] if self.grad else []
        return "-".join(parts)


def make_inputs(case: Case, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deterministic q, k, v for ``case`` (standard normal, then rounded to ``case.dtype``)."""
    generator = torch.Generator().manual_seed(sum(map(ord, case.id)))
    kv_batch = case.q_batch if case.kv_batch is None else case.kv_batch
    dv = case.dv or case.d

    def draw(batch, length, dim, multiplier):
        if case.heads_last:  # (B, H, L, d) view of a (B, L, H, d) tensor
            x = torch.randn(batch[0], length, *batch[1:], dim, generator=generator).transpose(1, 2)
        else:
            x = torch.randn(*batch, length, dim, generator=generator)
        return (x * multiplier).to(device=device, dtype=case.dtype)

    q = draw(case.q_batch, case.lq, case.d, case.input_scale)
    k = draw(kv_batch, case.lk, case.d, case.input_scale)
    v = draw(kv_batch, case.lk, dv, 1.0)
    return q, k, v


def reference(q, k, v, *, causal, scale):
    """The course's reference attention, extended to ``Lk = 0`` (which it does not accept).

    With no keys every output row is an empty sum, 0; ``q[..., :0] @ v`` is exactly that
    ``(..., Lq, dv)`` block of zeros, and keeps ``q`` and ``v`` in the autograd graph.
    """
    if k.shape[-2] == 0:
        return q[..., :0] @ v
    return scaled_dot_product_attention(q, k, v, causal=causal, scale=scale)


def run_case(case: Case, device) -> dict:
    """Call flash_attention on ``case`` and measure it against the float64 reference."""
    q, k, v = make_inputs(case, device)
    inputs = [x.detach().requires_grad_(case.grad) for x in (q, k, v)]
    out = flash_attention(*inputs, causal=case.causal, scale=case.scale)

    exact = [x.detach().double().requires_grad_(case.grad) for x in (q, k, v)]
    expected = reference(*exact, causal=case.causal, scale=case.scale)
    report = {
        "dtype": str(out.dtype),
        "device_type": out.device.type,
        "shape": list(out.shape),
        "expected_shape": list(expected.shape),
        "all_finite": bool(torch.isfinite(out).all()),
        "max_error": float((out.detach().double() - expected.detach()).abs().max())
        if out.numel()
        else 0.0,
        "max_abs_score": _max_abs_score(exact[0].detach(), exact[1].detach(), case),
    }
    if case.grad:
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.device)
        grads = torch.autograd.grad(out, inputs, grad_out.to(out.dtype))
        expected_grads = torch.autograd.grad(
            expected, exact, grad_out.to(out.dtype).double(), allow_unused=True
        )
        expected_grads = [
            torch.zeros_like(x) if g is None else g
            for g, x in zip(expected_grads, exact, strict=True)
        ]
        report["grad_dtypes"] = [str(g.dtype) for g in grads]
        report["grad_shapes_match"] = all(
            g.shape == x.shape for g, x in zip(grads, inputs, strict=True)
        )
        report["max_grad_error"] = max(
            float((g.double() - e).abs().max() / e.abs().max().clamp_min(1.0)) if e.numel() else 0.0
            for g, e in zip(grads, expected_grads, strict=True)
        )
    return report


def _max_abs_score(q: torch.Tensor, k: torch.Tensor, case: Case) -> float:
    if q.numel() == 0 or k.numel() == 0:
        return 0.0
    scale = case.scale if case.scale is not None else case.d**-0.5
    return float((q @ k.transpose(-2, -1)).abs().max() * abs(scale))


def check_report(case: Case, report: dict) -> None:
    """The assertions every case must pass, on any device."""
    assert "error" not in report, report.get("error")
    assert report["shape"] == report["expected_shape"]
    assert report["dtype"] == str(case.dtype)
    assert report["all_finite"]
    # A score s held in float32 is off by up to |s| * 2**-24, which shifts its weight e**s by that
    # much relatively: huge scores (input_scale) earn a proportionally larger tolerance.
    tolerance = TOLERANCE[case.dtype] + 8 * report["max_abs_score"] * 2.0**-24
    assert report["max_error"] <= tolerance, (
        f"max |flash - reference| = {report['max_error']:.3g} > {tolerance:.3g}"
    )
    if case.grad:
        assert report["grad_dtypes"] == [str(case.dtype)] * 3
        assert report["grad_shapes_match"]
        assert report["max_grad_error"] <= GRAD_TOLERANCE[case.dtype], (
            f"relative grad error {report['max_grad_error']:.3g} > {GRAD_TOLERANCE[case.dtype]:g}"
        )


# --- cases ----------------------------------------------------------------------------------
# The interpreter runs one (32 x 16) tile per step: lengths 17, 64 and 100 cross several key
# blocks, a ragged last block and, when causal, a diagonal that cuts through a row tile.
# bfloat16 is left out: the interpreter multiplies bfloat16 as raw integers.

SQUARE_CASES = [
    Case(n, n, d=d, causal=causal, dtype=dtype)
    for dtype in (torch.float32, torch.float16)
    for n in (1, 17, 64, 100)
    for d in (32, 64)
    for causal in (False, True)
]
SHAPE_CASES = [
    *(
        Case(lq, lk, causal=causal)
        for lq, lk in ((100, 37), (37, 100), (5, 70))
        for causal in (False, True)
    ),
    Case(20, 40, d=32, dv=64),  # value dim differs from the query/key dim
    Case(20, 20, d=64, q_batch=(2, 3), kv_batch=(1, 3)),  # k, v broadcast over the batch
    Case(20, 20, q_batch=(3,)),  # one leading dim
    Case(20, 20, q_batch=()),  # plain (L, d) matrices
    Case(20, 20, q_batch=(2, 1, 2)),  # three leading dims
    Case(33, 33, causal=True, heads_last=True, q_batch=(1, 3)),  # rows strided H * d apart
    Case(40, 40, scale=0.5),
    Case(
        40, 40, causal=True, scale=-0.3, input_scale=10.0
    ),  # scale < 0: the top score comes from the lowest q·k
    Case(40, 40, causal=True, input_scale=30.0),  # scores in the thousands: exp would overflow
    Case(40, 40, dtype=torch.float16, input_scale=8.0),
]
GRAD_CASES = [
    Case(33, 33, grad=True),
    Case(33, 50, causal=True, grad=True),
    Case(30, 30, d=64, dtype=torch.float16, causal=True, grad=True),
    Case(20, 20, q_batch=(2, 2), kv_batch=(1, 2), grad=True),  # grads of broadcast k, v are summed
]
EMPTY_CASES = [
    Case(5, 0),
    Case(5, 0, causal=True, grad=True),
    Case(0, 7),
    Case(6, 6, q_batch=(0, 2)),
]
INTERPRETER_CASES = SQUARE_CASES + SHAPE_CASES + GRAD_CASES + EMPTY_CASES


def _ids(cases):
    return [case.id for case in cases]


# --- input checks and lazy import: everywhere ---------------------------------------------


def test_importing_kernels_does_not_import_triton():
    code = "import sys, selfattn_course.kernels; print('triton' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_cpu_tensors_without_interpreter_raise_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.randn(1, 2, 8, 32)
    with pytest.raises(
        ValueError, match="runs on CUDA tensors, got tensors on cpu.*TRITON_INTERPRET=1"
    ):
        flash_attention(q, q, q)


@pytest.mark.parametrize("d", [16, 48, 256])
def test_unsupported_head_dim_raises_value_error_naming_d(d):
    q = torch.randn(1, 2, 8, d)
    with pytest.raises(ValueError, match=rf"head dims d in \(32, 64, 128\), got d={d}"):
        flash_attention(q, q, q)


def test_unsupported_value_dim_raises_value_error_naming_v():
    q = torch.randn(1, 2, 8, 32)
    v = torch.randn(1, 2, 8, 40)
    with pytest.raises(ValueError, match=r"got d=40 \(v of shape \(1, 2, 8, 40\)\)"):
        flash_attention(q, q, v)


def test_mismatched_dtypes_raise_type_error():
    q = torch.randn(1, 2, 8, 32)
    with pytest.raises(TypeError, match="one floating dtype"):
        flash_attention(q, q.half(), q)


def test_float64_raises_type_error():
    q = torch.randn(1, 2, 8, 32, dtype=torch.float64)
    with pytest.raises(TypeError, match="float16, bfloat16 and float32, got dtype torch.float64"):
        flash_attention(q, q, q)


def test_numpy_input_raises_type_error():
    q = np.zeros((2, 8, 32), dtype=np.float32)
    with pytest.raises(TypeError, match="torch tensors"):
        flash_attention(q, q, q)


def test_mismatched_key_and_query_dims_raise_value_error():
    q, k = torch.randn(2, 8, 32), torch.randn(2, 8, 64)
    with pytest.raises(ValueError, match="same last dim d"):
        flash_attention(q, k, k)


def test_missing_triton_raises_runtime_error_saying_so(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # pass the device check on this CPU tensor
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now fails
    monkeypatch.setitem(sys.modules, "selfattn_course.kernels._flash_fwd", None)
    q = torch.randn(1, 2, 8, 32)
    with pytest.raises(RuntimeError, match="flash_attention needs Triton"):
        flash_attention(q, q, q)


# --- the kernel under Triton's interpreter (CPU, child process) ---------------------------


def _write_interpreter_report(path: str) -> None:
    """Child-process entry point: run every interpreter case, write ``{case id: report}``."""
    torch.set_num_threads(1)
    reports = {}
    for case in INTERPRETER_CASES:
        try:
            reports[case.id] = run_case(case, "cpu")
        except Exception:  # reported to the parent test of that case
            reports[case.id] = {"error": traceback.format_exc()}
    Path(path).write_text(json.dumps(reports))


@pytest.fixture(scope="module")
def interpreter_report(tmp_path_factory):
    if not HAS_TRITON:
        pytest.skip("Triton is not installed (it ships wheels for Linux x86_64 only)")
    path = tmp_path_factory.mktemp("flash") / "interpreter_report.json"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    child = subprocess.run(
        [sys.executable, __file__, "--interpreter-report", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", SQUARE_CASES + SHAPE_CASES, ids=_ids(SQUARE_CASES + SHAPE_CASES))
def test_interpreter_output_matches_reference(interpreter_report, case):
    check_report(case, interpreter_report[case.id])


@pytest.mark.parametrize("case", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_interpreter_gradients_match_reference(interpreter_report, case):
    check_report(case, interpreter_report[case.id])


@pytest.mark.parametrize("case", EMPTY_CASES, ids=_ids(EMPTY_CASES))
def test_interpreter_empty_inputs_give_zeros_of_the_right_shape(interpreter_report, case):
    # With no keys (Lk = 0) no query has anything to attend to: every row is 0, never nan.
    check_report(case, interpreter_report[case.id])


# --- the compiled kernel on CUDA ----------------------------------------------------------

CUDA_DTYPES = [torch.float16, torch.bfloat16, torch.float32]
CUDA_LENGTHS = [(1, 1), (77, 77), (1000, 1000), (300, 1100), (1100, 300)]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("dtype", CUDA_DTYPES, ids=str)
def test_cuda_output_matches_reference(dtype, d, causal):
    for lq, lk in CUDA_LENGTHS:
        case = Case(lq, lk, d=d, causal=causal, dtype=dtype, q_batch=(2, 3))
        check_report(case, run_case(case, "cuda"))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(
    "case", SHAPE_CASES + GRAD_CASES + EMPTY_CASES, ids=_ids(SHAPE_CASES + GRAD_CASES + EMPTY_CASES)
)
def test_cuda_interpreter_cases_also_pass_compiled(case):
    check_report(case, run_case(case, "cuda"))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_cuda_gradients_match_reference(dtype):
    case = Case(257, 257, d=64, causal=True, dtype=dtype, q_batch=(2, 2), grad=True)
    check_report(case, run_case(case, "cuda"))


@pytest.mark.gpu
@needs_cuda
def test_cuda_matches_torch_flash_backend_on_a_long_sequence():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    generator = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = torch.randn(
        3, 1, 8, 4096, 64, device="cuda", dtype=torch.float16, generator=generator
    ).unbind(0)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(
        flash_attention(q, k, v, causal=True), expected, atol=2e-3, rtol=2e-3
    )


if __name__ == "__main__" and sys.argv[1:2] == ["--interpreter-report"]:
    _write_interpreter_report(sys.argv[2])
