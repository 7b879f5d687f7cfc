"""`python -m sweep [overrides]`: compose the config, validate it, expand the grid, run, analyse.

Thin on purpose (STYLE 3): everything it calls is usable from Python. All arguments are Hydra
overrides (`grid=tiny train.lr=1e-3 results_dir=/data/res`); `--cfg` prints the composed config,
`dry_run=true` prints the run table, `--help` lists the config groups and their options.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from rich.console import Console

from sweep.config.schema import SweepConfig

CONF_DIR = Path(os.environ.get("SWEEP_CONF_DIR", Path(__file__).resolve().parents[1] / "conf"))
GROUPS = ("grid", "model", "train", "data", "tasks", "cluster", "logger")

EXIT_OK, EXIT_RUNS_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="sweep_schema", node=SweepConfig)


def compose(overrides: list[str], conf_dir: Path = CONF_DIR) -> SweepConfig:
    """Compose conf/config.yaml with `overrides` into a typed SweepConfig (raises on Hydra/OmegaConf errors)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from sweep.config.keys import unknown_keys
    from sweep.config.validate import ConfigError

    register_schema()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name="sweep"):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # lets ${hydra:runtime.choices.grid} resolve
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
    unknown = unknown_keys(OmegaConf.to_container(cfg), SweepConfig)
    if unknown:
        raise ConfigError(unknown)
    return OmegaConf.to_object(cfg)


def group_options(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    return {g: sorted(p.stem for p in (conf_dir / g).glob("*.yaml")) for g in GROUPS}


def usage(conf_dir: Path = CONF_DIR) -> str:
    lines = ["usage: python -m sweep [--cfg] [key=value ...] [group=option ...]", "",
             "Config groups (pick with group=option):"]
    lines += [f"  {group:8s} {', '.join(options)}" for group, options in group_options(conf_dir).items()]
    lines += ["", "Examples:", "  python -m sweep grid=tiny", "  python -m sweep dry_run=true",
              "  python -m sweep 'grid.n_tokens=[1e6,4e6]' results_dir=s3://bucket/sweeps",
              "  python -m sweep cluster=ray cluster.address=auto cluster.gpus_per_run=0.25", "",
              "Exit status: 0 all runs finished, 1 some run failed, 2 bad config, 130 interrupted."]
    return "\n".join(lines)


def config_error_message(exc: Exception) -> str:
    """A one-paragraph message for a Hydra/OmegaConf composition error, without the traceback."""
    text = str(exc).strip()
    cause = exc.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text}\n{str(cause).strip()}"
    return text


def _key_in_list_override(key: str, text: str, overrides: list[str]) -> str:
    """Hydra names a key inside a list item of an override relative to the item (`n_params` for
    grid.models=[{n_params: 1e6}]): its full path, grid.models[i].n_params with i the first item holding
    it, so the message can say where it is and what replaces it. The key unchanged otherwise."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = re.search(r"Could not override '([\w.]+)'", text)
    if "." in key or found is None:
        return key
    for parsed in OverridesParser.create().parse_overrides(list(overrides)):
        items = parsed.value() if parsed.key_or_group.lstrip("+~") == found.group(1) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and key in item:
                return f"{found.group(1)}[{i}].{key}"
    return key


def composition_problem(exc: Exception, overrides: list[str], conf_dir: Path = CONF_DIR) -> str:
    """One 'key: what is wrong; the fix' line for a Hydra/OmegaConf composition error (the same form as
    sweep.config.validate's problems); Hydra's own text where the key cannot be told."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from sweep.config.keys import unknown_key_problem
    from sweep.config.validate import suggest
    from sweep.messages import first_line

    text = str(exc)
    if isinstance(exc, MissingConfigException):
        found = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
        if found:
            group, option = found.groups()
            options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
            return (f"{group}: no option {option!r} (conf/{group}/{option}.yaml does not exist)"
                    f"{suggest(option, options)}; options: {', '.join(options)}")
        return first_line(text)
    if isinstance(exc, OverrideParseException):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create()
        for override in overrides:
            try:
                parser.parse_overrides([override])
            except OverrideParseException:
                key = override.split("=", 1)[0].lstrip("+~")
                return (f"{key}: cannot parse {override!r} ({first_line(text)}); quote lists and dicts in the shell, "
                        "e.g. 'grid.n_tokens=[1e6,4e6]'")
        return first_line(text)
    override_key = None
    merging = re.search(r"override (\+{0,2}[\w.\[\]]+)=", text)
    if merging:
        override_key = merging.group(1).lstrip("+")
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    full_key = getattr(cause, "full_key", None) or getattr(exc, "full_key", None)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and full_key and " not in " in str(cause):
        return unknown_key_problem(_key_in_list_override(str(full_key), text, overrides), SweepConfig)
    key = full_key
    if override_key and (not key or "." not in str(key)):  # a key inside a list item, relative to it
        key = override_key if not key or key == override_key else f"{override_key} ({key})"
    message = first_line(str(cause))
    if key:
        return f"{key}: {message}"
    return first_line(text) + (f": {message}" if message and message not in text else "")


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


def load_config(overrides: list[str], console: Console) -> SweepConfig | None:
    """Compose and validate; print a clear message and return None on any config problem."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sweep.config.validate import ConfigError, advisories, validate

    try:
        cfg = compose(overrides)
        validate(cfg)
        for note in advisories(cfg):
            console.print(f"[yellow]warning:[/] {note}", markup=True, highlight=False)
    except ConfigError as exc:
        print_problems(console, exc.problems)
        return None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        print_problems(console, [composition_problem(exc, overrides)])
        return None
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Logs and CI have no terminal width: keep tables readable (run ids unbroken) there too.
    console = Console(width=None if sys.stdout.isatty() else 160)
    if any(a in ("-h", "--help") for a in args):
        print(usage())
        return EXIT_OK
    print_cfg = "--cfg" in args
    args = [a for a in args if a != "--cfg"]
    cfg = load_config(args, console)
    if cfg is None:
        return EXIT_CONFIG
    if print_cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        return EXIT_OK

    from contextlib import nullcontext

    from sweep.config.validate import ConfigError, validate_runs
    from sweep.driver.cluster import ClusterError, connect, ready
    from sweep.driver.dry_run import summary_table
    from sweep.driver.scheduler import run_sweep
    from sweep.driver.stages import CalibrationError, after_calibration, plan_stages
    from sweep.plan.run_id import run_id
    from sweep.store.runs import FINISHED, Store
    from sweep.store.tracking import decide_wandb_mode
    from sweep.store.version import code_version

    store = Store(cfg.results_dir, cfg.name)
    stages = plan_stages(cfg, store)
    try:
        validate_runs(cfg, stages.calibration + stages.grid)
    except ConfigError as exc:
        print_problems(console, exc.problems)
        return EXIT_CONFIG
    for line in stages.describe():
        console.print(line, highlight=False, soft_wrap=True)
    try:
        if cfg.dry_run:  # plans only: the dry run says itself what the cluster cannot run
            if stages.calibration:
                run_sweep(cfg, stages.calibration, store, console, stage="calibration")
            run_sweep(cfg, stages.grid, store, console)
            return EXIT_OK
        every = stages.calibration + stages.grid
        states = store.states([run_id(s) for s in every])
        todo = [s for s in every if states[run_id(s)] not in FINISHED]
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
            specs = stages.grid
            outcome = run_sweep(cfg, specs, store, console, code_version=code_version(),
                                manifest=stages.manifest(), wandb_mode=wandb_mode)
            if calibrated is not None:
                outcome.rows = {**calibrated.rows, **outcome.rows}
    except ConfigError as exc:
        print_problems(console, exc.problems, "the calibrated grid is not valid")
        return EXIT_CONFIG
    except CalibrationError as exc:
        console.print(f"[red]calibration failed[/]: {exc}", highlight=False, soft_wrap=True)
        return EXIT_RUNS_FAILED
    except ClusterError as exc:
        print_problems(console, str(exc).splitlines(), "the cluster cannot run this sweep")
        return EXIT_CONFIG
    if outcome.rows:
        console.print(summary_table(specs, outcome, store))
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    status = EXIT_RUNS_FAILED if outcome.failed else EXIT_OK
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} run(s) failed[/]; their errors are in "
                      f"runs/run_id=<id>/status.json. Rerunning retries only these.")
    if cfg.analysis:
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
