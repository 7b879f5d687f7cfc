"""Hydra composition: conf/ and the command line's overrides into a SweepConfig, and every composition problem as one
'key: what is wrong; the fix' line (the form of sweep.config.validate's problems)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sweep.config.keys import unknown_keys
from sweep.config.schema import SweepConfig

CONF_DIR = Path(os.environ.get("SWEEP_CONF_DIR", Path(__file__).resolve().parents[1] / "conf"))
GROUPS = ("grid", "model", "train", "data", "tasks", "cluster", "logger")


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="sweep_schema", node=SweepConfig)


def _composed(overrides: list[str], conf_dir: Path) -> Any:
    """conf/config.yaml with `overrides`, interpolations resolved, Hydra's own node removed (a DictConfig); raises
    Hydra's and OmegaConf's errors."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    register_schema()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name="sweep"):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # lets ${hydra:runtime.choices.grid} resolve
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
    return cfg


def compose(overrides: list[str], conf_dir: Path = CONF_DIR) -> SweepConfig:
    """Compose conf/config.yaml with `overrides` into a typed SweepConfig (raises on Hydra/OmegaConf errors, and
    ConfigError naming every key outside the schema)."""
    from omegaconf import OmegaConf

    from sweep.config.validate import ConfigError

    cfg = _composed(overrides, conf_dir)
    unknown = unknown_keys(OmegaConf.to_container(cfg), SweepConfig)
    if unknown:
        raise ConfigError(unknown)
    return OmegaConf.to_object(cfg)


def _attempt(overrides: list[str], conf_dir: Path) -> tuple[Any, Exception | None]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _composed(overrides, conf_dir), None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        return None, exc


def compose_all(overrides: list[str], conf_dir: Path = CONF_DIR) -> tuple[SweepConfig | None, list[str]]:
    """(config, problems): one typo must not hide the other problems. An override that cannot be composed on its
    own (a misspelt key, a value of the wrong type, an option that does not exist, unparsable text) is named and
    left out, and keys outside the schema (added with `+`, or written in a conf/ file) are named and dropped; the
    rest is composed and returned for validation. None when even the rest cannot be composed."""
    from omegaconf import OmegaConf

    cfg, error = _attempt(overrides, conf_dir)
    problems: list[str] = []
    if error is not None:
        alone = {o: _attempt([o], conf_dir)[1] for o in overrides}
        bad = [o for o in overrides if alone[o] is not None]
        problems = [composition_problem(alone[o], [o], conf_dir) for o in bad]
        if bad:
            cfg, error = _attempt([o for o in overrides if o not in bad], conf_dir)
        if error is not None:
            return None, problems or [composition_problem(error, overrides, conf_dir)]
    container = OmegaConf.to_container(cfg)
    unknown = unknown_keys(container, SweepConfig, drop=True)
    if not unknown:
        return OmegaConf.to_object(cfg), problems
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SweepConfig), container)), problems + unknown


def group_options(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    return {g: sorted(p.stem for p in (conf_dir / g).glob("*.yaml")) for g in GROUPS}


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
