"""Getting a Ray cluster: start one inside this process (cluster=local) or join one (cluster=ray)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sweep.config.schema import ClusterConfig
from sweep.messages import first_line
from sweep.plan.resources import Node, RunResources, placeable, run_resources
from sweep.plan.spec import RunSpec

log = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster cannot run this sweep as configured (raised before any run is launched). One problem
    per line, each naming the key to change."""


PROBE_SECONDS = 5.0  # how long a cluster address gets to accept a TCP connection
_DEFAULT_PORTS = {"ray": 10001, "": 6379}  # Ray client server, GCS


def head_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) that a cluster.address connects to first: 'host:port', 'ray://host:port' (Ray
    client), a bare host (Ray's default port); None for 'auto' (Ray finds a local cluster itself)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    scheme, _, rest = text.rpartition("://")
    rest = rest.split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep or host.endswith(":") or not port.isdigit():  # no port (or an IPv6 literal without one)
        return rest.strip("[]"), _DEFAULT_PORTS.get(scheme, 6379)
    return host.strip("[]"), int(port)


def probe_address(address: str | None, timeout: float = PROBE_SECONDS) -> str | None:
    """Why nothing answers at a cluster=ray address (bounded by `timeout`), or None when something does.

    ray.init waits minutes for a head that is not there; a TCP connection to its port says within
    seconds whether anything listens (it cannot tell a Ray head from another server on that port).
    """
    if not address:
        return "cluster.address: cluster=ray needs an address (auto, host:port or ray://host:port)"
    endpoint = head_endpoint(address)
    if endpoint is None:
        return None
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
    return (f"cluster.address: nothing answers at {host}:{port} ({reason}); start the head there "
            "(`ray start --head`) or fix cluster.address (auto on a node of the cluster, ray://head:10001 "
            "from outside)")


def on_driver_node() -> dict:
    """Ray options that keep an actor on the driver's own node: the head, where `ray job submit` runs
    the driver and where ray.init(address=...) attaches on a machine with several nodes. The sweep's
    bookkeeping must not die with a worker node. Hard affinity: a soft one sends a zero-CPU actor away
    from a zero-CPU head (measured with Ray 2.60), and this node lives exactly as long as the driver."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)} if node else {}


@contextmanager
def connect(cfg: ClusterConfig) -> Iterator[None]:
    """Connect for the duration of the block; shut down only what this block started.

    cluster=local starts a Ray of its own even when another runs on this machine (ray.init without an
    address would join a cluster that `ray start` left in /tmp/ray, or RAY_ADDRESS names, and refuse
    num_cpus there). cluster=ray: the address is probed first (PROBE_SECONDS) and a failure to join is a
    ClusterError naming cluster.address, so an unreachable cluster fails in seconds instead of minutes.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    common = dict(runtime_env=dict(cfg.runtime_env) or None, log_to_driver=cfg.log_to_driver,
                  logging_level=logging.WARNING, configure_logging=True)
    if cfg.kind == "local":  # address="local": a Ray of its own, never one found running on this machine
        ray.init(address="local", num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, include_dashboard=False, **common)
    else:
        problem = probe_address(cfg.address)
        if problem:
            raise ClusterError(problem)
        try:
            ray.init(address=cfg.address, **common)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ClusterError(f"cluster.address: cannot join the Ray cluster at {cfg.address!r}: "
                               f"{first_line(exc)}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def live_nodes() -> list[Node]:
    """The alive nodes of the connected Ray cluster."""
    import ray

    return [Node(cpus=n["Resources"].get("CPU", 0.0), gpus=n["Resources"].get("GPU", 0.0))
            for n in ray.nodes() if n.get("Alive")]


def autoscaler_nodes(config_path: str | None) -> list[Node]:
    """Node types the connected cluster's autoscaler may add, one Node each: resource checks and GPU
    shares count them, so a cluster that scales up from a head without CPUs is not refused.

    Read from the node groups an autoscaler reports to Ray (KubeRay, autoscaler v2), else from a `ray up`
    cluster YAML at `config_path` (its available_node_types with max_workers > 0; a type without explicit
    `resources` cannot be counted, since Ray fills those in from the cloud at launch). [] when neither is
    there: a cluster without an autoscaler has the nodes it has."""
    import ray

    try:
        reported = ray._private.state.state.get_cluster_config()  # private, hence the broad guard
    except Exception as exc:  # noqa: BLE001 -- an older or newer Ray without it: fall back to the YAML
        log.debug("no autoscaler cluster config from Ray: %s", exc)
        reported = None
    if reported is not None and reported.node_group_configs:
        return [Node(cpus=float(g.resources.get("CPU", 0)), gpus=float(g.resources.get("GPU", 0)))
                for g in reported.node_group_configs if g.max_count != 0]
    return yaml_node_types(config_path)


def yaml_node_types(config_path: str | None) -> list[Node]:
    """The worker node types of a `ray up` cluster YAML that the autoscaler may add ([] when there is none)."""
    if not config_path:
        return []
    path = os.path.expanduser(config_path)
    if not os.path.isfile(path):
        return []
    import yaml

    with open(path) as f:
        config = yaml.safe_load(f) or {}
    head = config.get("head_node_type")
    return [Node(cpus=float(t["resources"].get("CPU", 0)), gpus=float(t["resources"].get("GPU", 0)))
            for name, t in (config.get("available_node_types") or {}).items()
            if name != head and t.get("max_workers", 0) > 0 and t.get("resources")]


def addable_nodes(cfg: ClusterConfig) -> list[Node]:
    """Nodes an autoscaler may add to the connected cluster (cluster=ray; a local Ray has none)."""
    return autoscaler_nodes(cfg.autoscaler_config) if cfg.kind == "ray" else []


def cluster_nodes(cfg: ClusterConfig) -> list[Node]:
    """The nodes runs may be placed on: the live ones, and those an autoscaler may add."""
    return live_nodes() + addable_nodes(cfg)


def local_gpu_count() -> int:
    """GPUs Ray would find on this machine, without starting it (or importing torch): the entries of
    CUDA_VISIBLE_DEVICES when it is set, else the GPUs `nvidia-smi -L` lists, else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "NoDevFiles"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def cuda_usable() -> bool:
    """Whether torch on this machine can use a CUDA GPU (imports torch)."""
    import torch

    return torch.cuda.is_available()


def launch_problems(cfg: ClusterConfig, specs: Sequence[RunSpec], nodes: Sequence[Node]) -> list[str]:
    """Why runs of `specs` could never start on `nodes` (check_resources), or, with cluster=local, why
    each would fail at once: GPU shares on a machine whose torch has no CUDA (cluster.num_gpus given on
    a CPU machine, say). [] when the runs can go."""
    needs = [run_resources(spec, cfg, nodes) for spec in specs]
    problems = check_resources(cfg, needs, nodes)
    if (not problems and cfg.kind == "local" and cfg.device != "cpu" and any(n.num_gpus > 0 for n in needs)
            and not cuda_usable()):
        key = f"cluster.num_gpus={cfg.num_gpus}" if cfg.num_gpus else f"cluster.gpus_per_run={cfg.gpus_per_run}"
        problems.append(f"{key} gives runs a GPU share, but torch on this machine has no CUDA GPU: every run would "
                        "fail (set cluster.device=cpu, or cluster.num_gpus=0)")
    return problems


def require_launchable(cfg: ClusterConfig, specs: Sequence[RunSpec], nodes: Sequence[Node]) -> None:
    """Raise ClusterError when runs of `specs` cannot go on `nodes` (launch_problems): one problem per line,
    each naming its key, the lines the CLI prints as `error:` lines. The one check before launch, made by
    ready() (the CLI, before anything is written) and by run_sweep against the nodes it joined (callers
    that skip ready: bench/, tests)."""
    problems = launch_problems(cfg, specs, nodes)
    if problems:
        raise ClusterError("\n".join(problems))


@contextmanager
def ready(cfg: ClusterConfig, specs: Sequence[RunSpec]) -> Iterator[None]:
    """Raise ClusterError before anything is launched when the cluster cannot run `specs` (the runs
    still to train); else run the block, joined to the cluster when cluster=ray.

    cluster=local: checked against this machine (or cluster.num_cpus/num_gpus) without starting Ray.
    cluster=ray: joins the cluster (the address probed first: an unreachable one fails in seconds),
    checks the live nodes and stays joined for the block, so the scheduler uses this connection.
    """
    if not specs:
        yield
        return
    if cfg.kind == "local":
        require_launchable(cfg, specs, planned_nodes(cfg))
        yield
        return
    with connect(cfg):
        require_launchable(cfg, specs, cluster_nodes(cfg))
        yield


def planned_nodes(cfg: ClusterConfig) -> list[Node]:
    """The nodes a sweep would run on, for planning without launching (dry run).

    cluster=local: this machine (cluster.num_cpus / cluster.num_gpus where given, so a laptop can plan
    for a GPU node with cluster.num_gpus=1); cluster=ray: the nodes of the running cluster, joined
    briefly. Raises ClusterError when that cluster cannot be reached.
    """
    if cfg.kind == "local":
        return [Node(cpus=float(cfg.num_cpus if cfg.num_cpus is not None else os.cpu_count() or 1),
                     gpus=float(cfg.num_gpus if cfg.num_gpus is not None else local_gpu_count()))]
    try:
        with connect(cfg):
            return cluster_nodes(cfg)
    except ClusterError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cluster.address: cannot reach {cfg.address!r} to plan for its nodes: {exc}") from exc


def check_resources(cfg: ClusterConfig, needs: Sequence[RunResources], nodes: Sequence[Node]) -> list[str]:
    """Problems that would leave runs pending forever: a run whose CPUs and GPUs no single node has."""
    max_cpus = max((n.cpus for n in nodes), default=0.0)
    max_gpus = max((n.gpus for n in nodes), default=0.0)
    problems = []
    if cfg.device == "cuda" and max_gpus == 0:
        problems.append("cluster.device=cuda but the cluster has no GPU (set cluster.device=auto or cpu)")
    unplaceable = [r for r in needs if not placeable(r, nodes)]
    if not unplaceable:
        return problems
    spread = [r for r in unplaceable if r.ranks > 1]
    if spread:
        need = max(spread, key=lambda r: r.ranks)
        total = sum(int(n.gpus) for n in nodes)
        problems.append(f"cluster.gpus_per_run={need.num_gpus:g} trains a run data parallel on {need.ranks} GPUs "
                        f"({need.num_cpus / need.ranks:g} CPUs each), but the cluster has {total} GPUs for it")
        return problems
    cpus = max(r.num_cpus for r in unplaceable)
    gpus = max(r.num_gpus for r in unplaceable)
    found = len(problems)
    if cpus > max_cpus:
        given = f"{cpus:g}" if cfg.cpus_per_run is not None else f"null (auto: {cpus:g} for the largest run)"
        problems.append(f"cluster.cpus_per_run={given} but the largest node has {max_cpus:g} CPUs")
    if gpus > max_gpus:
        given = f"{gpus:g}" if cfg.gpus_per_run is not None else f"null (auto: {gpus:g} for the largest run)"
        problems.append(f"cluster.gpus_per_run={given} but the largest node has {max_gpus:g} GPUs "
                        "(set cluster.gpus_per_run=0 to train on CPU)")
    if len(problems) == found:  # each fits some node, but not both on the same one
        listing = ", ".join(f"{n.cpus:g} CPUs/{n.gpus:g} GPUs" for n in nodes)
        problems.append(f"no node has both {cpus:g} CPUs and {gpus:g} GPUs for a run (cluster.cpus_per_run, "
                        f"cluster.gpus_per_run); the nodes have {listing}")
    return problems
