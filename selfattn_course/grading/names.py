"""Dotted names of functions, as the tasks' forbidden lists and provided helpers spell them.

``"torch.nn.functional.scaled_dot_product_attention"``, ``"torch.nn.MultiheadAttention.forward"``,
``"selfattn_course.attention.softmax"`` (the function the package exports, not the module).
Used by the in-kernel watcher (:mod:`.verdicts.forbid`) and the tripwires (:mod:`.tripwires`),
which must agree on what a name refers to. Imports nothing of the course.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

__all__ = ["resolve", "python_function"]


def resolve(name: str) -> Any:
    """The object a dotted name refers to, importing modules on the way as needed;
    ``LookupError`` naming the part that does not exist."""
    parts = name.split(".")
    target = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            target = getattr(target, part)
        except AttributeError:
            module_name = ".".join(parts[: i + 1])
            try:
                target = importlib.import_module(module_name)
            except ModuleNotFoundError:
                raise LookupError(
                    f"cannot resolve {name!r}: {'.'.join(parts[:i])} has no attribute {part!r}"
                ) from None
    return target


def python_function(obj: Any) -> types.FunctionType | None:
    """The innermost Python function of ``obj`` (decorators unwrapped, a method's function),
    None for a builtin."""
    obj = inspect.unwrap(obj)
    obj = getattr(obj, "__func__", obj)
    return obj if isinstance(obj, types.FunctionType) else None
