"""Shared fixtures: the user's accounts kept out of reach, composing the real config, a real local Ray
instance shared by the session."""

from __future__ import annotations

import os

import pytest

# Settings that would let a test reach the user's W&B account (or read its credentials): removed for the
# whole session, before any test, Ray worker or subprocess starts (they inherit os.environ).
ACCOUNT_VARIABLES = ("NETRC", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Tests never touch the user's accounts: HOME is an empty temporary directory (no ~/.netrc, no
    ~/.config/wandb, no corpus cache of the user's), every WANDB_* setting of the user is dropped and
    W&B is offline. Set in os.environ, so subprocesses (`python -m sweep`) and Ray workers get it too."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("WANDB_") or key in ACCOUNT_VARIABLES:
            del os.environ[key]
    os.environ.update(HOME=str(home), WANDB_MODE="offline", WANDB_SILENT="true")
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _ray_with(num_gpus: int):
    """The test Ray instance (2 CPUs, `num_gpus` GPUs), restarted only when a test needs the other kind."""
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) != num_gpus:
        ray.shutdown()
    if not ray.is_initialized():
        # address="local": always a Ray of the tests' own, never another session's cluster on a shared machine
        ray.init(address="local", num_cpus=2, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False)
    return ray


@pytest.fixture
def ray_local():
    """A real Ray instance on this machine (2 CPUs, no GPU), shared by the tests that need one."""
    return _ray_with(0)


@pytest.fixture
def ray_fake_gpu():
    """A real Ray instance with 2 CPUs and one GPU it believes in (num_gpus=1 needs no GPU): scheduling
    tests see GPU shares given out on any machine. Runs that should not touch CUDA use cluster.device=cpu."""
    return _ray_with(1)


@pytest.fixture(scope="session", autouse=True)
def _ray_shutdown_at_exit():
    yield
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


@pytest.fixture
def compose_cfg():
    """compose_cfg(*overrides) -> SweepConfig, from the repository's conf/ exactly as the CLI does."""
    from sweep.cli import compose

    return lambda *overrides: compose(list(overrides))


@pytest.fixture
def data_parallel_spec(compose_cfg):
    """data_parallel_spec(n_tokens, *overrides) -> the smallest run of grid=tiny at that one budget, batch 8
    (split over two ranks), lr 2e-3, two validation points, torch on one thread: the run the data-parallel
    tests train in two ranks and in one process."""
    import torch

    from sweep.plan.grid import expand

    def make(n_tokens: float, *overrides: str):
        torch.set_num_threads(1)
        cfg = compose_cfg("grid=tiny", f"grid.n_tokens=[{n_tokens:g}]", "train.batch_size=8", "train.lr=2e-3",
                          "train.val_points=2", *overrides)
        return min(expand(cfg), key=lambda s: s.model.n_layer)
    return make


def pytest_terminal_summary(terminalreporter):
    """The chaos tests' summary table (tests/sweep/test_chaos.py), when they ran."""
    import sys

    # pytest imports the test file as `test_chaos`; tests/sweep/test_multinode.py appends through
    # `tests.sweep.test_chaos`, which may be a second module object: gather the rows of both
    modules = {id(m): m for m in (sys.modules.get("test_chaos"), sys.modules.get("tests.sweep.test_chaos")) if m}
    rows = [row for module in modules.values() for row in getattr(module, "SUMMARY", [])]
    if not rows:
        return
    terminalreporter.section("chaos summary")
    columns = ("case", "runs lost", "duplicate rows", "steps recomputed", "seconds", "note")
    terminalreporter.write_line(" | ".join(columns))
    for row in rows:
        cells = [f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        terminalreporter.write_line(" | ".join(cells))
