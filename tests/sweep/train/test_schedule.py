import pytest

from sweep.train.schedule import SCHEDULES, lr_at


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_warmup_then_decay_ends_at_floor_on_last_step(schedule):
    kw = dict(n_steps=100, warmup_steps=10, peak_lr=1e-3, final_fraction=0.1, schedule=schedule)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4)  # (step + 1) / warmup
    assert lrs[9] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-4)  # the floor exactly at the final step (the token budget)
    assert all(a >= b - 1e-15 for a, b in zip(lrs[9:], lrs[10:]))  # never rises after warm-up


def test_wsd_is_flat_until_decay_phase():
    kw = dict(n_steps=101, warmup_steps=1, peak_lr=1.0, final_fraction=0.0, schedule="wsd", decay_fraction=0.2)
    assert lr_at(50, **kw) == 1.0
    assert lr_at(100, **kw) == pytest.approx(0.0)


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(5, n_steps=10, warmup_steps=1, peak_lr=1.0, final_fraction=0.1, schedule="step")
