"""What the hidden tests hand from the learner's kernel to the grader: the draw and the payload.

When a notebook is graded, nothing that runs in the learner's kernel decides a score: the learner's
code could have replaced any function there. Instead (see :mod:`.trusted` for the grader's side):

1. Before the notebook runs, the grader picks a :class:`GradingDraw` (a fresh seed, the devices) and
   writes it as :data:`DRAW_FILE` into the notebook's folder, where the kernel starts.
2. Each hidden test, ``check(task_id, fn, hidden=True)``, finds that file, builds the task's
   visible and hidden cases from the seed, runs ``fn`` on them and displays one output of MIME type
   :data:`MIME_TYPE` holding the **payload**: the task, the seed and devices, a digest of the
   inputs, and what ``fn`` returned (or raised) on each case, as data.
3. After the run, the grader rebuilds the same cases, checks the digest, computes the reference
   itself and compares.

The payload is JSON (nbformat stores ``+json`` MIME types as JSON)::

    {"format": 1, "task": "ch02.masked_softmax", "seed": 81273, "devices": ["cpu"],
     "inputs": "<sha256 of every case's name and inputs>",
     "outcomes": [{"value": <value>}, {"raised": {"type": "ValueError", "message": "..."}}, ...]}

with ``"outcomes"`` (one per case, visible cases first) for a function task, ``"not_callable":
"<description>"`` instead when the learner passed something that is not a function, and
``"answer": <value>`` for an answer task. A ``<value>`` is one of ``{"tensor": {"library":
"torch" | "numpy", "dtype", "device", "shape", "data": <base64 of numpy's .npy bytes>}}``,
``{"none": true}``, ``{"bool": b}``, ``{"int": "<digits>"}``, ``{"float": "<repr>"}`` (so NaN and
inf survive JSON), ``{"str": s}``, ``{"tuple" | "list" | "set": [<value>, ...]}`` or
``{"other": {"type": name, "text": description}}`` for anything else (a module, a generator).

Decoding never runs code from the payload: arrays are read with ``allow_pickle=False`` and every
field is checked; anything unexpected raises :class:`MalformedPayload`.

This module needs only numpy and torch: test cells import it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import numbers
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfattn_course.grading.spec.cases import Case, describe

#: The file in the notebook's folder that tells the kernel it is being graded, with which draw.
DRAW_FILE = ".selfattn-course-grading.json"

#: The MIME type of the display output that carries a payload.
MIME_TYPE = "application/vnd.selfattn-course.result+json"

FORMAT = 1

#: A tensor with more entries than this is sent as a description only (no answer comes close).
MAX_ENTRIES = 1 << 22
MAX_ITEMS = 10_000  # of a list, tuple or set
MAX_DEPTH = 16
MAX_TEXT = 10_000

# dtypes a result may have; bfloat16 travels as float32 (exactly) and is restored.
_TORCH_DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
        torch.float16, torch.bfloat16, torch.float32, torch.float64,
        torch.complex64, torch.complex128,
    )
}  # fmt: skip
_NUMPY_DTYPES = {name for name in _TORCH_DTYPES if name != "bfloat16"}


class MalformedPayload(ValueError):
    """A payload (or draw file) that does not have the documented form; says what is wrong."""


# --- the draw -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradingDraw:
    """What the grader drew for grading one notebook: the seed its cases come from, and the devices.

    ``seed`` is mixed into every case's own seed (:func:`~.cases.run_seed`), so the hidden inputs
    change from one grading run to the next; ``devices`` (``("cpu", "cuda:0")``) are those the
    hidden cases run on.
    """

    seed: int
    devices: tuple[str, ...]

    @classmethod
    def fresh(cls, seed: int | None = None, devices: Sequence[str] | None = None) -> GradingDraw:
        """A draw with ``seed`` (default: 62 random bits) on ``devices`` (default: all here)."""
        if devices is None:
            from selfattn_course.devices import available_devices

            devices = [str(device) for device in available_devices()]
        return cls(secrets.randbits(62) if seed is None else int(seed), tuple(map(str, devices)))

    def torch_devices(self) -> list[torch.device]:
        return [torch.device(device) for device in self.devices]

    def write(self, folder: str | Path) -> Path:
        """Write :data:`DRAW_FILE` into ``folder`` (the notebook's); returns its path."""
        path = Path(folder) / DRAW_FILE
        path.write_text(json.dumps({"seed": self.seed, "devices": list(self.devices)}))
        return path

    @classmethod
    def from_json(cls, data: Any) -> GradingDraw:
        if not isinstance(data, dict):
            raise MalformedPayload(f"a draw is a JSON object, got {describe(data)}")
        seed, devices = data.get("seed"), data.get("devices")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise MalformedPayload(f"the seed must be an integer, got {seed!r}")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise MalformedPayload(f"the devices must be a list of names, got {devices!r}")
        return cls(seed, tuple(devices))


#: The folder the kernel started in (the notebook's): this module is first imported by the
#: notebook's setup cell, before any of the learner's code can change the working directory.
_START_FOLDER = Path.cwd()


def start_folder() -> Path:
    """The folder where the grader left :data:`DRAW_FILE` for this kernel: the one it started in,
    else the working folder (a test that changes folder); the start folder when neither has it."""
    for folder in dict.fromkeys([_START_FOLDER, Path.cwd()]):
        if (folder / DRAW_FILE).is_file():
            return folder
    return _START_FOLDER


def current_draw() -> GradingDraw | None:
    """The draw of the grading this kernel is part of, read from :data:`DRAW_FILE`; None outside
    grading (a learner running their notebook, a test)."""
    path = start_folder() / DRAW_FILE
    if path.is_file():
        return GradingDraw.from_json(json.loads(path.read_text()))
    return None


# --- the digest of the inputs ---------------------------------------------------------------------


def inputs_digest(cases: Sequence[Case]) -> str:
    """SHA-256 over every case's name and inputs (names, types, dtypes, shapes, devices, bytes):
    the grader's cases and the kernel's have the same digest exactly when they are the same."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(f"case {case.name!r}\n".encode())
        for name, value in case.inputs().items():
            digest.update(f"arg {name!r}: ".encode())
            _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.view(torch.int16)
        digest.update(f"torch {value.dtype} {tuple(value.shape)} {value.device}\n".encode())
        digest.update(tensor.numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"numpy {value.dtype} {value.shape}\n".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    else:
        digest.update(f"{type(value).__name__} {value!r}\n".encode())


# --- values -> JSON -------------------------------------------------------------------------------


def encode(value: Any, depth: int = 0) -> dict:
    """``value`` as JSON-safe data (the ``<value>`` of the module docstring)."""
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value)
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if value is None:
        return {"none": True}
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, numbers.Integral):
        return {"int": str(int(value))}
    if isinstance(value, numbers.Real):
        return {"float": repr(float(value))}
    if isinstance(value, str):
        return {"str": value[:MAX_TEXT]}
    kind = _CONTAINERS.get(type(value))
    if kind is not None and depth < MAX_DEPTH and len(value) <= MAX_ITEMS:
        items = sorted(value, key=repr) if kind == "set" else value
        return {kind: [encode(item, depth + 1) for item in items]}
    return _other(value)


_CONTAINERS = {tuple: "tuple", list: "list", set: "set", frozenset: "set"}


def _other(value: Any, text: str | None = None) -> dict:
    return {"other": {"type": type(value).__name__, "text": text or describe(value)}}


def _encode_tensor(tensor: torch.Tensor) -> dict:
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in _TORCH_DTYPES or tensor.layout != torch.strided or tensor.is_meta:
        return _other(tensor, f"a {dtype} tensor with layout {tensor.layout} on {tensor.device}")
    if tensor.numel() > MAX_ENTRIES:
        return _other(tensor, f"a tensor of shape {tuple(tensor.shape)} (too large to check)")
    values = tensor.detach().cpu()
    if values.dtype == torch.bfloat16:
        values = values.float()  # numpy has no bfloat16; float32 holds every bfloat16 exactly
    return {
        "tensor": {
            "library": "torch",
            "dtype": dtype,
            "device": str(tensor.device),
            "shape": list(tensor.shape),
            "data": _npy(values.resolve_conj().resolve_neg().numpy()),
        }
    }


def _encode_array(array: np.ndarray) -> dict:
    if array.dtype.name not in _NUMPY_DTYPES:
        return _other(array, f"a numpy array of dtype {array.dtype}")
    if array.size > MAX_ENTRIES:
        return _other(array, f"an array of shape {array.shape} (too large to check)")
    return {
        "tensor": {
            "library": "numpy",
            "dtype": array.dtype.name,
            "device": "cpu",
            "shape": list(array.shape),
            "data": _npy(array),
        }
    }


def _npy(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def returned(value: Any) -> dict:
    """The outcome of a case whose call returned ``value``."""
    return {"value": encode(value)}


def raised(error: BaseException) -> dict:
    """The outcome of a case whose call raised ``error``."""
    return {"raised": {"type": type(error).__name__, "message": str(error)[:MAX_TEXT]}}


# --- JSON -> values -------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Unsendable:
    """What the grader knows of a value that did not travel as data: its type and a description
    (a module, a generator, a tensor too large or on a device the grader does not have)."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return self.text


def decode(data: Any, devices: Sequence[str] = ("cpu",), depth: int = 0) -> Any:
    """The value :func:`encode` made ``data`` from. A torch tensor comes back on its device when
    that is one of ``devices`` (those of the grading run) or the CPU, else as :class:`Unsendable`.
    """
    if not isinstance(data, dict) or len(data) != 1 or depth > MAX_DEPTH + 1:
        raise MalformedPayload(f"a value is an object with one key, got {_short(data)}")
    ((kind, content),) = data.items()
    if kind == "tensor":
        return _decode_tensor(content, devices)
    if kind == "none" and content is True:
        return None
    if kind == "bool" and isinstance(content, bool):
        return content
    if (
        kind == "int"
        and isinstance(content, str)
        and content.lstrip("-").isdigit()
        and len(content) < 400
    ):
        return int(content)
    if kind == "float" and isinstance(content, str):
        try:
            return float(content)
        except ValueError:
            raise MalformedPayload(f"not a float: {_short(content)}") from None
    if kind == "str" and isinstance(content, str):
        return content
    if kind in ("tuple", "list", "set") and isinstance(content, list) and len(content) <= MAX_ITEMS:
        items = [decode(item, devices, depth + 1) for item in content]
        if kind == "set":
            try:
                return set(items)
            except TypeError:  # an unhashable item: a learner's set cannot have held it
                raise MalformedPayload("a set holds an unhashable value") from None
        return tuple(items) if kind == "tuple" else items
    if kind == "other" and isinstance(content, dict):
        type_name, text = content.get("type"), content.get("text")
        if isinstance(type_name, str) and isinstance(text, str):
            return Unsendable(type_name[:200], text[:MAX_TEXT])
    raise MalformedPayload(f"cannot read the value {_short(data)}")


def _decode_tensor(content: Any, devices: Sequence[str]) -> Any:
    if not isinstance(content, dict):
        raise MalformedPayload(f"a tensor is an object, got {_short(content)}")
    library, dtype, device = content.get("library"), content.get("dtype"), content.get("device")
    shape, data = content.get("shape"), content.get("data")
    if library not in ("torch", "numpy") or not isinstance(dtype, str) or not isinstance(data, str):
        raise MalformedPayload(f"a tensor needs library, dtype and data, got {_short(content)}")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise MalformedPayload(f"a tensor's shape is a list of sizes, got {_short(shape)}")
    allowed = _TORCH_DTYPES if library == "torch" else _NUMPY_DTYPES
    if dtype not in allowed:
        raise MalformedPayload(f"a tensor of dtype {dtype!r} cannot be read")
    if math.prod(shape) > MAX_ENTRIES:
        raise MalformedPayload(f"a tensor of shape {tuple(shape)} is too large")
    try:
        array = np.load(io.BytesIO(base64.b64decode(data, validate=True)), allow_pickle=False)
    except Exception as error:
        raise MalformedPayload(f"a tensor's data cannot be read ({type(error).__name__})") from None
    stored = "float32" if dtype == "bfloat16" else dtype
    if array.dtype.name != stored or list(array.shape) != shape:
        raise MalformedPayload(
            f"a tensor's data is {array.dtype} {array.shape}, "
            f"its header says {stored} {tuple(shape)}"
        )
    if library == "numpy":
        return array.copy()  # np.load may hand back a read-only view of the buffer
    tensor = torch.from_numpy(array.copy()).to(_TORCH_DTYPES[dtype])
    if not isinstance(device, str):
        raise MalformedPayload(f"a tensor's device is a name, got {_short(device)}")
    if device != "cpu" and device not in devices:
        return Unsendable(
            "Tensor", f"a tensor on {device[:40]}, a device this grading run does not use"
        )
    return tensor.to(device)


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 80 else text[:77] + "..."


# --- payloads -------------------------------------------------------------------------------------


def function_payload(
    task_id: str, draw: GradingDraw, cases: Sequence[Case], outcomes: Sequence[dict]
) -> dict:
    """The payload of a function task: one outcome per case (``returned(result)`` or
    ``raised(error)``)."""
    return {**_header(task_id, draw), "inputs": inputs_digest(cases), "outcomes": list(outcomes)}


def not_callable_payload(task_id: str, draw: GradingDraw, submission: Any) -> dict:
    """The payload of a function task whose submission is not a function."""
    return {**_header(task_id, draw), "not_callable": describe(submission)}


def answer_payload(task_id: str, draw: GradingDraw, answer: Any) -> dict:
    """The payload of an answer task: the learner's value."""
    return {**_header(task_id, draw), "answer": encode(answer)}


def _header(task_id: str, draw: GradingDraw) -> dict:
    return {"format": FORMAT, "task": task_id, "seed": draw.seed, "devices": list(draw.devices)}
