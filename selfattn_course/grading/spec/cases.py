"""Inputs the graders call a learner's function on: deterministic, small, named.

A :class:`Case` is one call: its positional arguments (in order, by name, so messages can name
them), its keyword arguments, and a short name that says what it tests
("one all-masked row", "length-1 sequence, float64, cuda:0"). Calls are positional, so a learner
may name their parameters as they like; keyword arguments are used only for optional ones
(``mask=`` of ``attention``) so that leaving them out tests the default.

The builders below make the tensors cases need. Every random tensor comes from a
``torch.Generator`` seeded by the caller, is drawn on the CPU and then moved, so the same seed gives
the same numbers on every device.

When grading, the grader draws a fresh seed for each notebook and builds the cases inside
``with run_seed(seed):``; :func:`seeded_generator` then mixes that seed into every case's own, so
the hidden inputs differ from one grading run to the next (and from what the package's source
shows) while keeping their shapes, masks and edge cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def plain_numbers(name: str, **values: int | float) -> Case:
    """A case of plain numbers, for a task whose function takes sizes and returns a count:
    ``plain_numbers("n = 2, d = 3", n=2, d=3)`` calls ``fn(2, 3)``."""
    return Case(name, dict(values))


@dataclass(frozen=True)
class Case:
    """One call of a learner's function: ``fn(*args.values(), **kwargs)``."""

    name: str
    args: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """Every argument by name, positional then keyword."""
        return {**self.args, **self.kwargs}

    def call_str(self, function_name: str) -> str:
        """``masked_softmax(scores (2, 3, 4) float32 cpu, mask (2, 1, 4) bool cpu)``."""
        parts = [f"{name} {describe(value)}" for name, value in self.args.items()]
        parts += [f"{name}={describe(value)}" for name, value in self.kwargs.items()]
        return f"{function_name}({', '.join(parts)})"

    def copy(self) -> Case:
        """The same case with every tensor cloned, so a call that writes into its inputs cannot
        change what the next call (or the reference) sees."""
        return Case(
            self.name,
            {k: _clone(v) for k, v in self.args.items()},
            {k: _clone(v) for k, v in self.kwargs.items()},
        )


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def describe(value: Any) -> str:
    """``"(2, 3, 4) float32 cpu"`` for a tensor, ``"(3, 3) float64 numpy"`` for an array, else
    the repr (cut to 60 characters)."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{tuple(value.shape)} {dtype} {value.device}"
    if isinstance(value, np.ndarray):
        return f"{tuple(value.shape)} {value.dtype} numpy"
    if value is None:
        return "None"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def tag(dtype: torch.dtype, device: torch.device | str) -> str:
    """``"float64, cuda:0"``: the suffix of a case name that says where it runs."""
    return f"{str(dtype).removeprefix('torch.')}, {torch.device(device)}"


def for_each(
    devices: Sequence[torch.device], dtypes: Sequence[torch.dtype] = DTYPES
) -> Iterator[tuple[torch.device, torch.dtype]]:
    """Every ``(device, dtype)`` pair the device supports, in the order given (CPU first).

    Apple's MPS has no float64, so it gets the other dtypes only.
    """
    for device in map(torch.device, devices):
        for dtype in dtypes:
            if device.type == "mps" and dtype == torch.float64:
                continue
            yield device, dtype


def over_devices(
    build: Callable[[torch.dtype, torch.device], list[Case]],
    dtypes: Sequence[torch.dtype] = DTYPES,
) -> Callable[[Sequence[torch.device]], list[Case]]:
    """The hidden cases of a task from the cases of one ``(dtype, device)``.

    ``build(dtype, device)`` returns the cases for that pair; the result, given the devices to
    test, calls it for every pair of :func:`for_each` (CPU first) and appends the pair to each
    case's name: ``"length-1 sequences"`` becomes ``"length-1 sequences, float64, cuda:0"``.
    The cases are built when the hidden tests run (inside :func:`run_seed` when graded)::

        hidden_cases=over_devices(lambda dtype, device: [
            Case("length-1 sequences", qkv(lq=1, lk=1, seed=12, dtype=dtype, device=device)),
        ])
    """

    def hidden_cases(devices: Sequence[torch.device]) -> list[Case]:
        found = []
        for device, dtype in for_each(devices, dtypes):
            found += _tagged(build(dtype, device), tag(dtype, device))
        return found

    return hidden_cases


def over_devices_only(
    build: Callable[[torch.device], list[Case]],
) -> Callable[[Sequence[torch.device]], list[Case]]:
    """:func:`over_devices` for cases whose inputs have no floating dtype (masks, token ids):
    ``build(device)`` once per device, and ``", cuda:0"`` appended to each name."""

    def hidden_cases(devices: Sequence[torch.device]) -> list[Case]:
        found = []
        for device in map(torch.device, devices):
            found += _tagged(build(device), str(device))
        return found

    return hidden_cases


def joined(
    *builders: Callable[[Sequence[torch.device]], list[Case]],
) -> Callable[[Sequence[torch.device]], list[Case]]:
    """Hidden cases made of several builders' cases, in the order given."""

    def hidden_cases(devices: Sequence[torch.device]) -> list[Case]:
        return [case for build in builders for case in build(devices)]

    return hidden_cases


def _tagged(cases: list[Case], where: str) -> list[Case]:
    return [replace(case, name=f"{case.name}, {where}") for case in cases]


# --- random numbers ---------------------------------------------------------------------------

_RUN_SEED: ContextVar[int | None] = ContextVar("grading_run_seed", default=None)


@contextmanager
def run_seed(seed: int | None) -> Iterator[None]:
    """Mix ``seed`` (the grading run's) into every generator made in the block; None: no mixing."""
    token = _RUN_SEED.set(seed)
    try:
        yield
    finally:
        _RUN_SEED.reset(token)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` for ``seed``, or, inside :func:`run_seed`, for a seed derived from
    both (SHA-256 of the two, so neighbouring seeds give unrelated numbers)."""
    run = _RUN_SEED.get()
    if run is not None:
        digest = hashlib.sha256(f"{run}:{seed}".encode()).digest()
        seed = int.from_bytes(digest[:8], "little") >> 1
    return torch.Generator().manual_seed(seed)


# --- tensor builders --------------------------------------------------------------------------


def randn(
    shape: Sequence[int],
    *,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    scale: float = 1.0,
) -> torch.Tensor:
    """Standard normal numbers times ``scale``, drawn on the CPU from ``seed`` then moved."""
    generator = seeded_generator(seed)
    values = torch.randn(tuple(shape), generator=generator, dtype=torch.float64) * scale
    return values.to(device=device, dtype=dtype)


def qkv(
    *,
    batch: Sequence[int] = (2,),
    lq: int = 4,
    lk: int = 5,
    d: int = 8,
    dv: int | None = None,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """``{"q": (*batch, lq, d), "k": (*batch, lk, d), "v": (*batch, lk, dv)}``; ``dv`` defaults
    to ``d``."""
    dv = d if dv is None else dv
    return {
        "q": randn((*batch, lq, d), seed=seed, dtype=dtype, device=device),
        "k": randn((*batch, lk, d), seed=seed + 1, dtype=dtype, device=device),
        "v": randn((*batch, lk, dv), seed=seed + 2, dtype=dtype, device=device),
    }


def random_mask(
    shape: Sequence[int],
    *,
    seed: int,
    p_allowed: float = 0.7,
    device: torch.device | str = "cpu",
    blocked_rows: Sequence[tuple[int, ...]] = (),
    keep_one_per_row: bool = True,
) -> torch.Tensor:
    """Boolean mask, True = may attend, each entry allowed with probability ``p_allowed``.

    With ``keep_one_per_row`` every row (last dim) keeps at least one allowed entry, except the
    rows listed in ``blocked_rows`` (index tuples over the leading dims), which are all False:
    the "all-masked row" edge case.
    """
    generator = seeded_generator(seed)
    mask = torch.rand(tuple(shape), generator=generator) < p_allowed
    if keep_one_per_row and shape[-1] > 0:
        first = torch.randint(0, shape[-1], tuple(shape[:-1]), generator=generator)
        mask.scatter_(-1, first.unsqueeze(-1), True)
    for row in blocked_rows:
        mask[row] = False
    return mask.to(device)


def padding_valid(
    lengths: Sequence[int], max_len: int, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(B, max_len)`` boolean, True for the first ``lengths[b]`` positions (real tokens)."""
    positions = torch.arange(max_len)
    return (positions[None, :] < torch.tensor(list(lengths))[:, None]).to(device)


def key_padding_mask(
    lengths: Sequence[int], max_len: int, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(B, 1, 1, max_len)``: a padding mask shaped to broadcast over heads and queries."""
    return padding_valid(lengths, max_len, device=device)[:, None, None, :]
