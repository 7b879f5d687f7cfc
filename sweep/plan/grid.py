"""Grid expansion: a validated SweepConfig -> the list of RunSpecs, every derived number decided here.

One place for each derivation, each with its source:
  * model shape from a target parameter count (shape_for_params),
  * steps and tokens from a budget (plan_training),
  * tokens per step and peak learning rate from the run's compute (sweep.plan.recipe: the published laws or the
    sweep's own calibration, sweep.plan.calibration),
  * warm-up length and validation cadence (plan_training).
"""

from __future__ import annotations

import dataclasses
import math

from sweep.config.schema import DataConfig, ModelConfig, ModelSize, SweepConfig, TrainConfig
from sweep.plan.device import with_precision
from sweep.plan.recipe import DEEPSEEK, Recipe, batch_and_lr
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec, TrainPlan
from sweep.tasks.corpus import corpus_files, fingerprint
from sweep.tasks.tokenizer import VOCAB_SIZE, Tokenizer, load_tokenizer
from sweep.train.flops import n_nonembed_params, n_params, train_flops
from sweep.train.schedule import cooldown_steps
from sweep.train.shape import ModelShape

# grid.branches with train.cooldown_fraction unset: a 20% cooldown (Hägele et al. 2024, sec. 4: a
# cooldown of 20% of the steps matches, and longer ones beat, a cosine run of the same length).
BRANCH_COOLDOWN_FRACTION = 0.2


def _shape(model: ModelConfig, n_layer: int, d_model: int, n_head: int, vocab_size: int = VOCAB_SIZE) -> ModelShape:
    return ModelShape(n_layer=n_layer, d_model=d_model, n_head=n_head, vocab_size=vocab_size,
                      seq_len=model.seq_len, mlp_ratio=model.mlp_ratio, positions=model.positions,
                      tie_embeddings=model.tie_embeddings)


def shape_for_params(target: float, model: ModelConfig, max_layers: int = 96,
                     vocab_size: int = VOCAB_SIZE) -> ModelShape:
    """The shape whose non-embedding count is nearest `target`, trading count for aspect ratio.

    d_model runs over multiples of head_dim, n_layer over 1..max_layers. Among shapes within 5% of
    the target, the one whose d_model / n_layer is closest (in log) to model.aspect_ratio wins
    (Kaplan et al. 2020, fig. 5: loss is flat over a wide band of aspect ratios, so count matters
    far more than shape); if none is that close, the nearest count wins.
    """
    best, best_key = None, None
    for n_layer in range(1, max_layers + 1):
        # 12 L d^2 dominates the count: start near the d that hits the target and scan around it.
        d_guess = math.sqrt(max(target, 1.0) / (2 * (2 + model.mlp_ratio) * n_layer))
        k_guess = max(1, round(d_guess / model.head_dim))
        for k in range(max(1, k_guess - 2), k_guess + 3):
            d_model = k * model.head_dim
            shape = _shape(model, n_layer, d_model, k, vocab_size)
            count_error = abs(math.log(n_nonembed_params(shape) / target))
            aspect_error = abs(math.log((d_model / n_layer) / model.aspect_ratio))
            key = (count_error > math.log(1.05), aspect_error if count_error <= math.log(1.05) else count_error)
            if best_key is None or key < best_key:
                best, best_key = shape, key
    return best


def shape_for_size(size: ModelSize, model: ModelConfig, vocab_size: int = VOCAB_SIZE) -> ModelShape:
    if size.n_layer is not None and size.d_model is not None:
        n_head = size.n_head if size.n_head is not None else size.d_model // model.head_dim
        return _shape(model, size.n_layer, size.d_model, n_head, vocab_size)
    return shape_for_params(float(size.n_nonembed_params), model, vocab_size=vocab_size)


def data_fingerprint(data: DataConfig, tokenizer: Tokenizer) -> str:
    """What the tokenizer and corpus contain (hashed into run_id in place of their paths)."""
    corpus = fingerprint(corpus_files(data.corpus.path)) if data.corpus.path and data.corpus.weight > 0 else "none"
    return f"tokenizer={tokenizer.fingerprint()};corpus={corpus}"


def warmup_steps(train: TrainConfig, n_steps: int) -> int:
    """Linear warm-up: warmup_fraction of the steps (nanoGPT's and Chinchilla's short warm-up), but at
    least min_warmup_steps, by default 2 / (1 - beta2) = 40 steps at beta2 = 0.95: Adam's second-moment
    estimate averages over about 1 / (1 - beta2) steps and is unreliable before it (Ma & Yarats 2021,
    "On the adequacy of untuned warmup for adaptive optimization"). The floor takes at most a quarter
    of the run; max_warmup_steps caps the whole.

    Measured on CPU (default mixture, final val loss with 5% / this floor / 20% warm-up): runs of 245-489
    steps got 12-24 warm-up steps from the fraction alone and the wider models blew up early at the
    derived lr: 357K params on 5e5 tokens 1.685 / 1.048 / 1.008, 820K 1.399 / 0.993 / 0.975, 33K 1.379 /
    1.229 / 1.224; on 2e6 tokens the three agree within 2.6%. A 20% warm-up gains 2-4% more on short runs
    but, shared by a WSD trunk, would overlap the cooldown of its smaller branches. Long runs (the GPU
    grids) never reach the floor.
    """
    floor = round(2 / (1 - train.beta2)) if train.min_warmup_steps is None else train.min_warmup_steps
    warmup = max(round(train.warmup_fraction * n_steps), min(floor, n_steps // 4), 1)
    return min(warmup, train.max_warmup_steps, n_steps)


def plan_training(train: TrainConfig, shape: ModelShape, n_tokens_budget: int, recipe: Recipe = DEEPSEEK) -> TrainPlan:
    """Batch, steps, tokens, learning rate, warm-up and validation cadence of one run.

    The batch and peak learning rate (times train.lr_scale) follow from the run's compute by `recipe`
    (sweep.plan.recipe.batch_and_lr) unless given; a given batch moves the recipe's lr by its lr-batch slope (the
    square-root rule for the published laws).
    Steps are whole batches: n_steps = ceil(D / (batch * seq_len)), so a run trains on D tokens rounded
    up to the next step and its schedule ends exactly there. Warm-up: see warmup_steps.
    """
    flops = float(train_flops(shape, n_tokens_budget))
    derived_batch, derived_lr = batch_and_lr(recipe, flops, shape.seq_len, train.max_batch_size, train.min_batch_size)
    batch_size = train.batch_size or derived_batch
    if train.lr is not None:
        lr = train.lr
    else:
        lr = train.lr_scale * derived_lr * (batch_size / derived_batch) ** recipe.lr_batch_slope
    tokens_per_step = batch_size * shape.seq_len
    n_steps = max(1, math.ceil(n_tokens_budget / tokens_per_step))
    warmup = warmup_steps(train, n_steps)
    cooldown = cooldown_fraction(train)
    return TrainPlan(
        batch_size=batch_size,
        n_steps=n_steps,
        n_tokens=n_steps * tokens_per_step,
        lr=lr,
        schedule=train.schedule,
        warmup_steps=warmup,
        final_lr_fraction=train.final_lr_fraction,
        weight_decay=train.weight_decay,
        beta1=train.beta1,
        beta2=train.beta2,
        grad_clip=train.grad_clip,
        precision=train.precision,
        val_every_steps=max(1, math.ceil(n_steps / max(1, train.val_points))),
        val_sequences=train.val_sequences,
        diverge_loss=train.diverge_loss,
        log_every_steps=train.log_every_steps,
        compile=train.compile,
        checkpoint_every_seconds=train.checkpoint_every_seconds,
        micro_batch_size=train.micro_batch_size,
        data_workers=train.data_workers,
        recipe=recipe_name(train, recipe),
        cooldown_steps=None if cooldown is None else cooldown_steps(n_steps, cooldown),
        cooldown_shape=None if cooldown is None else train.cooldown_shape,
    )


def recipe_name(train: TrainConfig, recipe: Recipe) -> str:
    """Where a run's batch and lr come from, for the runs table: the recipe's source, or `fixed` when the
    config gives both (train.batch_size, train.lr); one given says which."""
    given = [key for key in ("batch_size", "lr") if getattr(train, key) is not None]
    if len(given) == 2:
        return "fixed"
    return recipe.source + (f", {given[0]} fixed" if given else "")


def cooldown_fraction(train: TrainConfig, branches: bool = False) -> float | None:
    """The wsd cooldown as a fraction of each run's steps; None: not wsd, or wsd's older rule."""
    if train.schedule != "wsd":
        return None
    if train.cooldown_fraction is None and branches:
        return BRANCH_COOLDOWN_FRACTION
    return train.cooldown_fraction


def plan_branches(train: TrainConfig, shape: ModelShape, budgets: list[int],
                  plan_at: str = "largest", recipe: Recipe = DEEPSEEK) -> list[tuple[int, TrainPlan, int]]:
    """The WSD-branch plans of one size: (budget, plan, branch step) per budget, the largest (the trunk,
    branch step 0) first.

    All budgets of a size share one run up to their cooldowns, so they share its batch, peak learning
    rate and warm-up, derived (plan_training) at one budget, `plan_at`:
      largest: the trunk, which holds most of the compute, is exactly the independent wsd run of its
        budget; smaller budgets train at a lower learning rate and a larger batch than their own rule
        gives (fewer steps). grid.branch_plan=batch (the default, branch_families) plans each family of
        budgets of one derived batch this way;
      smallest: the smallest branch is exactly its independent wsd run; larger budgets keep its batch
        (at or below their critical batch: no loss per token lost, McCandlish et al. 2018) and its
        higher learning rate, which the trunk then holds for its whole stable phase.
    bench/wsd_branches.py measures both against independent runs. Each budget then gets its own steps
    (ceil(D / tokens per step)) and a cooldown of cooldown_fraction of them; its branch step, where its
    cooldown starts, is n_steps - cooldown_steps.
    The largest budget is the trunk itself: its stable phase runs to its own cooldown and it keeps a
    checkpoint at every smaller budget's branch step; the others branch from those checkpoints.
    """
    fraction = cooldown_fraction(train, branches=True)
    budgets = sorted(budgets)
    base = plan_training(dataclasses.replace(train, cooldown_fraction=fraction), shape,
                         budgets[-1] if plan_at == "largest" else budgets[0], recipe)
    tokens_per_step = base.batch_size * shape.seq_len
    plans = []
    for budget in reversed(budgets):
        n_steps = max(1, math.ceil(budget / tokens_per_step))
        n_cooldown = cooldown_steps(n_steps, fraction)
        plan = dataclasses.replace(base, n_steps=n_steps, n_tokens=n_steps * tokens_per_step,
                                   val_every_steps=max(1, math.ceil(n_steps / max(1, train.val_points))),
                                   cooldown_steps=n_cooldown, cooldown_shape=train.cooldown_shape)
        plans.append((budget, plan, 0 if not plans else n_steps - n_cooldown))
    return plans


BRANCH_PLANS = ("batch", "largest", "smallest")  # grid.branch_plan: see branch_families and plan_branches


def branch_families(train: TrainConfig, shape: ModelShape, budgets: list[int],
                    plan_at: str = "largest", recipe: Recipe = DEEPSEEK) -> list[list[tuple[int, TrainPlan, int]]]:
    """The WSD-branch families of one size, each a trunk and its branches as plan_branches gives them.

    largest, smallest: one family, every budget of the size. batch: one family per batch size that
    independent runs of the budgets would derive (plan_training), each planned at its largest budget.
    A branch then trains at its own budget's batch, with the steps an independent run of it takes;
    under `largest` a budget whose derived batch is half the trunk's gets half the steps, and lands
    9-17% above its independent run (bench/wsd_branches.py, the 115k-parameter size; with `batch` every
    point of that grid agrees, bench/results/wsd_branches/seeds3_*). It costs a trunk per batch size:
    a budget alone in its family is a plain wsd run.
    """
    if plan_at != "batch":
        return [plan_branches(train, shape, budgets, plan_at, recipe)]
    groups: dict[int, list[int]] = {}
    for budget in sorted(budgets):
        groups.setdefault(plan_training(train, shape, budget, recipe).batch_size, []).append(budget)
    return [plan_branches(train, shape, group, "largest", recipe) for group in groups.values()]


def size_label(size: ModelSize, shape: ModelShape) -> str:
    return size.name or shape.describe()


def budgets_for(cfg: SweepConfig, shape: ModelShape) -> list[int]:
    """Absolute budgets plus ratio budgets (ratio x total parameters), deduplicated, ascending."""
    budgets = {int(round(d)) for d in cfg.grid.n_tokens}
    budgets |= {int(round(r * n_params(shape))) for r in cfg.grid.tokens_per_param}
    return sorted(budgets)


def expand(cfg: SweepConfig, recipe: Recipe = DEEPSEEK) -> list[RunSpec]:
    """Every (size, budget, seed) point as a RunSpec, largest compute first, duplicates removed, each run's
    batch and lr by `recipe` (the CLI passes the sweep's calibrated one, sweep.plan.calibration).
    With grid.branches, a size's points are its trunks and the branches of them (branch_families)."""
    cfg = with_precision(cfg)  # hashed as the runs train it: fp32 or bf16, never auto
    specs: dict[str, RunSpec] = {}
    tokenizer = load_tokenizer(cfg.data.tokenizer)
    fingerprint_ = data_fingerprint(cfg.data, tokenizer)
    for size in cfg.grid.models:
        shape = shape_for_size(size, cfg.model, tokenizer.vocab_size)
        common = dict(model=shape, data=cfg.data, tasks=tuple(cfg.tasks.suite), n_eval=cfg.tasks.n_eval,
                      label=size_label(size, shape), eval_batch_size=cfg.tasks.eval_batch_size,
                      data_fingerprint=fingerprint_)
        if cfg.grid.branches:
            for plans in branch_families(cfg.train, shape, budgets_for(cfg, shape), cfg.grid.branch_plan, recipe):
                points = tuple(sorted({step for _, _, step in plans[1:]}))
                for seed in cfg.grid.seeds:
                    budget, plan, _ = plans[0]
                    trunk = RunSpec(train=plan, seed=seed, n_tokens_budget=budget, branch_points=points, **common)
                    specs.setdefault(run_id(trunk), trunk)
                    for budget, plan, step in plans[1:]:
                        branch = RunSpec(train=plan, seed=seed, n_tokens_budget=budget, trunk_run_id=run_id(trunk),
                                         branch_step=step, **common)
                        specs.setdefault(run_id(branch), branch)
            continue
        for budget in budgets_for(cfg, shape):
            plan = plan_training(cfg.train, shape, budget, recipe)
            for seed in cfg.grid.seeds:
                spec = RunSpec(train=plan, seed=seed, n_tokens_budget=budget, **common)
                specs.setdefault(run_id(spec), spec)
    return sorted(specs.values(), key=lambda s: (-train_flops(s.model, s.train.n_tokens), s.seed))
