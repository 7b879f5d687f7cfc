"""Contract: the four Parquet tables, column by column, written out here (not compared with themselves).

Readers (the analysis, users' notebooks, other tools) depend on these names and types. A failure here
means a table changed: if that was meant, bump TABLE_SCHEMA_VERSION in sweep/store/schemas.py and update the
column list below in the same commit.
"""

import pyarrow as pa
import pytest

from sweep.store.schemas import CURVES, EVALS, RUNS, SAMPLES, TABLE_SCHEMA_VERSION

S, INT, F, B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

EXPECTED = {
    "curves": (CURVES, [
        ("run_id", S), ("step", INT), ("tokens", INT), ("flops", F), ("train_loss", F), ("val_loss", F), ("lr", F),
        ("tok_per_s", F),
    ]),
    "evals": (EVALS, [
        ("run_id", S), ("seed", INT), ("n_params", INT), ("n_nonembed_params", INT), ("n_tokens", INT), ("flops", F),
        ("task", S), ("metric", S), ("metric_kind", S), ("higher_is_better", B), ("metric_min", F), ("metric_max", F),
        ("metric_log_likelihood", B), ("value", F), ("n_samples", INT),
        ("chance", F), ("answer_tokens", F),
    ]),
    "samples": (SAMPLES, [
        ("run_id", S), ("task", S), ("sample_id", INT), ("prompt", S), ("target", S), ("answer", S),
        ("prediction", S), ("n_target_tokens", INT), ("correct", B), ("token_correct", F), ("target_logprob", F),
        ("target_logprob_per_token", F), ("token_brier", F), ("edit_similarity", F), ("relative_error", F),
        ("mc_correct", B), ("mc_brier", F),
    ]),
    "runs": (RUNS, [
        ("run_id", S), ("label", S), ("status", S), ("seed", INT), ("n_layer", INT), ("d_model", INT), ("n_head", INT),
        ("seq_len", INT), ("n_params", INT), ("n_nonembed_params", INT), ("n_tokens_budget", INT), ("n_tokens", INT),
        ("flops", F), ("flops_6nd", F), ("flops_spent", F), ("schedule", S), ("role", S), ("trunk_run_id", S),
        ("branch_step", INT), ("cooldown_steps", INT), ("batch_size", INT), ("n_steps", INT), ("lr", F),
        ("recipe", S), ("final_train_loss", F),
        ("final_val_loss", F), ("train_seconds", F), ("eval_seconds", F), ("wall_seconds", F),
        ("tokens_per_second", F), ("mfu", F), ("startup_seconds", F), ("micro_batch_size", INT), ("compiled", B),
        ("precision", S),
        ("data_workers", INT), ("gpu_share", F), ("device", S), ("gpu_type", S), ("attempts", INT), ("error", S),
    ]),
}


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_table_columns_and_types_are_pinned(table):
    schema, columns = EXPECTED[table]
    assert [(f.name, f.type) for f in schema] == columns
    assert all(f.nullable for f in schema)  # a run that failed writes what it knows, nulls for the rest


def test_schema_version_travels_in_the_file_metadata():
    assert TABLE_SCHEMA_VERSION == "7"
    for schema, _ in EXPECTED.values():
        assert schema.metadata == {b"schema_version": b"7"}
