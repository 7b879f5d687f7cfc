"""Learning-rate schedules: linear warm-up, then a decay that reaches its floor on the last step.

The decay ends exactly at the run's final step, i.e. at its token budget: a run of D tokens is
a fully decayed run, never a truncated longer run (the mistake Hoffmann et al. 2022, sec. 3.1,
correct in Kaplan et al. 2020).
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "linear", "wsd")


def lr_at(step: int, *, n_steps: int, warmup_steps: int, peak_lr: float, final_fraction: float,
          schedule: str = "cosine", decay_fraction: float = 0.2) -> float:
    """Learning rate for optimizer step `step` (0-based) of `n_steps`.

    cosine: half cosine from peak to final_fraction * peak (Loshchilov & Hutter 2017).
    linear: straight line from peak to the floor.
    wsd:    warm-up, stable at peak, then linear decay over the last `decay_fraction` of steps
            (Hu et al. 2024, MiniCPM).
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    floor = final_fraction * peak_lr
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
