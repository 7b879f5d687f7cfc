"""The recipe: how a run's batch and peak learning rate follow from its training compute.

A `Recipe` is two power laws of the run's training FLOPs C (sweep.train.flops.train_flops): tokens per
optimizer step B(C) and peak AdamW learning rate eta(C), both at their optimum, and where they come from.
`DEEPSEEK` is the published pair; sweep.plan.calibration fits one at the sweep's own scale. Which applies to a
sweep is decided by `choose_source`; turning a recipe into a run's batch and lr is `batch_and_lr`.

The batch is rounded to a grid of 8 values per octave of sequences (8, 9, ..., 15, 16, 18, ..., 30, 32, 36,
...), never down to a power of two, and never below train.min_batch_size (8): neighbouring points of a grid
then differ in batch by at most 1/8 and in steps smoothly, where rounding down to powers of two halved a
run's steps at the budget where its batch doubled (the default grid's losses rose with N there: 783K params
at 1.085M tokens, 0.867 at batch 32 against 0.783 at batch 16). Below 8 sequences whole batches jump by 1/7
to 1/1 (2 -> 3 sequences is a third fewer steps: 268K -> 468K params at 380K tokens, 1.061 -> 1.247 on a
calibrated recipe), hence the floor; a smaller optimum is said, not used.

The learning rate at the batch actually used (rounded, or the floor) moves from the law's optimum by
`lr_batch_slope`: eta(B) = eta_opt (B / B_opt)^slope. The published recipe's slope is Adam's square-root rule
(Malladi et al. 2022); a calibrated one takes the ridge of its own fitted loss surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEPS_PER_OCTAVE = 8  # batch sizes (in sequences) kept per doubling: neighbours differ by at most 1/8


@dataclass(frozen=True)
class PowerLaw:
    """y = coefficient * C^exponent."""

    coefficient: float
    exponent: float

    def __call__(self, flops: float) -> float:
        return self.coefficient * flops**self.exponent

    def describe(self, what: str) -> str:
        return f"{what} = {self.coefficient:.4g} C^{self.exponent:.4g}"


@dataclass(frozen=True)
class Recipe:
    """Tokens per step and peak learning rate at their optimum, as power laws of training compute C."""

    source: str  # "deepseek" | "calibrated"
    batch_tokens: PowerLaw
    lr: PowerLaw
    fitted_flops: tuple[float, float]  # the compute range the laws were fitted on
    reference: str  # where the laws come from: a citation, or the calibration's file
    lr_batch_slope: float = 0.5  # d ln(eta) / d ln(B) away from the optimum batch

    def covers(self, flops: float) -> bool:
        lo, hi = self.fitted_flops
        return lo <= flops <= hi

    def describe(self) -> str:
        lo, hi = self.fitted_flops
        return (f"{self.batch_tokens.describe('B (tokens/step)')}, {self.lr.describe('lr')}, lr ~ B^"
                f"{self.lr_batch_slope:.2g} away from it; fitted on C = {lo:.2g}..{hi:.2g} FLOPs ({self.reference})")


# DeepSeek LLM (Bi et al. 2024), sec. 3.1, eq. 1, from grid searches of batch and learning rate on runs of
# 1e17..2e19 FLOPs: B_opt = 0.2920 C^0.3271 tokens, eta_opt = 0.3118 C^-0.1250. The critical batch grows
# with compute (McCandlish et al. 2018).
DEEPSEEK = Recipe("deepseek", PowerLaw(0.2920, 0.3271), PowerLaw(0.3118, -0.1250), (1e17, 2e19),
                  "DeepSeek LLM, Bi et al. 2024, sec. 3.1")

SOURCES = ("auto", "calibrate", "deepseek")  # recipe.source


def round_batch(sequences: float, max_batch_size: int, min_batch_size: int = 1) -> int:
    """`sequences` to the nearest of STEPS_PER_OCTAVE values per octave (every integer below that), within
    min_batch_size..max_batch_size."""
    s = max(1.0, float(sequences), float(min_batch_size))
    step = 2 ** max(0, math.floor(math.log2(s)) - int(math.log2(STEPS_PER_OCTAVE)))
    return int(min(max_batch_size, max(min_batch_size, round(s / step) * step)))


def batch_and_lr(recipe: Recipe, flops: float, seq_len: int, max_batch_size: int,
                 min_batch_size: int = 1) -> tuple[int, float]:
    """(sequences per step, peak lr) at a run's training compute: the recipe's optimum batch rounded (round_batch,
    at least min_batch_size), and its optimum lr moved to that batch, eta(B) = eta_opt (B / B_opt)^slope."""
    optimum = recipe.batch_tokens(flops) / seq_len
    batch = round_batch(optimum, max_batch_size, min_batch_size)
    return batch, recipe.lr(flops) * (batch / optimum) ** recipe.lr_batch_slope


def choose_source(source: str, flops: list[float], published: Recipe = DEEPSEEK) -> tuple[str, str]:
    """(deepseek | calibrate, why) for recipe.source: auto calibrates when any run's compute lies outside the
    published laws' fitted range (they are extrapolated there); the other values are taken as given."""
    if source != "auto":
        return source, f"recipe.source={source}"
    lo, hi = min(flops), max(flops)
    if all(published.covers(c) for c in (lo, hi)):
        return "deepseek", (f"recipe.source=auto: the grid's compute {lo:.2g}..{hi:.2g} FLOPs lies inside the "
                            f"published laws' fitted range")
    return "calibrate", (f"recipe.source=auto: the grid's compute {lo:.2g}..{hi:.2g} FLOPs lies outside the published "
                         f"laws' fitted range {published.fitted_flops[0]:.2g}..{published.fitted_flops[1]:.2g}")
