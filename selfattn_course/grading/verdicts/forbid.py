"""Forbid calls: catch a learner's "from scratch" function calling a ready-made attention.

``with forbid_calls(names): fn(...)`` watches every call made while ``fn`` runs (with
``sys.setprofile``, so it sees calls through any alias: ``import torch.nn.functional as F``,
``from selfattn_course.attention import softmax as sm``, a method of a module) and raises
:class:`ForbiddenCall` at the end of the block if one of the named functions was called.

Names are dotted paths, resolved attribute by attribute:
``"torch.nn.functional.scaled_dot_product_attention"``, ``"torch.nn.MultiheadAttention.forward"``,
``"selfattn_course.attention.softmax"`` (the function the package exports, not the module).

Calls made from inside an ``allowed`` function are not counted: the grader uses this for the
reference helpers it provides to a task (see ``FunctionTask.provided``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from selfattn_course.grading.errors import CheckFailed
from selfattn_course.grading.names import python_function, resolve

#: What a task that asks for attention "from scratch" may not call: the package's references and
#: torch's own attention (functional and module, and the function the module calls).
ATTENTION_BUILTINS: tuple[str, ...] = (
    "selfattn_course.attention.softmax",
    "selfattn_course.attention.scaled_dot_product_attention",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.MultiheadAttention.forward",
)

#: What a convolution "from scratch" may not call: torch's convolutions, functional and module
#: (``torch.conv1d`` is the same object as ``torch.nn.functional.conv1d``).
CONV_BUILTINS: tuple[str, ...] = (
    "torch.nn.functional.conv1d",
    "torch.nn.functional.conv2d",
    "torch.nn.functional.conv3d",
    "torch.nn.functional.conv_transpose1d",
    "torch.convolution",
    "torch.nn.Conv1d.forward",
    "torch.nn.Conv2d.forward",
)

#: What building a mask "by hand" may not call: every mask builder of ``selfattn_course.masks``.
MASK_BUILTINS: tuple[str, ...] = (
    "selfattn_course.masks.padding_mask",
    "selfattn_course.masks.key_padding_to_attention",
    "selfattn_course.masks.causal_mask",
    "selfattn_course.masks.segment_mask",
    "selfattn_course.masks.sliding_window_mask",
    "selfattn_course.masks.prefix_lm_mask",
    "selfattn_course.masks.combine",
    "selfattn_course.masks.additive_mask",
)


class ForbiddenCall(CheckFailed):
    """A forbidden function was called; the message names it and the task's rule."""


def _code_of(function: Any) -> Any | None:
    """The code object of a Python function (unwrapping decorators), None for a builtin."""
    function = python_function(function)
    return None if function is None else function.__code__


class _CallWatcher:
    """A ``sys.setprofile`` hook that records calls to watched functions."""

    def __init__(self, names: Iterable[str], allowed: Iterable[Callable[..., Any]]):
        self.python_functions: dict[Any, str] = {}
        self.builtin_functions: dict[int, str] = {}
        for name in names:
            target = resolve(name)
            code = _code_of(target)
            if code is not None:
                self.python_functions[code] = name
            else:
                self.builtin_functions[id(target)] = name
        self.allowed_codes = {code for code in map(_code_of, allowed) if code is not None}
        self.allowed_frames: list[Any] = []
        self.called: list[str] = []

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code in self.allowed_codes:
                self.allowed_frames.append(frame)
            elif code in self.python_functions and not self.allowed_frames:
                self._record(self.python_functions[code])
        elif event == "return":
            if self.allowed_frames and frame is self.allowed_frames[-1]:
                self.allowed_frames.pop()
        elif event == "c_call" and not self.allowed_frames:
            name = self.builtin_functions.get(id(arg))
            if name is not None:
                self._record(name)

    def _record(self, name: str) -> None:
        if name not in self.called:
            self.called.append(name)


@contextmanager
def forbid_calls(
    names: Iterable[str],
    *,
    rule: str = "this task asks you to write it yourself",
    allowed: Iterable[Callable[..., Any]] = (),
) -> Iterator[None]:
    """Raise :class:`ForbiddenCall` after the block if it called one of ``names``.

    Args:
        names: dotted names of the forbidden functions.
        rule: why they are forbidden, for the message.
        allowed: functions whose own calls are not counted (helpers the grader provides).
    """
    names = tuple(names)
    if not names:
        yield
        return
    watcher = _CallWatcher(names, allowed)
    previous = sys.getprofile()
    sys.setprofile(watcher)
    try:
        yield
    except BaseException as error:
        sys.setprofile(previous)
        if watcher.called:
            raise ForbiddenCall(_message(watcher.called, rule)) from error
        raise
    else:
        sys.setprofile(previous)
        if watcher.called:
            raise ForbiddenCall(_message(watcher.called, rule))


def _message(called: list[str], rule: str) -> str:
    listing = ", ".join(called)
    return f"your code called {listing}; {rule}"
