"""Run identity: the one function that names a run by what determines its numbers.

run_id = readable slug + hash of the canonical JSON of the resolved RunSpec. Every field is hashed
unless it is listed in EXCLUDED (execution details that cannot change a result); paths, cluster,
logger and worker count are not in a RunSpec at all. SCHEMA_VERSION is part of the hash: bump it when
the meaning of a field or the training code changes results, and every run gets a new id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sweep.plan.spec import RunSpec
from sweep.train.flops import n_params

SCHEMA_VERSION = 5  # 2: LayerNorm (no bias), exact GELU; 3: task suite, tokenizer/corpus, evaluation metrics;
# 4: the validation loss on the same held-out rows for every run (train.val_sequences); 5: train.precision as
# the run trains it (fp32 | bf16, resolved at plan time by sweep.plan.device), never auto

# Dotted paths into RunSpec.to_dict() that do not change a run's numbers.
EXCLUDED: tuple[str, ...] = (
    "label",
    "eval_batch_size",
    "train.log_every_steps",
    "train.compile",
    "train.checkpoint_every_seconds",
    "train.micro_batch_size",  # gradient accumulation: the same gradient, another memory/speed trade
    "train.data_workers",
    "train.recipe",  # which rule chose the batch and lr: their values are hashed
    # Where the tokenizer and corpus live is not what they are: data_fingerprint hashes their contents.
    "data.tokenizer",
    "data.corpus.path",
    "data.corpus.cache_dir",
    # Where a WSD trunk keeps checkpoints for its branches, not what it computes: a budget added to (or
    # dropped from) a size's grid leaves its trunk's id, and so its finished branches' ids, unchanged. A
    # branch whose step the finished trunk never saved trains that stretch itself
    # (sweep.store.runs.BranchCheckpoints.trains_prefix).
    "branch_points",
)


# Fields added after SCHEMA_VERSION 3 that are hashed only when set: left at these values they are
# dropped, so every run that does not use them keeps the id it had before they existed. Set, they are
# hashed like every other field (a branch's id names its trunk and branch step).
UNSET_NOT_HASHED: dict[str, Any] = {
    "train.cooldown_steps": None,
    "train.cooldown_shape": None,
    "trunk_run_id": None,
    "branch_step": None,
}


def _drop(fields: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node = fields
    for key in parents:
        node = node[key]
    del node[leaf]


def _get(fields: dict[str, Any], path: str) -> Any:
    node = fields
    for key in path.split("."):
        node = node[key]
    return node


def identity_fields(spec: RunSpec) -> dict[str, Any]:
    """The hashed content: the spec as a dict, minus EXCLUDED and unset UNSET_NOT_HASHED fields, plus
    the schema version."""
    fields = spec.to_dict()
    for path in EXCLUDED:
        _drop(fields, path)
    for path, unset in UNSET_NOT_HASHED.items():
        value = _get(fields, path)
        if value == unset or (isinstance(value, tuple) and list(value) == unset):
            _drop(fields, path)
    fields["schema_version"] = SCHEMA_VERSION
    return fields


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def human_count(x: float) -> str:
    """123456 -> '123k', 1_840_000 -> '1.84M' (three significant digits)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def run_id(spec: RunSpec) -> str:
    digest = hashlib.sha256(canonical_json(identity_fields(spec)).encode()).hexdigest()[:10]
    return f"N{human_count(n_params(spec.model))}-D{human_count(spec.n_tokens_budget)}-s{spec.seed}-{digest}"
