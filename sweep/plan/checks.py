"""What only the plan tells of a config: whether a shape reaches each size's target count, and whether the expanded
runs can train (micro-batches and ranks that split their batches, cooldowns clear of warm-up, no two budgets of a
size making one run). Each problem names the key to change, as sweep.config.validate's do."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sweep.config.schema import SweepConfig
from sweep.config.validate import MAX_PARAMS, ConfigError
from sweep.plan.branches import same_run_budgets
from sweep.plan.grid import shape_for_params
from sweep.train.flops import n_nonembed_params

# A size given as a parameter count must come out of shape_for_params within this factor: below the
# smallest shape (one layer of one head) or a family that cannot reach it, say so instead of training
# another size.
PARAMS_TOLERANCE = 2.0


def _family_ok(model) -> bool:
    """Whether the model family's own keys allow deriving shapes (else sweep.config.validate names them)."""
    return (model.head_dim >= 1 and model.mlp_ratio >= 1 and math.isfinite(model.aspect_ratio)
            and model.aspect_ratio > 0)


def shape_problems(cfg: SweepConfig) -> list[str]:
    """A size given as n_nonembed_params must be within PARAMS_TOLERANCE of the shape derived for it. Sizes whose
    values sweep.config.validate refuses (not positive, beyond MAX_PARAMS, not finite, given both ways) are
    skipped: they have their own problem."""
    model, out = cfg.model, []
    if not _family_ok(model):
        return out
    for i, size in enumerate(cfg.grid.models):
        target = size.n_nonembed_params
        if (target is None or size.n_layer is not None or size.d_model is not None or not math.isfinite(target)
                or not 0 < target <= MAX_PARAMS):
            continue
        shape = shape_for_params(target, model)
        got = n_nonembed_params(shape)
        if not 1 / PARAMS_TOLERANCE <= got / target <= PARAMS_TOLERANCE:
            out.append(f"grid.models[{i}].n_nonembed_params: no shape of this model family has about {target:g} "
                       f"non-embedding parameters; the nearest, {shape.describe()}, has {got:,} (the smallest is one "
                       f"layer of d_model=model.head_dim={model.head_dim}); give a larger n_nonembed_params or an "
                       "explicit n_layer/d_model")
    return out


def validate_runs(cfg: SweepConfig, specs: Sequence) -> None:
    """What only the expanded runs (sweep.plan.grid.expand) tell: raise ConfigError naming the key.

    Two budgets of a size must not make the same run (same_run_budgets); a fixed train.micro_batch_size
    must divide every run's batch (derived per run unless train.batch_size is given), and a data-parallel
    run's batch must split over its GPUs.
    """
    problems: list[str] = same_run_budgets(specs)
    micro = cfg.train.micro_batch_size
    if micro is not None:
        bad = sorted({s.train.batch_size for s in specs if s.train.batch_size % micro})
        if bad:
            given = "given" if cfg.train.batch_size else "derived per run"
            problems.append(f"train.micro_batch_size: {micro} does not divide the batch of every run (batches "
                            f"{given}: {', '.join(map(str, bad))} sequences); use a power of two no larger than "
                            f"{min(bad)}, or null to choose it per run")
    ranks = cfg.cluster.gpus_per_run
    if ranks is not None and ranks > 1 and ranks == int(ranks):
        bad = sorted({s.train.batch_size for s in specs if s.train.batch_size % int(ranks)})
        if bad:
            problems.append(f"cluster.gpus_per_run: {int(ranks)} data-parallel ranks cannot split batches of "
                            f"{', '.join(map(str, bad))} sequences; set train.batch_size to a multiple of {int(ranks)}")
    short = sorted({(s.label, s.n_tokens_budget) for s in specs
                    if s.train.cooldown_steps is not None and s.train.stable_steps < s.train.warmup_steps})
    if short:
        points = ", ".join(f"{label} at {budget:g} tokens" for label, budget in short)
        problems.append(f"train.cooldown_fraction: warm-up and cooldown overlap in {points} (too few steps); "
                        "lower train.cooldown_fraction or train.warmup_fraction, or raise the budget"
                        + (" (with grid.branches the warm-up is the shared plan's: grid.branch_plan=smallest "
                           "shortens it)" if cfg.grid.branches and cfg.grid.branch_plan == "largest" else ""))
    if problems:
        raise ConfigError(problems)
