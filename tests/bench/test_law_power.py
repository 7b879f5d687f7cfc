"""bench/law_power.py: with the noise the default grid measured, a grid spanning 8 sizes (7K-783K) and
6 budgets (250K-8M) pins the law, and the default grid does not (fixed seeds: deterministic)."""

from bench.law_power import CANDIDATES, TRUTH, power


def test_the_wide_candidate_pins_the_law_and_the_default_grid_does_not():
    wide = power(CANDIDATES[-1], TRUTH, draws=2, n_boot=50)
    assert wide["meets"] == 1.0 and wide["median"]["A_decades"] < 0.5
    default = power(CANDIDATES[0], TRUTH, draws=2, n_boot=50)
    assert default["meets"] == 0.0 and default["median"]["B_decades"] > 1
