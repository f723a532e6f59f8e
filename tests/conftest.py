"""Shared pytest set-up: hypothesis profiles and a fixture over every available device."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from selfattn_course.devices import available_devices

# Property tests run a fixed, moderate number of examples: deterministic in CI, quick on 2 cores.
settings.register_profile(
    "course",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))


@pytest.fixture(params=available_devices(), ids=str)
def device(request):
    """Each device torch can use here: the CPU always, CUDA/MPS where present."""
    return request.param
