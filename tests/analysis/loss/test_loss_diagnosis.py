"""analysis/loss/diagnosis.py: the fit's caveats filed under the cause that explains them here, each with
its evidence and a next step to paste."""

import numpy as np
import polars as pl
from law_truth import law

from analysis.loss.diagnosis import Cause, Caveat, diagnose
from analysis.loss.monotonicity import check_monotonicity

D_TERM = (Caveat("D", "B's 90% interval spans 9.0 decades (8.41 to 8.19e+09)", "B's interval spans 9.0 decades"),
          Caveat("D", "beta's 90% interval [0.164, 1.88] is wider than 0.25", "beta in [0.164, 1.88]"))
N_TERM = (Caveat("N", "alpha's 90% interval [0.961, 3.51] is wider than 0.25", "alpha in [0.961, 3.51]"),)
E_TERM = (Caveat("E", "E's 90% interval spans 8.6 decades (2.06e-09 to 0.819)", "E's interval spans 8.6 decades"),)


def _runs(sizes, budgets, seeds=(0,), loss=law, batch=None) -> pl.DataFrame:
    rows = [{"run_id": f"N{i}-D{j}-s{s}", "label": f"m{i}", "n_params": n, "n_tokens": d, "seed": s,
             "batch_size": 16 if batch is None else batch(i, j), "final_val_loss": float(loss(n, d))}
            for i, n in enumerate(sizes) for j, d in enumerate(budgets) for s in seeds]
    return pl.DataFrame(rows)


def _diagnose(runs: pl.DataFrame, caveats, isoflop_problem=None):
    mono = check_monotonicity(runs["n_params"], runs["n_tokens"], runs["final_val_loss"], runs)
    return diagnose(tuple(caveats), mono, runs["n_params"].n_unique(), runs["n_tokens"].n_unique(), isoflop_problem)


WIDE_N = tuple(np.geomspace(1e6, 1e8, 9))  # 100x in steps of 1.8x
WIDE_D = tuple(np.geomspace(1e8, 1e10, 4))  # 100x in steps of 4.6x


def _above_its_smaller_neighbour(factor: float, i: int = 5, j: int = 2):
    """The law, but the run at (WIDE_N[i], WIDE_D[j]) `factor` times the loss of the size below it (still
    below the budget before it)."""
    value = factor * law(WIDE_N[i - 1], WIDE_D[j])
    assert value < law(WIDE_N[i], WIDE_D[j - 1])

    def loss(n, d):
        return value if (n, d) == (WIDE_N[i], WIDE_D[j]) else law(n, d)

    return loss


def test_the_d_terms_caveats_on_three_close_budgets_are_put_down_to_the_budgets():
    result = _diagnose(_runs(WIDE_N, (3.8e5, 6.42e5, 1.085e6)), D_TERM)
    (finding,) = result.findings
    assert finding.cause is Cause.BUDGETS and finding.blocks and not result.headlined
    assert finding.evidence == "D spans 2.86x over 3 budgets (380k to 1.08M)"
    assert finding.caveats == ("B's interval spans 9.0 decades", "beta in [0.164, 1.88]")
    assert "grid.n_tokens=[3.8e5,7.6e5,1.5e6,3e6,6.1e6]" in finding.fix
    assert "train.schedule=wsd grid.branches=true" in finding.fix
    assert result.reason() == "the data do not pin the law: too few or too close token budgets"


def test_the_n_terms_caveats_on_a_narrow_range_ask_for_more_sizes():
    (finding,) = _diagnose(_runs((1e6, 1.5e6, 2.2e6, 3.3e6), WIDE_D), N_TERM).findings
    assert finding.cause is Cause.SIZES and finding.evidence.startswith("N spans 3.3x over 4 sizes")
    assert "grid.models=[{n_nonembed_params:1e6}," in finding.fix


def test_a_break_where_the_batch_doubles_takes_the_n_terms_caveats_on_a_wide_range():
    """N spans 100x and D 16x: not too narrow, so alpha's width is put down to the break the data show."""
    runs = _runs(WIDE_N, WIDE_D, loss=_above_its_smaller_neighbour(1.05), batch=lambda i, j: 32 if (i, j) == (5, 2)
                 else 16)
    result = _diagnose(runs, N_TERM)
    recipe = result.findings[0]
    assert recipe.cause is Cause.RECIPE and recipe.blocks and recipe.caveats == ("alpha in [0.961, 3.51]",)
    assert recipe.evidence == ("loss rises with N at fixed D in 1 place, each where the batch doubles: N 10M -> "
                               "17.8M at D = 2.15G (m4 -> m5): 4.385 -> 4.604 (+5.0%); batch_size 16 -> 32")
    assert recipe.fix == ("calibrate the recipe at this scale (recipe.source=calibrate) or fix the batch "
                          "(train.batch_size=16); and add seeds (grid.seeds=[0,1,2])")
    text = recipe.text()
    assert text.startswith("The recipe, not the law: ") and "Next: calibrate the recipe" in text


def test_a_break_with_the_same_recipe_is_not_the_recipes():
    loss = _above_its_smaller_neighbour(1.05)
    causes = [f.cause for f in _diagnose(_runs(WIDE_N, WIDE_D, loss=loss), N_TERM).findings]
    assert Cause.RECIPE not in causes and causes[0] is Cause.NOISE  # one seed: cannot tell
    causes = [f.cause for f in _diagnose(_runs(WIDE_N, WIDE_D, seeds=(0, 1), loss=loss), N_TERM).findings]
    assert causes[0] is Cause.UNEXPLAINED  # seeds agree exactly, so beyond their spread


def test_e_unpinned_while_the_loss_still_falls_is_not_estimable():
    (finding,) = _diagnose(_runs(WIDE_N, WIDE_D), E_TERM).findings
    assert finding.cause is Cause.IRREDUCIBLE and "not estimable" in finding.evidence
    assert "per doubling of D at the largest N = 100M" in finding.evidence


def test_e_unpinned_where_the_loss_has_flattened_is_put_down_elsewhere():
    def flat(n, d):
        return 2.0 + 1e-3 * (1e6 / n) + 1e-3 * (3.8e5 / d)

    (finding,) = _diagnose(_runs(WIDE_N, (3.8e5, 6.42e5, 1.085e6), loss=flat), E_TERM).findings
    assert finding.cause is Cause.BUDGETS


def test_noise_alone_does_not_keep_the_law_from_a_headline():
    assert _diagnose(_runs(WIDE_N, WIDE_D), ()).findings == ()
    runs = _runs(WIDE_N, WIDE_D, seeds=(0, 1, 2), loss=_above_its_smaller_neighbour(1.01))
    result = _diagnose(runs.with_columns(final_val_loss=pl.col("final_val_loss") * (1 + 0.03 * (pl.col("seed") - 1))),
                       ())
    (finding,) = result.findings
    assert finding.cause is Cause.NOISE and not finding.blocks and result.headlined
    assert finding.fix == "add seeds (grid.seeds=[0,1,2,3,4,5])"


def test_approach_2_not_fitted_is_said_with_its_fix_and_blocks_nothing():
    result = _diagnose(_runs(WIDE_N, WIDE_D), (), "not fitted: the exponent fit needs minima at 2 or more budgets")
    (finding,) = result.findings
    assert finding.cause is Cause.ISOFLOP and result.headlined and "both sides of its optimum" in finding.fix


def test_blocking_findings_come_first():
    result = _diagnose(_runs(WIDE_N, (3.8e5, 6.42e5, 1.085e6)), D_TERM, "not fitted: no minima")
    assert [f.cause for f in result.findings] == [Cause.BUDGETS, Cause.ISOFLOP]
    assert result.as_dict()["findings"][0]["blocks_headline"] is True
