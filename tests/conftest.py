"""Shared fixtures: composing the real config, a real local Ray instance shared by the session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def ray_local():
    """A real Ray instance on this machine (2 CPUs), shared by the tests that need one."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def compose_cfg():
    """compose_cfg(*overrides) -> SweepConfig, from the repository's conf/ exactly as the CLI does."""
    from sweep.cli import compose

    return lambda *overrides: compose(list(overrides))
