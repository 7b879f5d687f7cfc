"""Evaluation on a really trained tiny model: KV-cached generation, single-pass equivalence, scores."""

import math

import numpy as np
import pytest
import torch

from sweep.plan.grid import expand
from sweep.tasks.mixture import eval_problems, mixture_for
from sweep.tasks.problem import Problem
from sweep.train.evaluate import _choice_scores, evaluate_problems, greedy_generate, teacher_forced_scores
from sweep.train.loop import train

SUITE = ("tasks.suite=["
         "{name: add_1d, kind: addition, args: {digits: 1}},"
         "{name: add_2d, kind: addition, args: {digits: 2}},"
         "{name: mc, kind: largest_choice, args: {options: 3, digits: 2}},"
         "{name: cot_2d, kind: cot_addition, args: {digits: 2}}]")


@pytest.fixture(scope="module")
def trained(request):
    """A 2-layer model trained for 6e5 tokens (~6 s): right on some problems, wrong on others."""
    from sweep.cli import compose

    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = compose(["grid=tiny", "grid.n_tokens=[6e5]", "grid.models=[{n_layer: 2, d_model: 64, n_head: 2}]",
                   SUITE, "train.val_points=1"])
    spec = expand(cfg)[0]
    result = train(spec)
    mixture = mixture_for(spec.tasks, spec.data)
    rows = {}
    for task in mixture.tasks:
        problems = eval_problems(task, 64, spec.data.seed, spec.data.heldout_fraction)
        rows[task.name] = (problems, evaluate_problems(result.model, task.name, problems, mixture.tokenizer, "cpu",
                                                       task.generator.max_target_chars, batch_size=16))
    return result.model, mixture, rows


def _naive_greedy(model, prompt: torch.Tensor, max_new: int) -> list[int]:
    seq = prompt.clone()
    for _ in range(max_new):
        token = model(seq[None])[0, -1].argmax()
        seq = torch.cat([seq, token[None]])
    return seq[len(prompt):].tolist()


def test_kv_cached_generation_equals_recomputing_the_whole_sequence(trained):
    model, mixture, rows = trained
    problems, _ = rows["cot_2d"]
    same_length = [p for p in problems if len(p.prompt) == len(problems[0].prompt)][:6]
    prompts = torch.from_numpy(np.stack([mixture.tokenizer.encode(p.prompt) for p in same_length]).astype(np.int64))
    model.eval()
    cached = greedy_generate(model, prompts, 12, stop_id=-1)  # no stop: all 12 steps
    for row, prompt in zip(cached.tolist(), prompts):
        assert row == _naive_greedy(model, prompt, 12)


def test_single_pass_exact_match_equals_generated_exact_match(trained):
    """Greedy exact match == every teacher-forced argmax token right (answer and terminator)."""
    _, _, rows = trained
    outcomes = []
    for task in ("add_1d", "add_2d", "mc"):
        for row in rows[task][1]:
            assert row["correct"] == (row["token_correct"] == 1.0), row
            outcomes.append(row["correct"])
    assert any(outcomes) and not all(outcomes)  # both sides of the equivalence are exercised


def test_chain_of_thought_is_judged_on_the_generated_final_answer(trained):
    _, _, rows = trained
    problems, results = rows["cot_2d"]
    assert any(r["correct"] for r in results)
    for p, r in zip(problems, results):
        assert r["answer"] == p.answer and "#" in p.target
        assert r["correct"] == (r["prediction"].rsplit("#", 1)[-1] == p.answer if "#" in r["prediction"]
                                else r["prediction"] == p.answer)


def test_rows_carry_every_score_in_range(trained):
    _, _, rows = trained
    for task, (problems, results) in rows.items():
        assert len(results) == len(problems)
        for r in results:
            assert 0 <= r["token_correct"] <= 1 and r["target_logprob"] <= 0 and 0 <= r["token_brier"] <= 2
            assert r["n_target_tokens"] == len(r["target"]) + 1  # bytes plus the terminator
            assert ("mc_correct" in r) == (task == "mc")
    mc = rows["mc"][1]
    assert all(0 <= r["mc_brier"] <= 2 for r in mc)
    # Greedy right => its first token is the right letter and the argmax over all tokens, so over letters too.
    assert all(r["mc_correct"] for r in mc if r["correct"])


def test_a_problem_longer_than_the_context_is_an_error(trained):
    model, mixture, _ = trained
    long = Problem("9" * 130 + "+1=", "1")
    with pytest.raises(ValueError, match="exceeds the model's seq_len"):
        evaluate_problems(model, "add", [long], mixture.tokenizer, "cpu", 4)


def test_teacher_forced_scores_match_hand_computed_values():
    # Two positions over a 3-token vocabulary; targets 0 then 2.
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]])
    scores = teacher_forced_scores(probs.log(), torch.tensor([0, 2]))
    assert scores["token_correct"] == 0.5  # first right; second wrong (argmax is a 0/1 tie -> 0)
    assert scores["target_logprob"] == pytest.approx(math.log(0.5) + math.log(0.2))
    brier_1 = 0.5**2 + 0.3**2 + 0.2**2
    brier_2 = 0.4**2 + 0.4**2 + 0.8**2
    assert scores["token_brier"] == pytest.approx((brier_1 + brier_2) / 2)


def test_choice_scores_normalise_over_the_option_letters_and_break_ties_to_the_first(trained):
    _, mixture, _ = trained
    tok = mixture.tokenizer
    log_probs = torch.full((tok.vocab_size,), -10.0)
    log_probs[tok.encode("A")[0]] = log_probs[tok.encode("B")[0]] = math.log(0.25)
    problem = Problem("max? A:1 B:2>", "B", choices=("A", "B"))
    scores = _choice_scores(problem, log_probs, tok)
    assert scores["mc_correct"] is False  # tie -> first label A
    assert scores["mc_brier"] == pytest.approx(0.5**2 + 0.5**2)
