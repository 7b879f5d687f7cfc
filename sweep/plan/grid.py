"""Grid expansion: a validated SweepConfig -> the list of RunSpecs, every derived number decided here.

One place for each derivation, each with its source:
  * model shape from a target parameter count (shape_for_params),
  * steps and tokens from a budget (plan_training),
  * tokens per step and peak learning rate from the run's compute (sweep.plan.recipe: the published laws or the
    sweep's own calibration, sweep.plan.calibration),
  * warm-up length and validation cadence (plan_training),
  * with grid.branches, which budgets share a WSD trunk and where each branch starts (sweep.plan.branches).
"""

from __future__ import annotations

import math

from sweep.config.schema import DataConfig, ModelConfig, ModelSize, SweepConfig, TrainConfig
from sweep.plan.branches import branch_families, branch_train, family_specs
from sweep.plan.device import with_precision
from sweep.plan.recipe import DEEPSEEK, Recipe, batch_and_lr
from sweep.plan.run_id import run_id
from sweep.plan.spec import RunSpec, TrainPlan
from sweep.tasks.corpus import corpus_files, fingerprint
from sweep.tasks.tokenizer import VOCAB_SIZE, Tokenizer, load_tokenizer
from sweep.train.flops import n_nonembed_params, n_params, train_flops
from sweep.train.schedule import cooldown_steps
from sweep.train.shape import ModelShape


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


def cooldown_fraction(train: TrainConfig) -> float | None:
    """The wsd cooldown as a fraction of each run's steps; None: not wsd, or wsd's older rule."""
    return train.cooldown_fraction if train.schedule == "wsd" else None


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
    With grid.branches, a size's points are its trunks and the branches of them (sweep.plan.branches, given
    each budget's own plan)."""
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
            train = branch_train(cfg.train)
            own = {budget: plan_training(train, shape, budget, recipe) for budget in budgets_for(cfg, shape)}
            for family in branch_families(train, own, cfg.grid.branch_plan):
                for spec in family_specs(family, cfg.grid.seeds, **common):
                    specs.setdefault(run_id(spec), spec)
            continue
        for budget in budgets_for(cfg, shape):
            plan = plan_training(cfg.train, shape, budget, recipe)
            for seed in cfg.grid.seeds:
                spec = RunSpec(train=plan, seed=seed, n_tokens_budget=budget, **common)
                specs.setdefault(run_id(spec), spec)
    return sorted(specs.values(), key=lambda s: (-train_flops(s.model, s.train.n_tokens), s.seed))
