"""The hidden cases run on the devices the learner's kernel has (StartTrustedChecks.kernel_devices).

The sandbox shows no GPU device node, so a grader on a machine with a GPU must not draw CUDA
cases: the kernel would fail to build them and the task would get no result at all.
"""

from __future__ import annotations

import nbformat
import pytest
import torch
from traitlets.config import Config

from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.preprocessors import StartTrustedChecks


def drawn_devices(config: Config | None = None, tmp_path=None) -> tuple[str, ...]:
    step = StartTrustedChecks(config=config or Config())
    notebook = nbformat.v4.new_notebook()  # no test cells: only the draw matters here
    _, resources = step.preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    return resources["selfattn_course"]["draw"].devices


def test_sandboxed_kernels_get_cases_on_the_cpu_alone_even_where_a_gpu_is_seen(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (True, ""))
    monkeypatch.setattr(
        "selfattn_course.devices.available_devices",
        lambda: [torch.device("cpu"), torch.device("cuda:0")],
    )
    assert drawn_devices(tmp_path=tmp_path) == ("cpu",)


def test_without_a_sandbox_every_device_of_the_machine_is_drawn(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, "no bwrap"))
    monkeypatch.setattr(
        "selfattn_course.devices.available_devices",
        lambda: [torch.device("cpu"), torch.device("cuda:0")],
    )
    config = Config()
    config.SandboxedKernelManager.unsafe_no_sandbox = True
    assert drawn_devices(config, tmp_path) == ("cpu", "cuda:0")


@pytest.mark.parametrize("devices", [["cpu"], ["cpu", "cuda:0"]])
def test_the_instructor_may_name_the_devices(devices, tmp_path):
    config = Config()
    config.StartTrustedChecks.devices = devices
    assert drawn_devices(config, tmp_path) == tuple(devices)
