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
    """``BANK`` of ``tests/grading_bank/<chapter>.py``, the chapter's wrong submissions ({} if
    none), as ``{name: {"replace": {cell_id: source}, "delete": [...], "loses": [...]}}``.

    In the file, ``BANK`` maps a name to:

    - ``mistakes``: ``{task name: words of a Mistake's description}``: the ``source`` of the
      mistake of task ``<chapter>.<name>`` whose description contains those words replaces the
      cell ``<name>-solution``, and that task loses points (the mistake is spelled once, in the
      task spec);
    - ``replace``: ``{solution cell id: the learner's whole cell source}``, for what is no known
      mistake (a forbidden call, a broken property, a cell another task builds on);
    - ``delete``: the cell ids the learner deleted (optional);
    - ``loses``: the tasks (test cell ids) that must score less than full marks besides those of
      ``mistakes``; every other task keeps full marks.
    """
    path = BANK_DIR / f"{chapter}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"grading_bank_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: _expanded(chapter, entry) for name, entry in module.BANK.items()}


def _expanded(chapter: str, entry: dict) -> dict:
    """A bank entry with its ``mistakes`` turned into replaced cells and lost tasks."""
    from selfattn_course.grading.spec import get_task

    replace, loses = dict(entry.get("replace", {})), list(entry.get("loses", []))
    for name, words in entry.get("mistakes", {}).items():
        task = get_task(f"{chapter}.{name}")
        found = [m for m in task.mistakes if words in m.description and m.source is not None]
        if len(found) != 1:
            raise ValueError(
                f"{task.id} has {len(found)} mistakes with a source whose description "
                f"contains {words!r}"
            )
        replace[f"{name}-solution"] = found[0].source
        loses += [] if name in loses else [name]
    return {"replace": replace, "delete": list(entry.get("delete", [])), "loses": loses}
