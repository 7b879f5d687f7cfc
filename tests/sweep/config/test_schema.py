"""The schema holds every fixed set of names (a Literal per field), and they are the names the code implements."""

import dataclasses

import pytest

from sweep.config import schema
from sweep.config.schema import SweepConfig, allowed, choice_fields


def _sections():
    yield "", SweepConfig
    for f in dataclasses.fields(SweepConfig):
        if dataclasses.is_dataclass(f.default_factory):
            yield f.name, f.default_factory
    yield "data.corpus", schema.CorpusConfig


def test_every_field_with_a_fixed_set_of_names_holds_them():
    found = {f"{prefix}.{name}" for prefix, section in _sections() for name in choice_fields(section)}
    assert found == {"grid.branch_plan", "recipe.source", "model.positions", "train.schedule", "train.cooldown_shape",
                     "train.precision", "train.compile", "data.corpus.format", "data.corpus.dtype", "cluster.kind",
                     "cluster.device", "logger.kind", "logger.mode"}


def test_the_names_are_the_ones_the_code_implements():
    from sweep.plan.branches import BRANCH_PLANS
    from sweep.plan.recipe import SOURCES
    from sweep.store.tracking import DISABLED, OFFLINE, ONLINE
    from sweep.tasks.corpus import BIN_DTYPES, CORPUS_FORMATS
    from sweep.train.execution import DTYPES
    from sweep.train.schedule import COOLDOWN_SHAPES, SCHEDULES

    assert allowed(schema.TrainConfig, "schedule") == SCHEDULES
    assert allowed(schema.TrainConfig, "cooldown_shape") == COOLDOWN_SHAPES
    assert set(allowed(schema.TrainConfig, "precision")) == {"auto", *DTYPES}
    assert allowed(schema.GridConfig, "branch_plan") == BRANCH_PLANS
    assert allowed(schema.RecipeConfig, "source") == SOURCES
    assert allowed(schema.CorpusConfig, "format") == CORPUS_FORMATS
    assert allowed(schema.CorpusConfig, "dtype") == tuple(BIN_DTYPES)
    assert set(allowed(schema.LoggerConfig, "mode")) == {"auto", ONLINE, OFFLINE, DISABLED}


@pytest.mark.parametrize("key", ["train.schedule", "model.positions", "logger.mode", "cluster.device"])
def test_a_name_outside_the_set_is_refused_listing_the_schemas_names(compose_cfg, key):
    from sweep.config.validate import problems

    cfg = compose_cfg("grid=tiny")
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, "zigzag")
    names = allowed(type(getattr(cfg, section)), name)
    assert f"{key}: 'zigzag' is not one of {', '.join(names)}" in problems(cfg)
