"""Verdicts on real published curves of small model families: Llama-2 (3 sizes: 7B, 13B, 70B), Llama and BLOOM
(4 sizes), GPT-Neo/J (5 sizes: 125M to 20B) and, for a smooth rise, Qwen1.5 (7 sizes), as stored in
ryoungj/ObsScaling (repository, paths, commit and the inferred n_samples in obsscaling_small_families.csv).
No sigmoid is judged on fewer than 6 sizes, so these verdicts come from the checks that need none.

What a careful reader of these numbers signs:
- GPT-Neo/J 2-digit addition: 0.6%, 1.7%, 5.4% up to 2.7B, 83% at GPT-J 6B, 97% at NeoX 20B: the ability
  appears between 2.7B and 6B (Wei et al. 2022 would name 6B its emergent scale). Emergent, bracketed by
  those two sizes; nothing is fitted between them.
- GPT-Neo/J 3-digit subtraction: under 1% up to 2.7B, 44% at 6B, 65% at 20B: a jump, but still rising after
  it, so where the middle of the rise lies (between 2.7B and 6B, or past 6B) depends on a top no size
  shows: insufficient data, with that reason.
- Persian QA (4-way, chance 25%) for GPT-Neo/J and Llama: within a few points of chance at every size: flat.
  Llama-2 goes 25%, 27%, 36%: the rise rests on 70B alone, far below the middle of the range: beyond-range
  (at or past the largest model), not a threshold.
- 2-digit addition for Llama and Llama-2: 97-100% at every size: flat at the ceiling, not emergent.
- BLOOM (560M to 7.1B): 3-digit addition under 0.4% everywhere: flat; 2-digit addition 0.4%, 0.7%, 2.1%, 12%:
  a jump onto the largest size that stays far below the middle: beyond-range.
- GPT-Neo/J word unscrambling: 0% to 3% over 160x in size: flat (under the minimum effect).
- Qwen1.5 word unscrambling: 0.8% at 0.5B rising step by step to 42% at 72B: smooth, no threshold.
"""

from pathlib import Path

import polars as pl
import pytest

from analysis.emergence.run import analyze_emergence

FIXTURE = Path(__file__).with_name("obsscaling_small_families.csv")


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict]:
    points = pl.read_csv(FIXTURE, comment_prefix="#")
    out = {}
    for (family,), group in points.group_by(["family"], maintain_order=True):
        for r in analyze_emergence(group, n_boot=100, seed=0).iter_rows(named=True):
            out[(family, r["task"])] = r
    return out


def test_the_fixture_holds_families_of_three_four_and_five_sizes_as_stored():
    points = pl.read_csv(FIXTURE, comment_prefix="#")
    sizes = dict(points.group_by("family").agg(pl.col("n_params").n_unique()).iter_rows())
    assert sizes == {"Llama-2": 3, "Llama": 4, "BLOOM": 4, "GPT-Neo/J": 5, "Qwen1.5": 7}
    assert points.filter(pl.col("model") == "EleutherAI/gpt-j-6b", pl.col("task") == "arithmetic_2da")["value"].item() \
        == 0.8305


def test_gpt_neo_j_addition_is_bracketed_between_2_7b_and_6b(rows):
    row = rows[("GPT-Neo/J", "arithmetic_2da")]
    assert row["verdict"] == "emergent" and row["flags"] == "bracketed" and row["bracketed"], row["reason"]
    assert (row["n_c_lo"], row["n_c_hi"]) == (pytest.approx(2.7e9), pytest.approx(6.05e9))
    assert row["n_c"] != row["n_c"] and row["k"] != row["k"] and row["r2_sigmoid"] != row["r2_sigmoid"]
    assert row["n_sizes"] == 5 and "threshold between 2.7e+09 and 6.05e+09 parameters (bracketed)" in row["reason"]


def test_a_jump_that_keeps_rising_after_it_on_five_sizes_is_insufficient_data_and_says_why(rows):
    row = rows[("GPT-Neo/J", "arithmetic_3ds")]
    assert row["verdict"] == "insufficient-data", row["reason"]
    assert "after the largest step (0.0065 -> 0.443 between sizes 3 and 4 of 5) the curve still rises" in row["reason"]


@pytest.mark.parametrize("family, task", [("GPT-Neo/J", "parsinlu_qa"), ("Llama", "parsinlu_qa"),
                                          ("Llama", "arithmetic_2da"), ("Llama-2", "arithmetic_2da"),
                                          ("BLOOM", "arithmetic_3da"), ("GPT-Neo/J", "word_unscrambling")])
def test_flat_on_three_to_five_sizes(rows, family, task):
    row = rows[(family, task)]
    assert row["verdict"] == "flat", row["reason"]
    assert row["n_sizes"] in (3, 4, 5) and row["n_c"] != row["n_c"]


@pytest.mark.parametrize("family, largest", [("Llama-2", 70e9), ("BLOOM", 7.1e9)])
def test_a_rise_on_the_largest_size_alone_below_the_middle_is_beyond_range(rows, family, largest):
    row = rows[(family, "parsinlu_qa" if family == "Llama-2" else "arithmetic_2da")]
    assert row["verdict"] == "beyond-range", row["reason"]
    assert row["n_c"] != row["n_c"] and row["n_c_lower_bound"] == pytest.approx(largest)
    assert row["reason"].startswith("a jump onto the largest size")


def test_a_steady_rise_over_seven_sizes_is_smooth(rows):
    row = rows[("Qwen1.5", "word_unscrambling")]
    assert row["verdict"] == "smooth", row["reason"]
    assert row["n_sizes"] == 7 and row["n_c"] != row["n_c"]
