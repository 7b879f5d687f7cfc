import numpy as np
import pytest

from sweep.tasks.arithmetic import Addition
from sweep.tasks.language import Language
from sweep.tasks.mixture import Mixture, eval_problems
from sweep.tasks.registry import GENERATORS, NamedTask, build_generator
from sweep.tasks.split import heldout_score, is_heldout


@pytest.mark.parametrize("digits", [1, 2, 3, 5])
def test_addition_answers_are_correct_and_have_n_digit_operands(digits):
    for p in Addition(digits).sample(np.random.default_rng(0), 200):
        a, b = p.prompt.rstrip("=").split("+")
        assert int(p.target) == int(a) + int(b)
        assert len(a) == len(b) == digits
        assert len(p.target) <= Addition(digits).max_target_chars


@pytest.mark.parametrize("kind, args", [("addition", {"digits": 3}), ("language", {})])
def test_generators_are_deterministic_given_the_seed(kind, args):
    gen = build_generator(kind, args)
    a = gen.sample(np.random.default_rng(7), 50)
    b = gen.sample(np.random.default_rng(7), 50)
    c = gen.sample(np.random.default_rng(8), 50)
    assert a == b and a != c


def test_language_target_is_most_likely_successor_and_fits_length():
    lang = Language()
    for p in lang.sample(np.random.default_rng(0), 100):
        words = p.prompt.split()
        assert lang.min_words - 1 <= len(words) <= lang.max_words - 1
        assert p.target.isalpha() and len(p.target) <= lang.max_target_chars


def test_registry_rejects_unknown_kinds_and_arguments():
    with pytest.raises(ValueError, match="unknown task kind"):
        build_generator("sorting", {})
    with pytest.raises(ValueError, match="unknown: \\['base'\\]"):
        build_generator("addition", {"digits": 2, "base": 3})
    with pytest.raises(ValueError, match="missing: \\['digits'\\]"):
        build_generator("addition", {})
    assert set(GENERATORS) >= {"addition", "language"}


def test_split_is_a_fixed_fraction():
    scores = [heldout_score(f"{i}+{i}=") for i in range(20000)]
    assert 0.09 < np.mean(np.array(scores) < 0.1) < 0.11
    assert heldout_score("12+3=") == heldout_score("12+3=")


def _mixture():
    tasks = tuple(NamedTask(f"add_{d}d", Addition(d)) for d in (1, 2, 3)) + (NamedTask("language", Language()),)
    return Mixture(tasks, (1.0, 1.0, 1.0, 2.0), heldout_fraction=0.1)


def test_training_batches_never_contain_heldout_problems():
    mixture = _mixture()
    held = {p.prompt for t in mixture.tasks for p in eval_problems(t, 256, 1234, 0.1)}
    assert held
    for index in range(30):
        text = bytes(mixture.batch(0, index, 16, 128).ravel()).decode()
        for line in text.split("\n")[1:-1]:  # whole documents only (rows cut documents at the edges)
            prompt = line[: line.index("=") + 1] if "=" in line else line[: line.rindex(" ") + 1]
            assert not is_heldout(prompt, 0.1), line
            assert prompt not in held


def test_batches_are_pure_functions_of_seed_and_index():
    mixture = _mixture()
    assert np.array_equal(mixture.batch(3, 5, 4, 64), mixture.batch(3, 5, 4, 64))
    assert not np.array_equal(mixture.batch(3, 5, 4, 64), mixture.batch(3, 6, 4, 64))
    assert mixture.batch(3, 5, 4, 64).shape == (4, 65)


def test_eval_problems_are_distinct_heldout_and_capped_by_space():
    one_digit = NamedTask("add_1d", Addition(1))
    problems = eval_problems(one_digit, 256, 1234, 0.1)
    assert 3 <= len(problems) < 100  # only ~10% of the 100 one-digit sums are held out
    assert len({p.prompt for p in problems}) == len(problems)
    assert all(is_heldout(p.prompt, 0.1) for p in problems)
    assert len(eval_problems(NamedTask("add_3d", Addition(3)), 256, 1234, 0.1)) == 256
