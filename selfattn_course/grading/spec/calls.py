"""Runners: how a task calls an answer that is not a function from tensors to tensors.

A :class:`~selfattn_course.grading.spec.task.FunctionTask` compares tensors. Its ``runner``
field, ``(function, case) -> result``, adapts two other kinds of answer so that the same
comparison, properties and hints apply:

- a function that returns **a number** (a FLOP count, a size in MiB): :func:`returns_number`
  calls it and wraps the number in a 0-d float64 tensor;
- an **nn.Module class** (a layer the learner writes): :class:`ModuleRunner` builds it from a
  :class:`LayerSpec` found in the case, loads the same weights into it as into the reference,
  moves it to the device and dtype of the inputs and calls it on the rest of the case. It also
  binds the task's provided helpers for the call: ``check``'s own binding looks for the
  namespace of a *function* (its ``__globals__``), which a class does not have.

Both run the learner's code, the reference and the known mistakes the same way, so a hint
matches exactly when the learner made that mistake.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from selfattn_course.grading.spec.cases import Case, describe

__all__ = [
    "returns_number",
    "column_projectors",
    "LayerSpec",
    "ModuleRunner",
    "WeightsTable",
    "provide",
    "quiet",
]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings (they would go to stderr and cost the test cell its points)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def provide(fn: Callable[..., Any], provided: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """Bind ``provided`` names in ``fn``'s module namespace for the block, then restore them.

    For a notebook function that namespace is the notebook's, so ``attention`` calling
    ``masked_softmax`` gets the reference one while ``attention`` is checked.
    """
    namespace = getattr(inspect.unwrap(fn), "__globals__", None)
    if not provided or namespace is None:
        yield
        return
    missing = object()
    saved = {name: namespace.get(name, missing) for name in provided}
    namespace.update(provided)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def returns_number(function: Callable[..., Any], case: Case) -> torch.Tensor:
    """Call ``function(*case.args.values(), **case.kwargs)``; return its number as a 0-d float64
    tensor.

    A Python int or float, a NumPy scalar and a one-element tensor or array all count as a number.

    Raises:
        TypeError: the function returned something else (``None``, a tuple, a string), with a
            message naming the function and what it returned.
    """
    result = function(*case.args.values(), **case.kwargs)
    name = getattr(function, "__name__", "the function")
    one_element = (isinstance(result, torch.Tensor) and result.numel() == 1) or (
        isinstance(result, np.ndarray) and result.size == 1
    )
    if one_element or isinstance(result, np.generic):
        result = result.item()
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        hint = " (is a `return` missing?)" if result is None else ""
        raise TypeError(f"{name} returned {describe(result)}, expected a number{hint}")
    return torch.tensor(float(result), dtype=torch.float64)


def column_projectors(function: Callable[..., Any], case: Case) -> Any:
    """Call ``function`` on ``case``; of the ``(n, k)`` matrix it returns, give ``(k, n, n)``: the
    projector ``u uᵀ`` of each column ``u``, the same for ``u`` and ``-u`` (an eigenvector's sign
    is arbitrary). Anything else is returned as it came, for the comparison to name."""
    vectors = function(*case.args.values(), **case.kwargs)
    if not isinstance(vectors, torch.Tensor) or vectors.ndim != 2:
        return vectors
    return torch.einsum("ik,jk->kij", vectors, vectors)


@dataclass(frozen=True)
class LayerSpec:
    """How to build the layer of a case: ``cls(*init_args)``, weights drawn from ``weights_seed``.

    It is the first argument of a module task's :class:`~selfattn_course.grading.spec.cases.Case`,
    so the failure message shows it:
    ``layer MultiHeadSelfAttention(16, 4) with weights from seed 5`` (``class_name`` is the name
    the statement gives the class).
    """

    class_name: str
    init_args: tuple[Any, ...]
    weights_seed: int

    def __repr__(self) -> str:
        args = ", ".join(map(repr, self.init_args))
        return f"{self.class_name}({args}) with weights from seed {self.weights_seed}"


@dataclass(frozen=True)
class ModuleRunner:
    """Run a task whose answer is an ``nn.Module`` class.

    For a case ``{"layer": LayerSpec, "x": tensor, ...}`` (+ keyword arguments) it does::

        module = cls(*layer.init_args)            # torch's global generator is left as it was
        module.load_state_dict(weights(layer))   # strict: the parameter names must match
        module.to(device=x.device, dtype=x.dtype).eval()
        with torch.no_grad():
            return module(x, ..., **case.kwargs)

    Attributes:
        weights: ``LayerSpec -> state dict`` (CPU float64 tensors), in the parameter names the
            statement asks for; the reference class uses the same names, so both get the same
            weights.
        provided: names bound, while the module runs, in the namespace where its ``forward`` was
            defined (the notebook's, for a learner's class), as ``FunctionTask.provided`` does for
            a function: the class then calls the correct ``split_heads`` and a mistake in that
            earlier task is not counted again. List the same mapping in the task's ``provided``
            so that calls made inside these functions are never counted as forbidden.
    """

    weights: Callable[[LayerSpec], Mapping[str, torch.Tensor]]
    provided: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def __call__(self, cls: Any, case: Case) -> Any:
        layer, *inputs = case.args.values()
        if not isinstance(layer, LayerSpec):
            raise TypeError(
                f"a module case needs a LayerSpec as its first argument, got {describe(layer)}"
            )
        if not isinstance(cls, type):
            raise TypeError(f"expected a class (an nn.Module subclass), got {describe(cls)}")
        with torch.random.fork_rng(
            devices=[]
        ):  # the initial weights are replaced: leave torch's generator alone
            module = cls(*layer.init_args)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"{cls.__name__}(...) is a {type(module).__name__}, expected an nn.Module"
            )
        module.load_state_dict(dict(self.weights(layer)))
        like = next((value for value in inputs if isinstance(value, torch.Tensor)), None)
        if like is not None:
            module.to(device=like.device, dtype=like.dtype)
        module.eval()
        with torch.no_grad(), provide(type(module).forward, self.provided):
            return module(*inputs, **case.kwargs)

    def with_weights_of(self, cases: Iterable[Case]) -> ModuleRunner:
        """The same runner with the weights of ``cases``' layers computed now, as data
        (:class:`WeightsTable`): what the graded kernel receives, since the functions that draw
        the weights live in the grader's task modules, which the sandbox hides."""
        layers = {
            layer
            for case in cases
            for layer in list(case.args.values())[:1]
            if isinstance(layer, LayerSpec)
        }
        table = {layer: {k: v.clone() for k, v in self.weights(layer).items()} for layer in layers}
        return ModuleRunner(WeightsTable(table), dict(self.provided))


@dataclass(frozen=True)
class WeightsTable:
    """``LayerSpec -> state dict`` looked up in a table computed beforehand (see
    :meth:`ModuleRunner.with_weights_of`); a layer not in it is a ``KeyError`` naming it."""

    table: Mapping[LayerSpec, Mapping[str, torch.Tensor]]

    def __call__(self, layer: LayerSpec) -> Mapping[str, torch.Tensor]:
        try:
            return self.table[layer]
        except KeyError:
            raise KeyError(f"no weights were prepared for the layer {layer!r}") from None
