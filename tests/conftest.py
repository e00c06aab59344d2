"""Shared pytest set-up: hypothesis profiles and deterministic torch threads."""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

torch.set_num_threads(1)
