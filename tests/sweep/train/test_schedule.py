import pytest

from sweep.train.schedule import COOLDOWN_SHAPES, SCHEDULES, cooldown_lr, cooldown_steps, lr_at


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


# ---- wsd with an exact cooldown (WSD branches) ------------------------------------------------------------

@pytest.mark.parametrize("shape", COOLDOWN_SHAPES)
def test_exact_cooldown_is_the_last_steps_and_ends_at_the_floor(shape):
    kw = dict(n_steps=100, warmup_steps=5, peak_lr=1.0, final_fraction=0.1, schedule="wsd", n_cooldown=20,
              cooldown_shape=shape)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[5:80] == [1.0] * 75  # stable up to the cooldown's first step, 80 = 100 - 20
    assert lrs[80] < 1.0 and lrs[99] == pytest.approx(0.1)  # decays from its first step to the floor on the last
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:]))


def test_a_branch_shares_every_learning_rate_of_its_trunk_before_its_cooldown():
    """A run of 60 steps with 12 of cooldown takes exactly the trunk's (100 steps, 20 of cooldown) learning
    rates for its first 48 steps: the branch point is step 48."""
    common = dict(warmup_steps=5, peak_lr=3e-3, final_fraction=0.1, schedule="wsd", cooldown_shape="1-sqrt")
    trunk = [lr_at(s, n_steps=100, n_cooldown=20, **common) for s in range(100)]
    branch = [lr_at(s, n_steps=60, n_cooldown=12, **common) for s in range(60)]
    assert branch[:48] == trunk[:48] and branch[48] < trunk[48]
    assert branch[-1] == pytest.approx(3e-4)


def test_one_minus_sqrt_shape():
    assert cooldown_lr(9, n_steps=10, n_cooldown=4, peak_lr=1.0, floor=0.0, shape="1-sqrt") == 0.0
    assert cooldown_lr(6, n_steps=10, n_cooldown=4, peak_lr=1.0, floor=0.0, shape="1-sqrt") == pytest.approx(0.5)
    assert cooldown_lr(6, n_steps=10, n_cooldown=4, peak_lr=1.0, floor=0.0, shape="linear") == pytest.approx(0.75)


def test_cooldown_steps_round_and_are_at_least_one():
    assert cooldown_steps(100, 0.2) == 20 and cooldown_steps(101, 0.2) == 20 and cooldown_steps(3, 0.1) == 1
