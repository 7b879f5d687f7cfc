import pytest

from sweep.config import ModelSize, TaskConfig
from sweep.validate import ConfigError, validate


def problems(cfg):
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return info.value.problems


def test_default_and_every_shipped_option_validate(compose_cfg):
    from sweep.cli import group_options

    validate(compose_cfg())
    for group, options in group_options().items():
        for option in options:
            if (group, option) == ("data", "corpus"):  # needs the user's path: checked below
                continue
            validate(compose_cfg(f"{group}={option}"))
    assert "data.corpus.path" in problems(compose_cfg("data=corpus"))[0]
    validate(compose_cfg("+experiment=lr_half"))


@pytest.mark.parametrize("grid, suite, min_span",
                         [("emergence", "emergence", 1000), ("emergence_cpu", "emergence_small", 100)])
def test_emergence_grids_pick_their_tasks_and_span_orders_of_magnitude(compose_cfg, grid, suite, min_span):
    from sweep.grid import expand
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
    (lambda c: setattr(c.grid, "models", [ModelSize(n_params=-5.0)]), "grid.models[0].n_params"),
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=2)]), "grid.models[0]"),
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=2, d_model=64, n_params=1e5)]), "grid.models[0]"),
    # head dimension 40 / 8 = 5 is odd: RoPE needs it even
    (lambda c: setattr(c.grid, "models", [ModelSize(n_layer=1, d_model=40, n_head=8)]), "grid.models[0]"),
    (lambda c: setattr(c.grid, "n_tokens", []), "grid.n_tokens"),
    (lambda c: setattr(c.grid, "tokens_per_param", [-1.0]), "grid.tokens_per_param[0]"),
    (lambda c: setattr(c.grid, "seeds", []), "grid.seeds"),
    (lambda c: setattr(c.train, "lr", -1.0), "train.lr"),
    (lambda c: setattr(c.train, "warmup_fraction", 1.5), "train.warmup_fraction"),
    (lambda c: setattr(c.tasks.suite[1], "args", {"digits": 0}), "tasks.suite[1]"),
    (lambda c: setattr(c.tasks.suite[1], "args", {"digits": 2, "base": 7}), "tasks.suite[1]"),
    (lambda c: setattr(c.data, "heldout_fraction", 0.0), "data.heldout_fraction"),
    # device=cuda with GPU shares left to auto is checked against the cluster (sweep.cluster.check_resources)
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
])
def test_each_bad_value_names_its_key(compose_cfg, mutate, key):
    cfg = compose_cfg("grid=tiny")
    mutate(cfg)
    found = problems(cfg)
    assert any(p.startswith(key) for p in found), found


def test_a_task_with_too_few_heldout_problems_gets_a_warning_not_an_error(compose_cfg):
    from sweep.validate import advisories

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
