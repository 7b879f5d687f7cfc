import pytest

from sweep.config import ModelSize, TaskConfig
from sweep.validate import ConfigError, validate


def problems(cfg):
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return info.value.problems


def test_default_and_every_shipped_grid_validate(compose_cfg):
    for overrides in ([], ["grid=tiny"], ["grid=chinchilla"], ["tasks=arithmetic"], ["cluster=ray"],
                      ["logger=none"], ["+experiment=lr_half"]):
        validate(compose_cfg(*overrides))


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
    (lambda c: setattr(c.cluster, "device", "cuda"), "cluster.device"),
    (lambda c: setattr(c.cluster, "cpus_per_run", 0.0), "cluster.cpus_per_run"),
    (lambda c: setattr(c, "name", "a/b"), "name"),
])
def test_each_bad_value_names_its_key(compose_cfg, mutate, key):
    cfg = compose_cfg("grid=tiny")
    mutate(cfg)
    found = problems(cfg)
    assert any(p.startswith(key) for p in found), found
