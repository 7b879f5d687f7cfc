"""Learning-rate schedules: linear warm-up, then a decay that reaches its floor on the last step.

The decay ends exactly at the run's final step, i.e. at its token budget: a run of D tokens is
a fully decayed run, never a truncated longer run (the mistake Hoffmann et al. 2022, sec. 3.1,
correct in Kaplan et al. 2020).
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "linear", "wsd")
COOLDOWN_SHAPES = ("linear", "1-sqrt")


def cooldown_steps(n_steps: int, fraction: float) -> int:
    """Steps of a wsd cooldown that is `fraction` of a run's `n_steps`: rounded, at least one."""
    return min(n_steps, max(1, round(fraction * n_steps)))


def cooldown_lr(step: int, *, n_steps: int, n_cooldown: int, peak_lr: float, floor: float, shape: str) -> float:
    """The cooldown of a wsd run whose last `n_cooldown` steps decay: peak before it, then the decay
    reaches `floor` on the last step (n_steps - 1) exactly.

    progress p = (step - start + 1) / n_cooldown runs 1/n_cooldown .. 1 over the cooldown;
    linear:  peak + (floor - peak) p;
    1-sqrt:  floor + (peak - floor) (1 - sqrt(p))  (Hägele et al. 2024, eq. 1 and sec. 3.2).
    """
    start = n_steps - n_cooldown
    if step < start:
        return peak_lr
    progress = min(1.0, (step - start + 1) / n_cooldown)
    if shape == "linear":
        return peak_lr + (floor - peak_lr) * progress
    if shape == "1-sqrt":
        return floor + (peak_lr - floor) * (1.0 - math.sqrt(progress))
    raise ValueError(f"unknown cooldown shape {shape!r}; expected one of {COOLDOWN_SHAPES}")


def lr_at(step: int, *, n_steps: int, warmup_steps: int, peak_lr: float, final_fraction: float,
          schedule: str = "cosine", decay_fraction: float = 0.2, n_cooldown: int | None = None,
          cooldown_shape: str | None = None) -> float:
    """Learning rate for optimizer step `step` (0-based) of `n_steps`.

    cosine: half cosine from peak to final_fraction * peak (Loshchilov & Hutter 2017).
    linear: straight line from peak to the floor.
    wsd:    warm-up, stable at peak, then linear decay over the last `decay_fraction` of the steps
            after warm-up (Hu et al. 2024, MiniCPM); with `n_cooldown`, the decay is exactly the last
            n_cooldown steps with `cooldown_shape` (cooldown_lr), so a run that shares the first
            n_steps - n_cooldown steps with a longer run shares its learning rates exactly (WSD branches).
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    floor = final_fraction * peak_lr
    if schedule == "wsd" and n_cooldown is not None:
        return cooldown_lr(step, n_steps=n_steps, n_cooldown=n_cooldown, peak_lr=peak_lr, floor=floor,
                           shape=cooldown_shape or "linear")
    span = max(1, n_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if schedule == "cosine":
        return floor + (peak_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return peak_lr + (floor - peak_lr) * progress
    if schedule == "wsd":
        decay_start = 1.0 - decay_fraction
        if progress <= decay_start:
            return peak_lr
        return peak_lr + (floor - peak_lr) * (progress - decay_start) / decay_fraction
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
