"""Parquet schemas of every table, declared once. The schema version travels in the file metadata.

Tables are long format, one row per observation (DESIGN.md): curves, evals, samples, runs.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

TABLE_SCHEMA_VERSION = "7"  # 3: runs gain how each run executed (micro-batch, compile, workers, share)
# 4: runs gain WSD branches: FLOPs spent by the run itself, schedule, role, trunk and branch step
# 5: evals gain each metric's natural range and whether it is a log-likelihood (metric_min, metric_max,
#    metric_log_likelihood), so the analysis reads them instead of looking the metric up by name
# 6: runs gain the precision each run trained in (bf16 | fp32: train.precision=auto depends on the device)
# 7: runs gain the recipe that chose each run's batch and lr (deepseek | calibrated | calibration | fixed ...)

_META = {b"schema_version": TABLE_SCHEMA_VERSION.encode()}

CURVES = pa.schema([
    ("run_id", pa.string()),
    ("step", pa.int64()),
    ("tokens", pa.int64()),
    ("flops", pa.float64()),
    ("train_loss", pa.float64()),
    ("val_loss", pa.float64()),
    ("lr", pa.float64()),
    ("tok_per_s", pa.float64()),
], metadata=_META)

EVALS = pa.schema([
    ("run_id", pa.string()),
    ("seed", pa.int64()),
    ("n_params", pa.int64()),
    ("n_nonembed_params", pa.int64()),
    ("n_tokens", pa.int64()),
    ("flops", pa.float64()),
    ("task", pa.string()),
    ("metric", pa.string()),
    ("metric_kind", pa.string()),
    ("higher_is_better", pa.bool_()),
    ("metric_min", pa.float64()),  # the metric's natural range; null: unbounded on that side
    ("metric_max", pa.float64()),
    ("metric_log_likelihood", pa.bool_()),  # a log-probability or loss in nats: never floored at chance
    ("value", pa.float64()),
    ("n_samples", pa.int64()),
    ("chance", pa.float64()),
    ("answer_tokens", pa.float64()),
], metadata=_META)

SAMPLES = pa.schema([
    ("run_id", pa.string()),
    ("task", pa.string()),
    ("sample_id", pa.int64()),
    ("prompt", pa.string()),
    ("target", pa.string()),
    ("answer", pa.string()),
    ("prediction", pa.string()),
    ("n_target_tokens", pa.int64()),
    ("correct", pa.bool_()),
    ("token_correct", pa.float64()),
    ("target_logprob", pa.float64()),
    ("target_logprob_per_token", pa.float64()),
    ("token_brier", pa.float64()),
    ("edit_similarity", pa.float64()),
    ("relative_error", pa.float64()),
    ("mc_correct", pa.bool_()),
    ("mc_brier", pa.float64()),
], metadata=_META)

RUNS = pa.schema([
    ("run_id", pa.string()),
    ("label", pa.string()),
    ("status", pa.string()),
    ("seed", pa.int64()),
    ("n_layer", pa.int64()),
    ("d_model", pa.int64()),
    ("n_head", pa.int64()),
    ("seq_len", pa.int64()),
    ("n_params", pa.int64()),
    ("n_nonembed_params", pa.int64()),
    ("n_tokens_budget", pa.int64()),
    ("n_tokens", pa.int64()),
    ("flops", pa.float64()),
    ("flops_6nd", pa.float64()),
    # flops: what an independent run to n_tokens costs; flops_spent: what this run computed itself (a
    # WSD branch: its cooldown only, the rest is its trunk's). Sum flops_spent for the sweep's cost.
    ("flops_spent", pa.float64()),
    ("schedule", pa.string()),  # cosine | linear | wsd | "wsd-branch 1-sqrt <cooldown>/<steps>" ...
    ("role", pa.string()),  # independent | trunk | branch
    ("trunk_run_id", pa.string()),  # a branch's trunk (null otherwise)
    ("branch_step", pa.int64()),  # the trunk step a branch starts from
    ("cooldown_steps", pa.int64()),
    ("batch_size", pa.int64()),
    ("n_steps", pa.int64()),
    ("lr", pa.float64()),
    ("recipe", pa.string()),  # where batch_size and lr come from: deepseek | calibrated | calibration (a run of the
    # calibration grid) | fixed | "<x>, lr fixed"
    ("final_train_loss", pa.float64()),
    ("final_val_loss", pa.float64()),
    ("train_seconds", pa.float64()),
    ("eval_seconds", pa.float64()),
    ("wall_seconds", pa.float64()),
    ("tokens_per_second", pa.float64()),
    ("mfu", pa.float64()),
    ("startup_seconds", pa.float64()),  # entering the trainer to its first log point (compile included)
    ("micro_batch_size", pa.int64()),
    ("compiled", pa.bool_()),
    ("precision", pa.string()),  # what train.precision=auto became on the run's device: bf16 | fp32
    ("data_workers", pa.int64()),
    ("gpu_share", pa.float64()),
    ("device", pa.string()),
    ("gpu_type", pa.string()),
    ("attempts", pa.int64()),
    ("error", pa.string()),
], metadata=_META)


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> table with exactly `schema` (missing keys become nulls, extra keys are an error)."""
    names = set(schema.names)
    for row in rows:
        extra = set(row) - names
        if extra:
            raise KeyError(f"columns {sorted(extra)} are not in the schema ({schema.names})")
    return pa.Table.from_pylist([{k: row.get(k) for k in schema.names} for row in rows], schema=schema)
