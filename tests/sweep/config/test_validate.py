import pytest

from sweep.config.schema import ModelSize, TaskConfig
from sweep.config.validate import ConfigError, validate


def problems(cfg):
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return info.value.problems


def test_default_and_every_shipped_option_validate(compose_cfg, tmp_path):
    from sweep.cli import group_options

    validate(compose_cfg())
    for group, options in group_options().items():
        for option in options:
            if (group, option) == ("data", "corpus"):  # needs the user's path: checked below
                continue
            shared = (f"results_dir={tmp_path}",) if (group, option) == ("cluster", "ray") else ()  # never relative
            validate(compose_cfg(f"{group}={option}", *shared))
    assert "data.corpus.path" in problems(compose_cfg("data=corpus"))[0]
    validate(compose_cfg("+experiment=lr_half"))


@pytest.mark.parametrize("grid, suite, min_span",
                         [("emergence", "emergence", 1000), ("emergence_cpu", "emergence_small", 100)])
def test_emergence_grids_pick_their_tasks_and_span_orders_of_magnitude(compose_cfg, grid, suite, min_span):
    from sweep.plan.grid import expand
    from sweep.train.flops import n_params

    cfg = compose_cfg(f"grid={grid}")
    expected = compose_cfg(f"tasks={suite}").tasks
    assert cfg.tasks == expected and any(t.kind == "compositional" for t in cfg.tasks.suite)
    sizes = sorted({n_params(spec.model) for spec in expand(cfg)})
    assert sizes[-1] / sizes[0] >= min_span
    assert compose_cfg(f"grid={grid}", "tasks=default").tasks.suite[0].name == "language"  # still overridable


def test_all_problems_reported_at_once(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.grid.models = [ModelSize(n_layer=-1, d_model=64), ModelSize(n_layer=2, d_model=100, n_head=3)]
    cfg.grid.n_tokens = [0.0]
    cfg.tasks.suite = [TaskConfig(name="x", kind="telepathy")]
    cfg.train.schedule = "zigzag"
    found = problems(cfg)
    assert len(found) == 5
    assert any(p.startswith("grid.models[0].n_layer") for p in found)
    assert any(p.startswith("grid.models[1].n_head") and "does not divide d_model=100" in p for p in found)
    assert any(p.startswith("grid.n_tokens[0]") and "positive" in p for p in found)
    assert any(p.startswith("tasks.suite[0]") and "unknown task kind 'telepathy'" in p for p in found)
    assert any(p.startswith("train.schedule") for p in found)


@pytest.mark.parametrize("mutate, key", [
    (lambda c: setattr(c.grid.models[0], "d_model", -32), "grid.models[0].d_model"),
    (lambda c: setattr(c.grid, "models", [ModelSize(n_nonembed_params=-5.0)]), "grid.models[0].n_nonembed_params"),
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=2)]), "grid.models[0]"),
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=2, d_model=64, n_nonembed_params=1e5)]), "grid.models[0]"),
    # head dimension 40 / 8 = 5 is odd: RoPE needs it even
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=1, d_model=40, n_head=8)]), "grid.models[0]"),
    (lambda c: setattr(c.grid, "n_tokens", []), "grid.n_tokens"),
    (lambda c: setattr(c.grid, "tokens_per_param", [-1.0]), "grid.tokens_per_param[0]"),
    (lambda c: setattr(c.grid, "seeds", []), "grid.seeds"),
    (lambda c: setattr(c.train, "lr", -1.0), "train.lr"),
    (lambda c: setattr(c.train, "warmup_fraction", 1.5), "train.warmup_fraction"),
    (lambda c: setattr(c.train, "min_warmup_steps", -1), "train.min_warmup_steps"),
    (lambda c: setattr(c.tasks.suite[1], "args", {"digits": 0}), "tasks.suite[1]"),
    (lambda c: setattr(c.tasks.suite[1], "args", {"digits": 2, "base": 7}), "tasks.suite[1]"),
    (lambda c: setattr(c.data, "heldout_fraction", 0.0), "data.heldout_fraction"),
    # device=cuda with GPU shares left to auto is checked against the cluster (sweep.driver.cluster.check_resources)
    (lambda c: (setattr(c.cluster, "device", "cuda"), setattr(c.cluster, "gpus_per_run", 0.0)), "cluster.device"),
    (lambda c: setattr(c.cluster, "cpus_per_run", 0.0), "cluster.cpus_per_run"),
    (lambda c: setattr(c.cluster, "gpus_per_run", -0.5), "cluster.gpus_per_run"),
    (lambda c: setattr(c.cluster, "gpus_per_run", 1.5), "cluster.gpus_per_run"),
    (lambda c: setattr(c.cluster, "max_runs_per_gpu", 6), "cluster.max_runs_per_gpu"),
    (lambda c: setattr(c.cluster, "max_runs_per_gpu", 0), "cluster.max_runs_per_gpu"),
    (lambda c: setattr(c.cluster, "full_gpu_flops_per_step", 0.0), "cluster.full_gpu_flops_per_step"),
    (lambda c: (setattr(c.cluster, "num_cpus", 2), setattr(c.cluster, "cpus_per_run", 4.0)), "cluster.cpus_per_run"),
    (lambda c: (setattr(c.cluster, "num_gpus", 1), setattr(c.cluster, "gpus_per_run", 2.0)), "cluster.gpus_per_run"),
    (lambda c: (setattr(c.cluster, "num_gpus", 0), setattr(c.cluster, "device", "cuda")), "cluster.device"),
    (lambda c: setattr(c, "name", "a/b"), "name"),
    (lambda c: setattr(c.recipe, "max_share", 0.0), "recipe.max_share"),
    (lambda c: setattr(c.recipe, "max_share", 1.5), "recipe.max_share"),
    (lambda c: setattr(c.recipe, "sizes", 0), "recipe.sizes"),
])
def test_each_bad_value_names_its_key(compose_cfg, mutate, key):
    cfg = compose_cfg("grid=tiny")
    mutate(cfg)
    found = problems(cfg)
    assert any(p.startswith(key) for p in found), found


def test_a_task_with_too_few_heldout_problems_gets_a_warning_not_an_error(compose_cfg):
    from sweep.config.validate import advisories

    cfg = compose_cfg("tasks=arithmetic")  # add_1d: 100 problems, 10% held out
    validate(cfg)
    notes = advisories(cfg)
    assert len(notes) == 1 and notes[0].startswith("tasks.suite[0] (add_1d): only 10 held-out problems")
    assert advisories(compose_cfg()) == []  # the default suite evaluates every task on enough problems


def test_auto_resources_and_their_limits_validate(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    assert cfg.cluster.gpus_per_run is None and cfg.cluster.cpus_per_run is None  # auto by default
    for n in (1, 2, 4, 8, 16):
        cfg.cluster.max_runs_per_gpu = n
        validate(cfg)
    validate(compose_cfg("grid=tiny", "cluster.device=cuda"))  # auto shares: checked against the cluster's GPUs
    validate(compose_cfg("grid=tiny", "cluster.num_gpus=1", "cluster.gpus_per_run=1", "cluster.num_cpus=2",
                         "cluster.cpus_per_run=2"))


def _float_fields(node, prefix=""):
    """Dotted keys of every float field of the config tree (list items included), with a setter."""
    import dataclasses

    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _float_fields(value, f"{key}.")
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                yield from _float_fields(item, f"{key}[{i}].")
        elif isinstance(value, list) and value and isinstance(value[0], float):
            yield f"{key}[0]", (lambda v, n=node, name=f.name: getattr(n, name).__setitem__(0, v))
        elif isinstance(value, float) or "float" in str(f.type):
            yield key, (lambda v, n=node, name=f.name: setattr(n, name, v))


def _with_every_float():
    """A valid config with a float in every float field (ratios, a size by parameter count, shares given)."""
    from sweep.cli import compose

    return compose(["grid=tiny", "grid.tokens_per_param=[20.0]", "grid.models=[{n_nonembed_params: 2e4}]"])


def _float_keys():
    return [key for key, _ in _float_fields(_with_every_float())]


@pytest.fixture(scope="module")
def every_float():
    return _with_every_float()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", _float_keys())
def test_every_float_of_the_config_must_be_finite(every_float, key, bad):
    """NaN passes `x < 0` checks (it fails every comparison): wherever a float is, NaN and infinity are
    refused, once, naming the key."""
    import copy

    cfg = copy.deepcopy(every_float)
    setter = dict(_float_fields(cfg))[key]
    setter(bad)
    found = problems(cfg)
    assert [p for p in found if p.startswith(f"{key}:")] == [f"{key}: must be a finite number, got {bad}"], found


def test_the_float_walk_covers_the_schema():
    keys = _float_keys()
    for key in ("train.lr", "train.weight_decay", "train.grad_clip", "train.beta1", "grid.n_tokens[0]",
                "grid.tokens_per_param[0]", "grid.models[0].n_nonembed_params", "model.aspect_ratio",
                "data.heldout_fraction",
                "data.corpus.weight", "tasks.suite[0].train_weight", "cluster.full_gpu_flops_per_step",
                "cluster.gpus_per_run", "cluster.cpus_per_run", "train.checkpoint_every_seconds"):
        assert key in keys
    assert len(keys) >= 20


@pytest.mark.parametrize("key, value, suggestion", [
    ("train.schedule", "cosin", "cosine"), ("train.schedule", "WSD", "wsd"), ("train.precision", "bf61", "bf16"),
    ("train.precision", "float32", "fp32"), ("model.positions", "rotary", "rope"), ("cluster.kind", "rey", "ray"),
    ("cluster.device", "gpu", "cuda"), ("logger.kind", "wandbb", "wandb"), ("logger.mode", "ofline", "offline"),
    ("data.corpus.format", "parket", "parquet"), ("data.corpus.dtype", "unit16", "uint16"),
    ("train.compile", "ture", "true"),
])
def test_a_misspelt_name_gets_the_nearest_valid_one(compose_cfg, key, value, suggestion):
    cfg = compose_cfg("grid=tiny")
    section, _, name = key.rpartition(".")
    node = cfg
    for part in section.split("."):
        node = getattr(node, part)
    setattr(node, name, value)
    found = [p for p in problems(cfg) if p.startswith(f"{key}:")]
    assert len(found) == 1 and found[0].endswith(f"did you mean {suggestion}?"), found


def test_no_suggestion_for_a_name_like_none_of_them(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.train.schedule = "zigzag"
    assert problems(cfg) == ["train.schedule: 'zigzag' is not one of cosine, linear, wsd"]


@pytest.mark.parametrize("models, message", [
    ([ModelSize(n_nonembed_params=1e30)], "beyond what this trainer can hold"),
    ([ModelSize(n_layer=10**6, d_model=10**6)], "beyond what this trainer can hold"),
])
def test_sizes_no_model_can_have_are_refused(compose_cfg, models, message):
    cfg = compose_cfg("grid=tiny")
    cfg.grid.models = models
    found = problems(cfg)
    assert found[0].startswith("grid.models[0]") and message in found[0], found


def test_a_task_with_arguments_of_the_wrong_type_or_name_is_a_problem_not_a_crash(compose_cfg):
    cfg = compose_cfg("grid=tiny")
    cfg.tasks.suite = [TaskConfig(name="a", kind="addition", args={"digits": "two"}),
                       TaskConfig(name="b", kind="addition", args={"digit": 2}),
                       TaskConfig(name="c", kind="additon", args={"digits": 2})]
    found = problems(cfg)
    assert found[0] == "tasks.suite[0] (a): task kind 'addition': digits must be an int, got 'two'"
    assert found[1].startswith("tasks.suite[1] (b):") and found[1].endswith("did you mean digits?")
    assert found[2].startswith("tasks.suite[2] (c): unknown task kind 'additon'; did you mean addition?")


def test_wsd_branch_settings_are_checked(compose_cfg):
    found = problems(compose_cfg("grid=tiny", "grid.branches=true", "train.cooldown_fraction=1.5",
                                 "train.cooldown_shape=1-sqr"))
    assert any(p.startswith("grid.branches: needs train.schedule=wsd") for p in found)
    assert any(p.startswith("train.cooldown_fraction: must be in (0, 1)") for p in found)
    assert any(p.startswith("train.cooldown_shape") and "did you mean 1-sqrt?" in p for p in found)
    validate(compose_cfg("grid=tiny", "grid.branches=true", "train.schedule=wsd"))


def test_the_old_size_key_n_params_is_refused_naming_the_new_one():
    """grid.models[].n_params meant non-embedding parameters while the tables' n_params counts all of them:
    the key is n_nonembed_params now, and a config still using the old one stops before anything launches."""
    from sweep.config.keys import unknown_key_problem, unknown_keys
    from sweep.config.schema import SweepConfig

    found = unknown_keys({"grid": {"models": [{"n_layer": 2, "d_model": 64}, {"n_params": 1e6}]}}, SweepConfig)
    assert len(found) == 1 and found[0].startswith("grid.models[1].n_params: not a config key of grid.models[1]")
    assert "renamed" in found[0] and found[0].endswith("did you mean grid.models[1].n_nonembed_params?")
    assert unknown_key_problem("grid.models[0].n_params", SweepConfig).endswith(
        "did you mean grid.models[0].n_nonembed_params?")
    assert "renamed" not in " ".join(unknown_keys({"train": {"n_params": 1}}, SweepConfig))  # no such key there
