"""What the CLI checks before launch beyond the config's values: that the results directory can be made, and that
the cluster a sweep needs answers; each problem one line naming its key and a fix, as sweep.config.validate's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from sweep.config.schema import ClusterConfig, SweepConfig
from sweep.messages import first_line
from sweep.store.runs import resolve_filesystem

# How a missing cluster is fixed, whichever way it is missing.
CLUSTER_FIXES = ("start one with `ray start --head` (on a node of the cluster: cluster.address=auto; from "
                 "outside: cluster.address=ray://head:10001), or train on this machine with cluster=local")


def results_problems(cfg: SweepConfig) -> list[str]:
    """Why <results_dir>/<name> cannot hold this sweep's results: it cannot be created, or it is relative while
    cluster=ray trains on other nodes. [] when the name or results_dir has a value problem of its own."""
    from sweep.config.validate import SAFE_NAME

    if not cfg.results_dir or not SAFE_NAME.match(cfg.name or ""):
        return []
    problem = results_dir_problem(cfg.results_dir, cfg.name) or shared_results_problem(cfg)
    return [problem] if problem else []


def cluster_problem(cluster: ClusterConfig) -> str | None:
    """Why the Ray cluster of cluster=ray cannot be joined, found within seconds without joining it (None when
    something answers, and always for cluster=local). cluster.address=auto looks for a Ray started on this
    machine (`ray start`, or RAY_ADDRESS) the way ray.init does; any other address must accept a connection."""
    from sweep.driver.cluster import probe_address

    if cluster.kind != "ray" or not cluster.address:  # no address: sweep.config.validate names it
        return None
    address = cluster.address
    if address.strip() == "auto" and not os.environ.get("RAY_ADDRESS"):
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # Ray moved its private helper: ray.init says it when the sweep joins
            return None
        try:
            address = canonicalize_bootstrap_address("auto") or address
        except (ConnectionError, ValueError):
            return ("cluster.address: cluster=ray with cluster.address=auto found no running Ray instance on this "
                    f"machine (none started here by `ray start`, and RAY_ADDRESS is unset); {CLUSTER_FIXES}")
    problem = probe_address(address)
    if problem is None or "cluster=local" in problem:
        return problem
    return f"{problem}; or train on this machine with cluster=local"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def results_dir_problem(results_dir: str, name: str) -> str | None:
    """Why <results_dir>/<name> cannot be created (None when it can), found without creating it.

    Local paths (and file:// URIs): the nearest existing ancestor must be a directory in which this
    process can create a directory (tried with a temporary one, removed at once: permission bits
    alone say nothing for root or a read-only mount). Other URIs: pyarrow must resolve the filesystem.
    """
    try:
        fs, path = resolve_filesystem(results_dir)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a URI it cannot open
        return (f"results_dir: cannot open {results_dir!r} ({first_line(exc)}); give a local directory or a URI "
                "pyarrow.fs can reach (s3://bucket/prefix, gs://bucket/prefix)")
    if not isinstance(fs, pafs.LocalFileSystem):
        return None
    target = Path(path) / name
    found = _nearest_existing(target)
    if not found.is_dir():
        return f"results_dir: {results_dir!r} cannot be created: {found} is a file, not a directory; choose another"
    reason = _can_create_in(found)
    if reason is not None:
        where = f"cannot write in {target}" if found == target else f"cannot create {target} in {found}"
        return f"results_dir: {where} (making a directory there failed: {reason}); choose a directory you can write"
    return None


def shared_results_problem(cfg: SweepConfig) -> str | None:
    """cluster=ray with a relative results_dir: refused, since the driver's working directory means nothing
    on another node (each worker would write beside its own checkout, and a run resumed elsewhere would not
    find its checkpoint). The fix names the absolute path the user probably meant."""
    if cfg.cluster.kind != "ray" or "://" in cfg.results_dir or os.path.isabs(cfg.results_dir):
        return None
    return (f"results_dir: {cfg.results_dir!r} is relative, and cluster=ray runs on other nodes; give a path every "
            f"node sees, e.g. results_dir={os.path.abspath(cfg.results_dir)} on shared storage, or an "
            "s3://bucket/prefix URI")


def _can_create_in(directory: Path) -> str | None:
    """None when a directory can be created in `directory`, else the reason."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sweep-write-check-", dir=directory))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None
