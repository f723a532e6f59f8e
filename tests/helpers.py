"""Helpers that several test files share (importable because pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

BANK_DIR = Path(__file__).resolve().parent / "grading_bank"


def random_qkv(shape_q, shape_k, dv, *, dtype=torch.float64, seed=0, requires_grad=False):
    """Seeded ``q`` of ``shape_q``, ``k`` of ``shape_k`` and ``v`` of ``(*shape_k[:-1], dv)``."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(shape_q, dtype=dtype, generator=generator)
    k = torch.randn(shape_k, dtype=dtype, generator=generator)
    v = torch.randn((*shape_k[:-1], dv), dtype=dtype, generator=generator)
    return tuple(x.requires_grad_(requires_grad) for x in (q, k, v))


def load_bank(chapter: str) -> dict:
    """``BANK`` of ``tests/grading_bank/<chapter>.py``, the chapter's wrong submissions ({} if none):
    ``{name: {"replace": {cell_id: source}, "delete": [...], "loses": [...]}}``."""
    path = BANK_DIR / f"{chapter}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"grading_bank_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BANK
