"""Contract: which fields change run_id, and that the same config gives the same id anywhere."""

import dataclasses
import subprocess
import sys

import pytest

from sweep.plan.grid import expand
from sweep.plan.run_id import EXCLUDED, SCHEMA_VERSION, identity_fields, run_id


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
    if isinstance(value, tuple):  # a trunk's branch steps
        return (*value, 1)
    raise TypeError(value)


def test_same_config_same_id_in_another_process(spec):
    code = ("from sweep.cli import compose; from sweep.plan.grid import expand; from sweep.plan.run_id import run_id;"
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
    assert ids("cluster=ray", "cluster.cpus_per_run=8", "cluster.max_retries=7") == base
    assert ids("logger=none") == base
    assert ids("train.compile=true", "train.checkpoint_every_seconds=5", "tasks.eval_batch_size=7") == base
    assert ids("train.weight_decay=0.2") != base


def test_schema_version_is_hashed(spec):
    assert identity_fields(spec)["schema_version"] == SCHEMA_VERSION


# ---- golden values ----------------------------------------------------------------------------------------
# These ids name directories of finished runs in every results directory out there: a run whose id changes
# is retrained by the next `make sweep`. If one of these tests fails, either the change was not meant to
# re-id runs (a refactor of RunSpec.to_dict, identity_fields or canonical_json, a changed default: undo it),
# or it changes what runs compute, and then SCHEMA_VERSION is bumped deliberately in sweep/plan/run_id.py and
# the new ids are pasted here in the same commit (say so in its message: every sweep retrains).

def _literal_spec():
    """A spec written out field by field: independent of conf/ and of the derivations in sweep.plan.grid."""
    from sweep.config.schema import DataConfig, TaskConfig
    from sweep.plan.spec import RunSpec, TrainPlan
    from sweep.train.shape import ModelShape

    return RunSpec(
        model=ModelShape(n_layer=2, d_model=64, n_head=2, vocab_size=256, seq_len=64, mlp_ratio=4, positions="rope",
                         tie_embeddings=True),
        train=TrainPlan(batch_size=8, n_steps=100, n_tokens=51200, lr=1e-3, schedule="cosine", warmup_steps=5,
                        final_lr_fraction=0.1, weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0,
                        precision="bf16", val_every_steps=25, val_sequences=64, diverge_loss=12.0, log_every_steps=10,
                        compile="auto", checkpoint_every_seconds=120.0),
        data=DataConfig(), tasks=(TaskConfig("add_2d", "addition", {"digits": 2}),), n_eval=64, seed=0,
        n_tokens_budget=50000, label="literal", eval_batch_size=64, data_fingerprint="tokenizer=byte;corpus=none")


def test_golden_id_of_a_literal_spec():
    """Pins the hashing itself: to_dict, the exclusions, canonical JSON, SCHEMA_VERSION, the slug."""
    assert SCHEMA_VERSION == 5
    assert run_id(_literal_spec()) == "N115k-D50k-s0-fde3b2bbfc"


def test_golden_ids_of_the_shipped_grids(compose_cfg):
    """Pins conf/ defaults and the derivations of sweep.plan.grid (batch, LR, steps, warm-up) as well, with the
    published recipe (the default grid's own runs take the recipe its calibration fits). The precision is given:
    auto resolves by the machine (test_auto_precision_is_hashed_as_the_precision_it_becomes)."""
    assert sorted(run_id(s) for s in expand(compose_cfg("grid=tiny", "train.precision=bf16"))) == [
        "N20.6k-D20k-s0-a824bcf4dd", "N32.9k-D20k-s0-2bbbc44b97"]
    assert sorted(run_id(s) for s in expand(compose_cfg("grid=tiny", "train.precision=fp32"))) == [
        "N20.6k-D20k-s0-473e1089da", "N32.9k-D20k-s0-db0ec92426"]
    default = {(s.label, s.n_tokens_budget, s.seed): run_id(s)
               for s in expand(compose_cfg("grid=default", "train.precision=bf16"))}
    assert len(default) == 63
    assert default[("s7", 1_085_000, 0)] == "N783k-D1.08M-s0-470c4b1140"
    assert default[("s1", 380_000, 0)] == "N32.9k-D380k-s0-fb9b50729e"


@pytest.mark.parametrize("overrides, device", [
    (("cluster.device=cuda",), "cuda"), (("cluster.gpus_per_run=0.5",), "cuda"), (("cluster.num_gpus=2",), "cuda"),
    (("cluster.device=cpu",), "cpu"), (("cluster.gpus_per_run=0",), "cpu"), (("cluster.num_gpus=0",), "cpu"),
    (("cluster=ray", "cluster.device=cpu"), "cpu"),
])
def test_auto_precision_is_hashed_as_the_precision_it_becomes(compose_cfg, overrides, device):
    """train.precision=auto is resolved at plan time for the device the sweep's runs train on (bf16 on a GPU,
    on a CPU by its AMX): an auto run and a run given that precision are one run, a CPU fp32 run and a GPU
    bf16 run of one point are two."""
    from sweep.plan.device import sweep_device
    from sweep.train.execution import resolve_precision

    cfg = compose_cfg("grid=tiny", *overrides)
    assert sweep_device(cfg.cluster) == device
    became = resolve_precision("auto", device)
    assert became == "bf16" or device == "cpu"
    specs = expand(cfg)
    assert {s.train.precision for s in specs} == {became}
    given = expand(compose_cfg("grid=tiny", *overrides, f"train.precision={became}"))
    assert [run_id(s) for s in specs] == [run_id(s) for s in given]
    other = "fp32" if became == "bf16" else "bf16"
    assert not {run_id(s) for s in specs} & {run_id(s) for s in expand(compose_cfg("grid=tiny",
                                                                                  f"train.precision={other}"))}


def test_sizes_given_by_parameter_count_keep_their_ids(compose_cfg):
    """grid=chinchilla gives its sizes as parameter-count targets: the target only picks a shape, the shape
    is hashed, so these ids change only with what the runs compute. A GPU grid: planned for a GPU (bf16)."""
    assert sorted(run_id(s) for s in expand(compose_cfg("grid=chinchilla", "cluster.device=cuda"))) == [
        "N1.02M-D10.2M-s0-9ed6b5e270", "N1.02M-D20.3M-s0-1f57a5e866", "N1.02M-D40.7M-s0-b292594ad3",
        "N1.02M-D5.09M-s0-04d2c22da1", "N10M-D100M-s0-2e50944658", "N10M-D201M-s0-9bcca124cb",
        "N10M-D401M-s0-ecb3935a5a", "N10M-D50.2M-s0-9ecfb8a3f3", "N3.15M-D126M-s0-121a58b3b9",
        "N3.15M-D15.7M-s0-be33293dc5", "N3.15M-D31.5M-s0-fff04b4afd", "N3.15M-D63M-s0-16b46d4c06",
        "N31.4M-D1.26B-s0-657ed3d032", "N31.4M-D157M-s0-fb87000d2c", "N31.4M-D314M-s0-7a02e6c20b",
        "N31.4M-D629M-s0-2f808843f8", "N98.5M-D1.97B-s0-b000fae80e", "N98.5M-D3.94B-s0-0dbd1ab63f",
        "N98.5M-D492M-s0-554a6db979", "N98.5M-D985M-s0-69de320c97",
    ]


def test_which_fields_make_the_id():
    """The hashed fields, written out: a new RunSpec field is hashed by default (so it appears here and this
    test fails until it is listed, or excluded in EXCLUDED with a reason); an exclusion is a decision."""
    leaves = sorted(path for path, _ in _leaves(identity_fields(_literal_spec())))
    assert leaves == [
        "data.corpus.dtype", "data.corpus.format", "data.corpus.text_column", "data.corpus.weight",
        "data.heldout_fraction", "data.seed", "data_fingerprint",
        "model.d_model", "model.mlp_ratio", "model.n_head", "model.n_layer", "model.positions", "model.seq_len",
        "model.tie_embeddings", "model.vocab_size",
        "n_eval", "n_tokens_budget", "schema_version", "seed", "tasks",
        "train.batch_size", "train.beta1", "train.beta2", "train.diverge_loss", "train.final_lr_fraction",
        "train.grad_clip", "train.lr", "train.n_steps", "train.n_tokens", "train.precision", "train.schedule",
        "train.val_every_steps", "train.val_sequences", "train.warmup_steps", "train.weight_decay",
    ]
    assert EXCLUDED == ("label", "eval_batch_size", "train.log_every_steps", "train.compile",
                        "train.checkpoint_every_seconds", "train.micro_batch_size", "train.data_workers",
                        "train.recipe", "data.tokenizer", "data.corpus.path", "data.corpus.cache_dir", "branch_points")
    base = run_id(_literal_spec())
    assert run_id(_replace(_literal_spec(), "train.lr", 2e-3)) != base
    assert run_id(_replace(_literal_spec(), "label", "renamed")) == base


def test_branch_fields_are_hashed_only_when_set():
    from sweep.plan.run_id import UNSET_NOT_HASHED

    base = _literal_spec()
    # A trunk's branch points say where it keeps checkpoints, not what it computes: never hashed, so a budget
    # added to its size leaves the trunk's id (and its branches') as they were.
    assert run_id(dataclasses.replace(base, branch_points=(40, 80))) == run_id(base)
    changed = [
        dataclasses.replace(base, trunk_run_id="N115k-D100k-s0-0123456789", branch_step=40),
        _replace(base, "train.cooldown_steps", 20),
    ]
    assert len({run_id(base), *map(run_id, changed)}) == 3
    other_trunk = dataclasses.replace(changed[1], trunk_run_id="N115k-D100k-s0-9876543210")
    assert run_id(other_trunk) != run_id(changed[1])
    assert run_id(dataclasses.replace(changed[1], branch_step=41)) != run_id(changed[1])
    assert set(UNSET_NOT_HASHED) == {"train.cooldown_steps", "train.cooldown_shape", "trunk_run_id", "branch_step"}
