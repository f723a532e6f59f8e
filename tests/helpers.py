"""Helpers that several test files share (importable because pytest puts ``tests/`` on the path;
the grading benchmarks put it there themselves).

Besides seeded inputs and the bank of wrong submissions, two helpers for grading tests:
:func:`released_course` makes a scratch course to grade in, and :func:`filled_release` writes a
submission: the release with every solution cell filled in from the solution, then changed.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
from collections.abc import Mapping, Sequence
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


def masked_softmax_by_hand(scores, mask):
    """A learner's ``masked_softmax`` written from scratch (no ready-made softmax): masked entries
    get 0, a row with every key masked gives 0 (never NaN)."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    unnormalised = torch.exp(scores - row_max)
    total = unnormalised.sum(dim=-1, keepdim=True)
    return unnormalised / torch.where(total > 0, total, torch.ones_like(total))


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

    An expanded entry also says whether it is ``only_mistakes`` (nothing but known mistakes, each
    already checked in-process with its hint by tests/tasks/test_every_task.py).
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
    return {
        "replace": replace,
        "delete": list(entry.get("delete", [])),
        "loses": loses,
        "only_mistakes": set(entry) == {"mistakes"},
    }


def released_course(
    source: str | Path,
    course_dir: str | Path,
    chapters: Sequence[str],
    *,
    config_text: str | None = None,
    extra_config: str = "",
) -> Path:
    """A new course in ``course_dir``, released: ``source``'s config (or ``config_text``) with
    ``extra_config`` appended, and ``source``'s solutions of ``chapters``. A scratch course to
    grade in without touching ``source``'s gradebook.

    Raises:
        RuntimeError: nbgrader could not release a chapter (its log is in the message).
    """
    from selfattn_course.grading.classroom import course

    course_dir = Path(course_dir)
    (course_dir / "solutions").mkdir(parents=True)
    if config_text is None:
        config_text = (Path(source) / course.CONFIG_FILE).read_text()
    (course_dir / course.CONFIG_FILE).write_text(config_text + extra_config)
    for chapter in chapters:
        shutil.copytree(Path(source) / "solutions" / chapter, course_dir / "solutions" / chapter)
    course.release_missing(course_dir, chapters)
    return course_dir


def filled_release(
    solution,
    release,
    *,
    replace: Mapping[str, str] | None = None,
    prepend: Mapping[str, str] | None = None,
    delete: Sequence[str] = (),
    add_after: Mapping[str, str] | None = None,
    keep_stubs: bool = False,
):
    """A submission: a copy of the ``release`` notebook with every solution cell filled in from
    the ``solution`` notebook (or its stub kept, ``keep_stubs``), then changed, cells named by
    grade id: ``replace`` gives a solution cell a new source, ``prepend`` puts code before one,
    ``delete`` removes cells, ``add_after`` adds a new code cell after one."""
    import nbformat

    from selfattn_course.grading import notebooks

    replace, prepend, add_after = replace or {}, prepend or {}, add_after or {}
    solved = {notebooks.nbgrader_meta(cell).get("grade_id"): cell.source for cell in solution.cells}
    submission = copy.deepcopy(release)
    cells = []
    for cell in submission.cells:
        meta = notebooks.nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if grade_id in delete:
            continue
        if meta.get("solution"):
            source = cell.source if keep_stubs else solved[grade_id]
            cell.source = prepend.get(grade_id, "") + replace.get(grade_id, source)
        cells.append(cell)
        if grade_id in add_after:
            cells.append(nbformat.v4.new_code_cell(add_after[grade_id]))
    submission.cells = cells
    return submission


def bank_submission(solution, release, entry: dict):
    """The wrong submission a bank entry (:func:`load_bank`) describes."""
    return filled_release(
        solution, release, replace=entry["replace"], delete=tuple(entry.get("delete", ()))
    )
