"""`python -m sweep [overrides]`: compose the config, check it, plan the stages, run them, analyse.

Thin on purpose (STYLE 3): everything it calls is usable from Python. All arguments are Hydra
overrides (`grid=tiny train.lr=1e-3 results_dir=/data/res`); `--cfg` prints the composed config,
`dry_run=true` prints the run table, `--help` lists the config groups and their options.
"""

from __future__ import annotations

import dataclasses
import sys

from rich.console import Console

from sweep.compose import CONF_DIR, GROUPS, compose, group_options
from sweep.config.schema import SweepConfig

__all__ = ["CONF_DIR", "GROUPS", "compose", "group_options", "main"]

EXIT_OK, EXIT_RUNS_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def usage(conf_dir=CONF_DIR) -> str:
    lines = ["usage: python -m sweep [--cfg] [key=value ...] [group=option ...]", "",
             "Config groups (pick with group=option):"]
    lines += [f"  {group:8s} {', '.join(options)}" for group, options in group_options(conf_dir).items()]
    lines += ["", "Examples:", "  python -m sweep grid=tiny", "  python -m sweep dry_run=true",
              "  python -m sweep 'grid.n_tokens=[1e6,4e6]' results_dir=s3://bucket/sweeps",
              "  python -m sweep cluster=ray cluster.address=auto cluster.gpus_per_run=0.25", "",
              "Exit status: 0 all runs finished, 1 some run failed, 2 bad config, 130 interrupted",
              "(make turns 1 and 2 both into 2: scripts that read the status call python -m sweep)."]
    return "\n".join(lines)


def print_problems(console: Console, problems: list[str], what: str | None = None) -> None:
    """Every problem on its own 'error:' line (the key first), then one line saying nothing started."""
    for problem in problems:  # never wrapped: one line per problem, whatever the terminal's width
        console.print(f"[red]error:[/] {problem}", markup=True, highlight=False, soft_wrap=True)
    if what is not None:
        console.print(f"{what}; nothing was launched", highlight=False, soft_wrap=True)
        return
    count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    console.print(f"{count} in the sweep config; nothing was launched (`python -m sweep --help` lists the config "
                  "groups and their options)", highlight=False, soft_wrap=True)


def config_problems(overrides: list[str]) -> tuple[SweepConfig | None, list[str]]:
    """Every problem found before planning, in one pass: overrides that cannot be composed, keys outside the
    schema, bad values, sizes no shape reaches, a results directory that cannot be made; and, when any of those
    stop the sweep and it asks for cluster=ray, whether that cluster answers (so it is not found only later)."""
    from sweep.compose import compose_all
    from sweep.config.validate import problems as value_problems
    from sweep.plan.checks import shape_problems
    from sweep.preflight import cluster_problem, results_problems

    cfg, problems = compose_all(overrides)
    if cfg is None:
        return None, problems
    problems += value_problems(cfg) + shape_problems(cfg) + results_problems(cfg)
    unreachable = cluster_problem(cfg.cluster) if problems else None
    if unreachable:
        problems.append(f"{unreachable} (needed only while runs remain to train)")
    return cfg, problems


def load_config(overrides: list[str], console: Console) -> SweepConfig | None:
    """Compose and check; print every problem and return None when there is any."""
    from sweep.config.validate import advisories

    cfg, problems = config_problems(overrides)
    if problems or cfg is None:
        print_problems(console, problems)
        return None
    for note in advisories(cfg):
        console.print(f"[yellow]warning:[/] {note}", markup=True, highlight=False)
    return cfg


def _stages(cfg: SweepConfig, store):
    """(stages, the runs still to train)."""
    from sweep.driver.stages import plan_stages
    from sweep.plan.run_id import run_id
    from sweep.store.runs import FINISHED

    stages = plan_stages(cfg, store)
    every = stages.calibration + stages.grid
    states = store.states([run_id(s) for s in every])
    return stages, [s for s in every if states[run_id(s)] not in FINISHED]


def plan(cfg: SweepConfig, store):
    """(cfg with train.precision resolved, stages, runs to train). The precision follows the device the runs
    train on (sweep.plan.device); where only a Ray cluster can tell it (cluster=ray, cluster.device=auto,
    cluster.gpus_per_run=null), a sweep whose runs the store holds finished in one precision is that one and
    needs no cluster; otherwise the cluster's nodes say (ClusterError when it does not answer)."""
    from sweep.driver.cluster import ClusterError, planned_nodes
    from sweep.plan.device import device_settled, with_precision
    from sweep.preflight import cluster_problem

    if cfg.train.precision != "auto" or device_settled(cfg.cluster):
        resolved = with_precision(cfg)
        return (resolved, *_stages(resolved, store))
    for precision in ("bf16", "fp32"):
        fixed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
        stages, todo = _stages(fixed, store)
        if not todo:
            return fixed, stages, todo
    problem = cluster_problem(cfg.cluster)
    if problem:
        raise ClusterError(problem)
    resolved = with_precision(cfg, sum(node.gpus for node in planned_nodes(cfg.cluster)))
    return (resolved, *_stages(resolved, store))


def _train(cfg: SweepConfig, stages, store, todo, console: Console):
    """Train what is left (calibration first, then the grid): (outcome, the grid's specs), or an exit status."""
    from contextlib import nullcontext

    from sweep.driver.cluster import connect, ready
    from sweep.driver.scheduler import run_sweep
    from sweep.driver.stages import after_calibration
    from sweep.plan.checks import validate_runs
    from sweep.store.tracking import decide_wandb_mode
    from sweep.store.version import code_version

    # nothing is written or launched unless the cluster can run the runs; Ray starts only with runs to train
    with ready(cfg.cluster, todo), (connect(cfg.cluster) if todo else nullcontext()):
        # once per sweep: a W&B server that does not answer costs its timeout
        wandb_mode = decide_wandb_mode(cfg.logger) if todo else None
        calibrated = None
        if stages.provisional:
            calibrated = run_sweep(cfg, stages.calibration, store, console, code_version=code_version(),
                                   stage="calibration", wandb_mode=wandb_mode)
            if calibrated.interrupted:
                return EXIT_INTERRUPTED
            stages = after_calibration(cfg, stages, store)
            for line in stages.describe()[1:]:
                console.print(line, highlight=False, soft_wrap=True)
            validate_runs(cfg, stages.grid)
        outcome = run_sweep(cfg, stages.grid, store, console, code_version=code_version(),
                            manifest=stages.manifest(), wandb_mode=wandb_mode)
        if calibrated is not None:
            outcome.rows = {**calibrated.rows, **outcome.rows}
    return outcome, stages.grid


def _analyse(cfg: SweepConfig, store, outcome, status: int, console: Console) -> int:
    """The analysis stage after the runs (unless analysis=false, or it is already of these very runs)."""
    if not cfg.analysis:
        return status
    from analysis.tables.inputs import is_current

    if not outcome.rows and is_current(store.uri):  # nothing trained and the analysis is of these very runs
        console.print(f"analysis up to date: no run changed since {store.uri}/analysis/ was written "
                      f"(python -m analysis {store.uri} redoes it)", highlight=False)
        return status
    from analysis.cli import analyze_sweep

    try:
        analyze_sweep(store.uri, console=console, only_if_changed=True)
    except Exception as exc:  # the sweep's results are safe; say what went wrong with the analysis
        console.print(f"[red]analysis failed[/]: {type(exc).__name__}: {exc}\n"
                      f"rerun it with: python -m analysis {store.uri}", highlight=False)
        status = status or EXIT_RUNS_FAILED
    return status


def _finish(cfg: SweepConfig, specs, outcome, store, console: Console) -> int:
    """The summary, the exit status, and the analysis."""
    from sweep.driver.dry_run import summary_table

    if outcome.rows:
        console.print(summary_table(specs, outcome, store))
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} run(s) failed[/]; their errors are in "
                      f"runs/run_id=<id>/status.json. Rerunning retries only these.")
    return _analyse(cfg, store, outcome, EXIT_RUNS_FAILED if outcome.failed else EXIT_OK, console)


def _launch(cfg: SweepConfig, stages, store, todo, console: Console) -> int:
    """A dry run's table, or the runs trained and analysed; config, cluster and calibration failures as statuses."""
    from sweep.config.validate import ConfigError
    from sweep.driver.cluster import ClusterError
    from sweep.driver.scheduler import run_sweep
    from sweep.driver.stages import CalibrationError
    from sweep.preflight import cluster_problem

    if cfg.dry_run:  # plans only: the dry run says itself what the cluster cannot run
        if stages.calibration:
            run_sweep(cfg, stages.calibration, store, console, stage="calibration")
        run_sweep(cfg, stages.grid, store, console)
        return EXIT_OK
    unreachable = cluster_problem(cfg.cluster) if todo else None
    if unreachable:
        print_problems(console, [unreachable], "the cluster cannot run this sweep")
        return EXIT_CONFIG
    if not todo:
        console.print(f"nothing to train: every run is finished in {store.uri}, so no cluster was started or probed",
                      highlight=False, soft_wrap=True)
    try:
        trained = _train(cfg, stages, store, todo, console)
    except ConfigError as exc:
        print_problems(console, exc.problems, "the calibrated grid is not valid")
        return EXIT_CONFIG
    except CalibrationError as exc:
        console.print(f"[red]calibration failed[/]: {exc}", highlight=False, soft_wrap=True)
        return EXIT_RUNS_FAILED
    except ClusterError as exc:
        print_problems(console, str(exc).splitlines(), "the cluster cannot run this sweep")
        return EXIT_CONFIG
    if isinstance(trained, int):
        return trained
    outcome, specs = trained
    return _finish(cfg, specs, outcome, store, console)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Logs and CI have no terminal width: keep tables readable (run ids unbroken) there too.
    console = Console(width=None if sys.stdout.isatty() else 160)
    if any(a in ("-h", "--help") for a in args):
        print(usage())
        return EXIT_OK
    cfg = load_config([a for a in args if a != "--cfg"], console)
    if cfg is None:
        return EXIT_CONFIG
    if "--cfg" in args:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        return EXIT_OK

    from sweep.config.validate import ConfigError
    from sweep.driver.cluster import ClusterError
    from sweep.plan.checks import validate_runs
    from sweep.store.runs import Store

    store = Store(cfg.results_dir, cfg.name)
    try:
        cfg, stages, todo = plan(cfg, store)
        validate_runs(cfg, stages.calibration + stages.grid)
    except ConfigError as exc:
        print_problems(console, exc.problems)
        return EXIT_CONFIG
    except ClusterError as exc:
        print_problems(console, str(exc).splitlines(), "the cluster cannot run this sweep")
        return EXIT_CONFIG
    for line in stages.describe():
        console.print(line, highlight=False, soft_wrap=True)
    return _launch(cfg, stages, store, todo, console)
