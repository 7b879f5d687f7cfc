"""Checks before launch outside the config's values: the results directory, and whether a Ray cluster answers."""

import pytest

from sweep.config.schema import ClusterConfig
from sweep.preflight import cluster_problem


def test_results_dir_that_cannot_be_created_is_found_without_writing(tmp_path):
    from sweep.preflight import results_dir_problem

    assert results_dir_problem(str(tmp_path / "new" / "deeper"), "s") is None
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []  # nothing left behind
    (tmp_path / "file").write_text("x")
    assert "is a file" in results_dir_problem(str(tmp_path / "file" / "res"), "s")
    assert "is a file" in results_dir_problem(str(tmp_path), "file")  # <results_dir>/<name> itself a file
    assert results_dir_problem("/proc/no-results-here", "s").startswith("results_dir: cannot create")
    assert results_dir_problem("nosuchfs://bucket/x", "s").startswith("results_dir: cannot open 'nosuchfs://")
    assert results_dir_problem(f"file://{tmp_path}/res", "s") is None


def test_an_unreachable_cluster_names_both_fixes(monkeypatch):
    assert cluster_problem(ClusterConfig(kind="local")) is None
    found = cluster_problem(ClusterConfig(kind="ray", address="127.0.0.1:1"))
    assert found.startswith("cluster.address: nothing answers at 127.0.0.1:1")
    assert "`ray start --head`" in found and "cluster=local" in found
    import ray._private.services as services

    def nothing_running(address, temp_dir=None):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "canonicalize_bootstrap_address", nothing_running)
    found = cluster_problem(ClusterConfig(kind="ray", address="auto"))
    assert found.startswith("cluster.address: cluster=ray with cluster.address=auto found no running Ray instance")
    assert "`ray start --head`" in found and "cluster=local" in found


@pytest.mark.parametrize("results_dir, relative", [("res", True), ("/abs/res", False), ("s3://b/p", False)])
def test_a_relative_results_dir_is_refused_only_on_a_ray_cluster(compose_cfg, results_dir, relative):
    from sweep.preflight import shared_results_problem

    assert shared_results_problem(compose_cfg(f"results_dir={results_dir}")) is None
    found = shared_results_problem(compose_cfg("cluster=ray", f"results_dir={results_dir}"))
    assert (found is not None) == relative
