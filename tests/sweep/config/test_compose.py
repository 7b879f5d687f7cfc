"""Composition: every value a conf/ file sets arrives in the composed config (nothing silently
overwritten by a later defaults entry), and keys outside the schema are refused, even with `+`."""

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweep.cli import CONF_DIR, GROUPS
from sweep.config.validate import ConfigError


def leaves(node, prefix=""):
    """(dotted key, value) of every scalar a YAML document sets; lists compared whole."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def as_plain(value):
    if dataclasses.is_dataclass(value):
        return {k: as_plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    return value


def lookup(cfg, dotted):
    value = cfg
    for part in dotted.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return as_plain(value)


def same(expected, got):
    if isinstance(expected, list):
        # list entries given in YAML as mappings become dataclasses with their defaults filled in
        return len(expected) == len(got) and all(same(e, g) for e, g in zip(expected, got))
    if isinstance(expected, dict):
        return all(same(v, got[k]) for k, v in expected.items())
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return float(expected) == float(got)
    return expected == got


def conf_files():
    for group in (*GROUPS, "experiment"):
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            yield group, path


@pytest.mark.parametrize("group, path", list(conf_files()), ids=lambda v: getattr(v, "stem", v))
def test_every_value_a_conf_file_sets_arrives(compose_cfg, group, path: Path):
    text = path.read_text()
    document = OmegaConf.to_container(OmegaConf.load(path)) or {}
    document.pop("defaults", None)
    is_global = "@package _global_" in text.splitlines()[0]
    selector = f"+experiment={path.stem}" if group == "experiment" else f"{group}={path.stem}"
    extra = ("data.corpus.path=" + str(CONF_DIR),) if (group, path.stem) == ("data", "corpus") else ()
    cfg = compose_cfg(selector, *extra)
    for key, value in leaves(document if is_global else {group: document}):
        if key == "data.corpus.path":
            continue
        assert same(value, lookup(cfg, key)), f"{path.name} sets {key}={value!r}, composed {lookup(cfg, key)!r}"


def test_the_emergence_grid_brings_its_batch_and_gpu_share(compose_cfg):
    # A grid file sets keys of other groups (model.seq_len here); the defaults order lets it win over their options.
    from sweep.plan.grid import expand
    from sweep.plan.resources import Node, run_resources

    cfg = compose_cfg("grid=emergence")
    raw = OmegaConf.load(CONF_DIR / "grid" / "emergence.yaml")
    assert cfg.model.seq_len == raw["model"]["seq_len"]
    assert compose_cfg("grid=chinchilla").model.seq_len == OmegaConf.load(CONF_DIR / "grid" / "chinchilla.yaml")[
        "model"]["seq_len"] != compose_cfg().model.seq_len
    # Batches are derived per run from its compute: larger runs take larger batches.
    batches = {s.label: s.train.batch_size for s in expand(cfg)}
    assert batches["g1"] < batches["g7"] and batches["g7"] * cfg.model.seq_len >= 16384
    # Its GPU shares are chosen per run by size: on a GPU node every run is packed, the small ones most.
    shares = {s.label: run_resources(s, cfg.cluster, [Node(cpus=16, gpus=1)]).num_gpus for s in expand(cfg)}
    assert shares["g1"] == 1 / 8 and shares["g7"] > shares["g1"]
    # ... and the command line still wins over the grid file
    assert compose_cfg("grid=emergence", "cluster.gpus_per_run=1").cluster.gpus_per_run == 1


@pytest.mark.parametrize("override, message", [
    ("+grid.n_token=[1e4]", "grid.n_token: not a config key of grid; did you mean grid.n_tokens?"),
    ("+train.bach_size=8", "train.bach_size: not a config key of train; did you mean train.batch_size?"),
    ("+colour=red", "colour: not a config key of the sweep"),
])
def test_keys_outside_the_schema_are_refused_even_with_plus(compose_cfg, override, message):
    with pytest.raises(ConfigError) as info:
        compose_cfg(override)
    assert message in str(info.value)


def test_free_form_keys_stay_free(compose_cfg):
    cfg = compose_cfg("+cluster.runtime_env.env_vars.X=1", "tasks=default")
    assert cfg.cluster.runtime_env == {"env_vars": {"X": 1}}


def _schema_defaults():
    from sweep.config.schema import SweepConfig

    return OmegaConf.to_container(OmegaConf.structured(SweepConfig))


@pytest.mark.parametrize("group, path", [(g, p) for g, p in conf_files() if g not in ("grid", "experiment")],
                         ids=lambda v: getattr(v, "stem", v))
def test_a_group_option_sets_only_what_differs_from_the_schema_defaults(group, path: Path):
    """The dataclasses hold the defaults (one place): a group option file that restated one would mask a default
    changed in sweep/config/schema.py. Grid and experiment files are deltas chosen for their sweep and may pin a
    value whatever the default."""
    document = OmegaConf.to_container(OmegaConf.load(path)) or {}
    document.pop("defaults", None)
    defaults = _schema_defaults()
    restated = [key for key, value in leaves({group: document}) if same(value, lookup(defaults, key))]
    assert restated == [], f"{path.name} restates the schema's defaults of {restated}: drop them"


def _defaults_order_conf(tmp_path: Path) -> Path:
    """A copy of conf/ in which the option that config.yaml picks for every group sets a marker value, and a grid
    file and an experiment file set other values of the same keys (and the top-level name)."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    picked = {next(iter(entry)): entry[next(iter(entry))] for entry in OmegaConf.load(conf / "config.yaml").defaults
              if isinstance(entry, dict) or OmegaConf.is_dict(entry)}
    markers = {"train": "lr_scale", "model": "seq_len", "data": "seed", "tasks": "n_eval", "cluster": "max_retries",
               "logger": "project"}
    for group, key in markers.items():
        path = conf / group / f"{picked[group]}.yaml"
        document = OmegaConf.load(path)
        document[key] = "from_group" if key == "project" else 3
        OmegaConf.save(document, path)
    grid = OmegaConf.load(conf / "grid" / f"{picked['grid']}.yaml")
    for group, key in markers.items():
        grid[group] = {**grid.get(group, {}), key: "from_grid" if key == "project" else 5}
    (conf / "grid" / "order.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(grid) + "name: grid_name\n")
    (conf / "experiment" / "order.yaml").write_text("# @package _global_\nname: experiment_name\n"
                                                    "train:\n  lr_scale: 7\n")
    return conf


def test_the_defaults_order_lets_a_grid_set_any_group_and_the_experiment_win(tmp_path):
    """conf/config.yaml's order: `_self_` first, then each group's option, then the grid (which may set a key of
    any group), then `+experiment` and the command line. A grid's train.*, cluster.*, ... must win over the
    group's own option file, and its name over config.yaml's."""
    from sweep.compose import compose

    conf = _defaults_order_conf(tmp_path)
    cfg = compose(["grid=order"], conf_dir=conf)
    assert (cfg.train.lr_scale, cfg.model.seq_len, cfg.data.seed, cfg.tasks.n_eval, cfg.cluster.max_retries,
            cfg.logger.project) == (5, 5, 5, 5, 5, "from_grid")
    assert cfg.name == "grid_name"
    cfg = compose(["grid=order", "+experiment=order", "model.seq_len=9"], conf_dir=conf)
    assert (cfg.name, cfg.train.lr_scale, cfg.model.seq_len) == ("experiment_name", 7, 9)
    assert compose(["grid=order", "cluster=ray"], conf_dir=conf).cluster.max_retries == 5  # another option too


def test_compose_all_names_every_bad_override_and_composes_the_rest():
    from sweep.compose import compose_all

    cfg, problems = compose_all(["grid=tiny", "train.lrr=1", "+grid.n_token=[1e4]", "train.batch_size=many",
                                 "grid=tinny", "model.seq_len=64"])
    assert cfg is not None and cfg.model.seq_len == 64 and cfg.grid.models[0].name == "t1"
    assert [p.split(":", 1)[0] for p in problems] == ["train.lrr", "train.batch_size", "grid", "grid.n_token"]
    assert compose_all(["grid.models=[{n_layer: 2"])[1][0].startswith("grid.models: cannot parse")
