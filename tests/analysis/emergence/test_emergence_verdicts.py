"""Verdicts on curves of known shape (analysis/verdicts.py through analysis/emergence_analysis.py)."""

import numpy as np
import polars as pl
import pytest

from analysis.emergence.curve import judge_curve
from analysis.emergence.points import EmergenceInputError
from analysis.emergence.rule import Criteria
from analysis.emergence.run import analyze_emergence
from analysis.emergence.sigmoid import sigmoid
from analysis.interval import LEVEL

SIZES = np.logspace(6, 10, 9)
X = np.log(SIZES)
LO, HI = X.min(), X.max()
CRIT = Criteria(max_width=np.log(100))


def table(curves: dict[str, np.ndarray], metric="exact_match", sizes=SIZES, **extra) -> pl.DataFrame:
    rows = [{"task": task, "metric": metric, "n_params": float(n), "value": float(v), **extra}
            for task, values in curves.items() for n, v in zip(sizes, values)]
    return pl.DataFrame(rows)


def verdicts(frame: pl.DataFrame, **kwargs) -> dict[str, str]:
    out = analyze_emergence(frame, n_boot=kwargs.pop("n_boot", 0), **kwargs)
    return dict(zip(out["task"], out["verdict"]))


def test_shapes_get_their_verdicts():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (6, len(X)))
    curves = {
        "linear": 0.1 + 0.8 * (X - LO) / (HI - LO) + noise[0],
        "flat": 0.3 + noise[1],
        "sharp": sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8)) + noise[2],
        "beyond": sigmoid(X, 0.0, 0.9, 2.0, np.log(3e10)) + noise[3] / 2,
        "saturating": 0.95 - 0.8 * np.exp(-0.6 * (X - LO)) + noise[4],
        "zeros": np.zeros(len(X)),
        "ones": np.ones(len(X)),
    }
    got = verdicts(table({k: np.clip(v, 0, 1) for k, v in curves.items()}, chance=0.0))
    assert got == {"linear": "smooth", "flat": "flat", "sharp": "emergent", "beyond": "beyond-range",
                   "saturating": "smooth", "zeros": "flat", "ones": "flat"}


def test_emergent_row_reports_threshold_steepness_and_intervals():
    rng = np.random.default_rng(2)
    y = np.clip(sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8)) + rng.normal(0, 0.01, len(X)), 0, 1)
    row = analyze_emergence(table({"t": y}, chance=0.0, n_samples=2000), n_boot=100, seed=3).row(0, named=True)
    assert row["verdict"] == "emergent"
    assert row["n_c"] == pytest.approx(3e8, rel=0.3)
    assert row["n_c_lo"] < row["n_c"] < row["n_c_hi"]
    assert row["n_c_lo"] < 3e8 * 1.05 and row["n_c_hi"] > 3e8 / 1.05  # nominal 95%; coverage is approximate
    assert row["k_lo"] <= row["k"] <= row["k_hi"]
    assert row["floor_pinned"] and row["bootstrap"] == "binomial+misfit" and row["n_boot"] == 100
    assert row["threshold_in_range"] and row["threshold_unit"] == "parameters"
    assert row["width_frac"] < 0.5 and row["delta_ic"] > 2
    for model in ("constant", "linear", "power", "sigmoid"):
        assert np.isfinite(row[f"aic_{model}"]) and np.isfinite(row[f"bic_{model}"])
    assert row["r2_sigmoid"] > row["r2_linear"]


def test_same_seed_same_intervals():
    y = np.clip(sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8)) + np.random.default_rng(4).normal(0, .02, len(X)), 0, 1)
    runs = [analyze_emergence(table({"t": y}, chance=0.0), n_boot=50, seed=7) for _ in range(2)]
    assert runs[0]["k_lo"][0] == runs[1]["k_lo"][0] and runs[0]["n_c_hi"][0] == runs[1]["n_c_hi"][0]


def test_too_few_sizes_or_no_values_is_insufficient_data():
    three = table({"three": [0.0, 0.5, 1.0]}, sizes=SIZES[:3])
    nan = table({"nan": np.full(len(X), np.nan)})
    got = verdicts(pl.concat([three, nan]))
    assert got == {"three": "insufficient-data", "nan": "insufficient-data"}
    reasons = dict(zip(*analyze_emergence(nan, n_boot=0).select("task", "reason")))
    assert "no finite values" in reasons["nan"]


def test_nans_are_dropped_and_counted():
    y = sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))
    y[[0, 5]] = np.nan
    row = analyze_emergence(table({"t": y}, chance=0.0), n_boot=0).row(0, named=True)
    assert row["verdict"] == "emergent" and row["n_dropped"] == 2 and row["n_sizes"] == 7


def test_seeds_are_averaged_and_counted_and_drive_the_bootstrap():
    rng = np.random.default_rng(5)
    frames = [table({"t": np.clip(sigmoid(X, 0, 0.9, 3.0, np.log(3e8)) + rng.normal(0, 0.02, len(X)), 0, 1)},
                    chance=0.0, seed=s) for s in range(3)]
    row = analyze_emergence(pl.concat(frames), n_boot=50).row(0, named=True)
    assert row["verdict"] == "emergent" and row["max_seeds"] == 3 and row["n_sizes"] == len(X)
    assert row["bootstrap"] == "seeds+misfit" and np.isfinite(row["noise_measured"])


def test_only_the_largest_budget_of_a_size_is_used():
    low = table({"t": np.zeros(len(X))}, chance=0.0, n_tokens=1e6)
    high = table({"t": sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))}, chance=0.0, n_tokens=1e8)
    assert verdicts(pl.concat([low, high])) == {"t": "emergent"}


def test_noisy_non_monotone_curve_is_not_emergent():
    y = np.array([0.2, 0.5, 0.1, 0.6, 0.3, 0.4, 0.2, 0.5, 0.3])
    assert verdicts(table({"t": y}, chance=0.0)) == {"t": "flat"}


def test_a_rise_carried_by_the_largest_model_alone_is_not_claimed():
    y = np.zeros(len(X))
    y[-1] = 0.4
    assert verdicts(table({"t": y}, chance=0.0)) == {"t": "beyond-range"}


def test_a_lone_jump_past_the_middle_of_the_range_is_bracketed():
    """GPT-3-like 3-digit addition (8 sizes, 125M-175B): only 175B is high, but 0.8 of a [0, 1] metric
    puts the threshold between 13B and 175B whatever the unseen ceiling; no size lies on the rise, so
    those two sizes are the threshold's interval and nothing is fitted between them."""
    sizes = np.array([125e6, 350e6, 760e6, 1.3e9, 2.7e9, 6.7e9, 13e9, 175e9])
    y = [0.0, 0.003, 0.005, 0.008, 0.012, 0.031, 0.098, 0.804]
    row = analyze_emergence(table({"t": y}, sizes=sizes, chance=0.0, n_samples=500), n_boot=50).row(0, named=True)
    assert row["verdict"] == "emergent" and row["flags"] == "bracketed" and row["bracketed"]
    assert (row["n_c_lo"], row["n_c_hi"]) == (pytest.approx(13e9), pytest.approx(175e9))
    assert np.isnan(row["n_c"]) and np.isnan(row["k"]) and np.isnan(row["r2_sigmoid"])
    assert "threshold between 1.3e+10 and 1.75e+11 parameters (bracketed)" in row["reason"]


def test_sharp_rise_at_the_smallest_sizes_is_saturation_not_emergence():
    y = sigmoid(X, 0.0, 0.95, 3.0, LO + 0.5)  # only one size before the transition
    assert verdicts(table({"t": y}, chance=0.0)) == {"t": "smooth"}


def test_fewer_sizes_than_the_sigmoid_and_its_noise_need_is_insufficient_data_unless_flat_or_a_jump():
    """On the default grid's 4 sizes a sigmoid went through every point (R² = 1, 'rise = 1000 sigma'). A sigmoid
    with its floor at chance has 3 parameters and the noise a fourth: 6 sizes leave it one spare point for the
    criterion; a free floor needs 7. Below that no sigmoid is judged: a rise spread over the sizes is insufficient
    data, with the count; a jump between two neighbours is bracketed by them; a flat curve is flat."""
    for n_sizes, chance in ((4, 0.0), (5, 0.0), (6, None)):
        sizes = np.logspace(6, 10, n_sizes)
        y = 0.1 + 0.8 * (np.log(sizes) - LO) / (HI - LO)  # no jump between neighbours
        row = analyze_emergence(table({"t": y}, sizes=sizes, chance=chance, n_samples=200), n_boot=0).row(0, named=True)
        assert row["verdict"] == "insufficient-data", (n_sizes, row["reason"])
        assert row["n_sizes"] == n_sizes and f"{n_sizes} sizes" in row["reason"]
        assert np.isnan(row["n_c"])
        n_c = np.sqrt(sizes[-3] * sizes[-2])  # a sharp jump between the second and third largest sizes
        jump = sigmoid(np.log(sizes), 0.0, 0.9, 6.0, np.log(n_c))
        row = analyze_emergence(table({"t": jump}, sizes=sizes, chance=chance, n_samples=200), n_boot=0).row(0,
                                                                                                           named=True)
        assert row["verdict"] == "emergent" and row["bracketed"], (n_sizes, row["reason"])
        assert (row["n_c_lo"], row["n_c_hi"]) == pytest.approx((sizes[-3], sizes[-2])) and np.isnan(row["n_c"])
        flat = analyze_emergence(table({"t": np.full(n_sizes, 0.3)}, sizes=sizes, chance=chance, n_samples=200),
                                 n_boot=0)
        assert flat["verdict"][0] == "flat"
    sizes = np.logspace(6, 10, 6)
    y = sigmoid(np.log(sizes), 0.0, 0.9, 1.5, np.log(3e8))
    assert verdicts(table({"t": y}, sizes=sizes, chance=0.0, n_samples=200)) == {"t": "emergent"}


@pytest.mark.parametrize("metric, direction_column", [("task_loss", None), ("token_brier", None),
                                                       ("relative_error", None), ("my_score", False)])
def test_lower_is_better_metrics(metric, direction_column):
    """Falling curves of lower-is-better metrics: a sharp drop is emergent, a straight decline smooth, a
    rise (getting worse) never emergent. Direction from the column when given, else from the name."""
    extra = {} if direction_column is None else {"higher_is_better": direction_column}
    top = 3.0 if metric == "task_loss" else 0.9
    curves = {"drop": top - sigmoid(X, 0.0, top * 0.95, 3.0, np.log(3e8)),
              "decline": top - top * 0.9 * (X - LO) / (HI - LO),
              "worse": 0.1 + top * 0.8 * (X - LO) / (HI - LO)}
    out = analyze_emergence(table(curves, metric=metric, **extra), n_boot=0)
    got = dict(zip(out["task"], out["verdict"]))
    assert got == {"drop": "emergent", "decline": "smooth", "worse": "smooth"}
    drop = out.filter(pl.col("task") == "drop").row(0, named=True)
    assert drop["higher_is_better"] is False
    assert drop["n_c"] == pytest.approx(3e8, rel=0.05) and drop["k"] == pytest.approx(3.0, rel=0.05)
    assert drop["floor"] > drop["ceil"]  # in metric units: the small-model plateau is the high one
    assert "inverse scaling: the metric gets worse" in out.filter(pl.col("task") == "worse")["reason"][0]


def test_log_likelihood_floor_is_never_pinned_at_chance():
    y = -4.0 + 3.5 * (X - LO) / (HI - LO)
    row = analyze_emergence(table({"t": y}, metric="target_logprob", chance=-5.0), n_boot=0).row(0, named=True)
    assert row["verdict"] == "smooth" and row["floor_pinned"] is False


def test_flat_at_chance_for_multiple_choice():
    rng = np.random.default_rng(6)
    y = 0.25 + rng.normal(0, 0.01, len(X))
    assert verdicts(table({"t": y}, metric="mc_accuracy", chance=0.25, n_samples=1000)) == {"t": "flat"}


def test_judge_curve_takes_raw_arrays_with_duplicates():
    x = np.repeat(X, 2)
    y = np.repeat(sigmoid(X, 0, 1, 3.0, np.log(3e8)), 2) + np.tile([-0.01, 0.01], len(X))
    v = judge_curve(x, np.clip(y, 0, 1), chance=0.0, bounds=(0, 1), criteria=CRIT, n_boot=20)
    assert v.verdict == "emergent" and v.n_sizes == len(X) and v.n_points == 2 * len(X)
    lo, hi = v.band(X)
    assert np.all(lo <= hi)


def test_val_loss_axis_reverses_and_maps_back_to_parameters():
    val_loss = 1.5 + 40.0 * SIZES**-0.25
    acc = sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))
    frame = pl.concat([table({"t": acc}, chance=0.0),
                       table({"heldout": val_loss}, metric="val_loss")], how="diagonal")
    out = analyze_emergence(frame, x="val_loss", n_boot=0)
    assert out["task"].to_list() == ["t"]  # the loss itself is the axis, not a curve
    row = out.row(0, named=True)
    assert row["verdict"] == "emergent" and row["x_axis"] == "val_loss"
    loss_at_threshold = 1.5 + 40.0 * 3e8**-0.25
    assert row["threshold"] == pytest.approx(loss_at_threshold, rel=0.02)
    assert row["n_c"] == pytest.approx(3e8, rel=0.3)
    assert row["k"] > 0


def test_log_flops_axis():
    frame = table({"t": sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))}, chance=0.0).with_columns(
        (6 * 20 * pl.col("n_params") ** 2).alias("flops"))
    row = analyze_emergence(frame, x="log_flops", n_boot=0).row(0, named=True)
    assert row["verdict"] == "emergent"
    assert row["threshold"] == pytest.approx(6 * 20 * 3e8**2, rel=0.1)
    assert row["n_c"] == pytest.approx(3e8, rel=0.05)


def test_bad_tables_raise_a_named_error():
    with pytest.raises(EmergenceInputError, match="missing column"):
        analyze_emergence(pl.DataFrame({"task": ["a"], "metric": ["m"], "value": [1.0]}))
    with pytest.raises(EmergenceInputError, match="'value' must be numeric"):
        analyze_emergence(pl.DataFrame({"task": ["a"], "metric": ["m"], "n_params": [1.0], "value": ["x"]}))
    with pytest.raises(EmergenceInputError, match="flops"):
        analyze_emergence(table({"t": np.zeros(len(X))}), x="log_flops")
    with pytest.raises(EmergenceInputError, match="unknown x axis"):
        analyze_emergence(table({"t": np.zeros(len(X))}), x="log_d")


GPT3_SIZES = np.array([125e6, 350e6, 760e6, 1.3e9, 2.7e9, 6.7e9, 13e9, 175e9])


def test_percent_scale_accuracy_is_read_as_percent_with_a_note():
    """Accuracy in % is read as % (never clipped to [0, 1]) and gets the verdict of the same curve /100."""
    y = np.array([0.0, 0.01, 0.05, 0.2, 0.4, 0.6, 0.75, 0.8])
    frac = analyze_emergence(table({"t": y}, metric="accuracy", sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    pct = analyze_emergence(table({"t": 100 * y}, metric="accuracy", sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    assert pct["verdict"] == frac["verdict"]
    assert pct["x_c"] == pytest.approx(frac["x_c"], rel=1e-6)
    assert pct["ceil"] == pytest.approx(frac["ceil"], rel=1e-6)
    assert "values read as percent" in pct["note"] and "values read as percent" in pct["reason"]
    assert frac["note"] == ""


def test_chance_in_percent_is_read_as_percent():
    y = 0.25 + 0.7 * sigmoid(X, 0.0, 1.0, 3.0, np.log(3e8))
    frac = analyze_emergence(table({"t": y}, metric="mc_accuracy", chance=0.25), n_boot=0).row(0, named=True)
    pct = analyze_emergence(table({"t": y}, metric="mc_accuracy", chance=25.0), n_boot=0).row(0, named=True)
    assert pct["floor_pinned"] and pct["chance"] == pytest.approx(0.25)
    assert pct["n_c"] == pytest.approx(frac["n_c"], rel=1e-6)
    assert "chance read as percent" in pct["note"]


def test_values_outside_the_natural_range_are_not_clipped_silently():
    y = np.array([-0.1, 0.0, 0.05, 0.2, 0.5, 0.9, 1.1, 1.2])
    row = analyze_emergence(table({"t": y}, metric="accuracy", sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    assert "outside the natural range" in row["note"] and "outside the natural range" in row["reason"]
    assert row["ceil"] > 1.0  # the fit is not held inside [0, 1]


@pytest.mark.parametrize("task, y", [
    ("lastdrop", [0, 0, 0, 0, .5, .8, .9, .1]),
    ("ushape", [.5, .4, .3, .25, .3, .4, .6, .8]),
    ("ushape2", [.6, .5, .3, .1, .1, .1, .5, .9]),
    ("spike", [0, 0, 0, .6, 0, 0, 0, 0]),
])
def test_non_monotone_curves_say_so(task, y):
    """A U-shape, and a 0.1-0.9 curve with a late drop, are non-monotone: neither emergent nor flat."""
    row = analyze_emergence(table({task: y}, sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    assert row["verdict"] == "non-monotone", row["reason"]
    assert row["reason"].startswith("non-monotone")
    assert row["spearman_rho"] < 0.9


@pytest.mark.parametrize("task, y", [
    ("jump_mid_noisy", [0.02, 0.0, 0.05, 0.01, 0.6, 0.5, 0.7, 0.65]),  # a dip of 0.1 in a rise of 0.7: emergent
    ("sharp_dip", [0, 0, 0, 0.02, 0.85, 0.9, 0.88, 0.9]),
])
def test_small_dips_in_a_rise_are_not_non_monotone(task, y):
    row = analyze_emergence(table({task: y}, sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    assert row["verdict"] == "emergent", row["reason"]


def test_a_sharp_drop_with_scale_is_inverse_scaling():
    y = [.9, .9, .9, .9, .1, 0, 0, 0]
    row = analyze_emergence(table({"t": y}, sizes=GPT3_SIZES), n_boot=0).row(0, named=True)
    assert row["verdict"] == "smooth"
    assert row["reason"].startswith("inverse scaling: the metric gets worse with scale")
    assert row["spearman_rho"] < -0.8


@pytest.mark.parametrize("y", [[0, 0, 0, 0, 0, 0, .02, .3], [0, 0, 0, 0, 0, 0, 0, .2]])
def test_beyond_range_reports_a_lower_bound_not_an_in_range_threshold(y):
    """A beyond-range row gives a lower bound, never an n_c inside the sizes."""
    row = analyze_emergence(table({"t": y}, sizes=GPT3_SIZES), n_boot=50).row(0, named=True)
    assert row["verdict"] == "beyond-range", row["reason"]
    assert np.isnan(row["n_c"]) and np.isnan(row["n_c_lo"]) and np.isnan(row["n_c_hi"]) and np.isnan(row["threshold"])
    assert row["threshold_in_range"] is False
    assert row["n_c_lower_bound"] == pytest.approx(175e9) and row["threshold_bound"] == pytest.approx(175e9)
    assert "at or beyond the largest model (>= 1.75e+11 parameters)" in row["reason"]


def test_other_verdicts_have_no_threshold_bound():
    frame = table({"t": sigmoid(X, 0.0, 0.9, 3.0, np.log(3e8))}, chance=0.0)
    row = analyze_emergence(frame, n_boot=0).row(0, named=True)
    assert row["verdict"] == "emergent" and np.isnan(row["n_c_lower_bound"]) and np.isfinite(row["n_c"])


def test_defaults_are_1000_replicates_at_the_report_level_and_the_level_is_a_column():
    """The emergence bootstrap defaults to 1000 replicates at the report's level, and the level is a column."""
    import inspect

    from analysis.emergence.curve import N_BOOT
    from analysis.emergence.run import run_emergence

    assert N_BOOT == 1000
    for fn in (analyze_emergence, run_emergence, judge_curve):
        assert inspect.signature(fn).parameters["n_boot"].default == N_BOOT
    # k = 1.5: three sizes on the rise, so the intervals are the bootstrap's, not the gap between two sizes
    y = np.clip(sigmoid(X, 0.0, 0.9, 1.5, np.log(3e8)) + np.random.default_rng(8).normal(0, 0.02, len(X)), 0, 1)
    assert analyze_emergence(table({"t": y}, chance=0.0), n_boot=20).row(0, named=True)["ci_level"] == LEVEL == 0.9
    wide = analyze_emergence(table({"t": y}, chance=0.0), n_boot=200, level=0.99).row(0, named=True)
    narrow = analyze_emergence(table({"t": y}, chance=0.0), n_boot=200, level=0.5).row(0, named=True)
    assert wide["ci_level"] == 0.99 and narrow["ci_level"] == 0.5
    assert wide["n_c_lo"] < narrow["n_c_lo"] < narrow["n_c_hi"] < wide["n_c_hi"]
    with pytest.raises(EmergenceInputError, match="level"):
        analyze_emergence(table({"t": y}, chance=0.0), level=1.5)
