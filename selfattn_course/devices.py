"""Which devices can run the course's torch code.

``default_device()`` picks the fastest one present (CUDA, then Apple's MPS, then the CPU);
``available_devices()`` lists all of them, so tests and graders can exercise every one.
"""

from __future__ import annotations

import torch


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[torch.device]:
    """Every device torch can use, CPU first: ``[cpu]``, ``[cpu, cuda:0, ...]``, ``[cpu, mps]``."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append(torch.device("mps"))
    return devices


def default_device() -> torch.device:
    """The device to compute on by default: ``cuda`` if present, else ``mps``, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")
