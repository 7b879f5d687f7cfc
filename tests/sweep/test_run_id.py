"""Contract: which fields change run_id, and that the same config gives the same id anywhere."""

import dataclasses
import subprocess
import sys

import pytest

from sweep.grid import expand
from sweep.run_id import EXCLUDED, SCHEMA_VERSION, identity_fields, run_id


@pytest.fixture
def spec(compose_cfg):
    return expand(compose_cfg("grid=tiny"))[0]


def _leaves(d, prefix=""):
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _replace(spec, path, value):
    """A copy of spec with the dotted field `path` set to value."""
    head, *rest = path.split(".")
    if not rest:
        return dataclasses.replace(spec, **{head: value})
    return dataclasses.replace(spec, **{head: _replace(getattr(spec, head), ".".join(rest), value)})


def _perturb(value):
    if value is None:  # an optional execution setting left to its automatic choice
        return 1
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    raise TypeError(value)


def test_same_config_same_id_in_another_process(spec):
    code = ("from sweep.cli import compose; from sweep.grid import expand; from sweep.run_id import run_id;"
            "print(run_id(expand(compose(['grid=tiny']))[0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == run_id(spec)


def test_id_is_readable_and_path_safe(spec):
    rid = run_id(spec)
    assert rid.startswith("N") and f"-s{spec.seed}-" in rid
    assert all(c.isalnum() or c in ".-" for c in rid)


def test_every_result_field_changes_the_id(spec):
    """Each leaf of the spec that is not excluded changes the id when changed (tasks tested below)."""
    base = run_id(spec)
    checked = 0
    for path, value in _leaves(spec.to_dict()):
        if path in EXCLUDED or path == "tasks" or isinstance(value, (list, tuple, type(None))):
            continue
        changed = _replace(spec, path, _perturb(value))
        assert run_id(changed) != base, f"changing {path} did not change run_id"
        checked += 1
    assert checked >= 25  # model shape, every train plan field, data, seed, budget, n_eval


def test_excluded_fields_do_not_change_the_id(spec):
    base = run_id(spec)
    for path in EXCLUDED:
        value = dict(_leaves(spec.to_dict()))[path]
        assert run_id(_replace(spec, path, _perturb(value))) == base, path


def test_task_suite_changes_the_id(spec):
    task = spec.tasks[0]
    other = dataclasses.replace(task, args={**task.args, "language_seed": 99} if task.kind == "language"
                                else {"digits": 5})
    assert run_id(dataclasses.replace(spec, tasks=(other, *spec.tasks[1:]))) != run_id(spec)
    assert run_id(dataclasses.replace(spec, tasks=spec.tasks[1:])) != run_id(spec)


def test_paths_cluster_logger_do_not_change_ids(compose_cfg):
    ids = lambda *o: [run_id(s) for s in expand(compose_cfg("grid=tiny", *o))]
    base = ids()
    assert ids("results_dir=/elsewhere", "name=other") == base
    assert ids("cluster=ray", "cluster.cpus_per_run=8", "cluster.gpus_per_run=0.5") == base
    assert ids("logger=none") == base
    assert ids("train.compile=true", "train.checkpoint_every_seconds=5", "tasks.eval_batch_size=7") == base
    assert ids("train.weight_decay=0.2") != base


def test_schema_version_is_hashed(spec):
    assert identity_fields(spec)["schema_version"] == SCHEMA_VERSION
