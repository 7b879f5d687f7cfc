"""Task generators: deterministic, valid, correct answers; the train/held-out split; the mixture."""

import re

import numpy as np
import pytest

from sweep.config.schema import DataConfig, TaskConfig
from sweep.tasks.arithmetic import Addition, Modular, Multiplication, Subtraction
from sweep.tasks.chain_of_thought import CotAddition
from sweep.tasks.choice import LargestChoice
from sweep.tasks.compositional import Compositional, _table
from sweep.tasks.in_context import ShiftCipher
from sweep.tasks.language import Language
from sweep.tasks.mixture import Mixture, eval_problems, mixture_for
from sweep.tasks.multistep import MultiStep
from sweep.tasks.problem import TERMINATOR
from sweep.tasks.registry import GENERATORS, NamedTask, build_generator
from sweep.tasks.split import heldout_score, is_heldout
from sweep.tasks.tokenizer import ByteTokenizer

ONE_OF_EACH = {
    "addition": {"digits": 3}, "subtraction": {"digits": 3}, "multiplication": {"digits": 2, "digits_b": 1},
    "modular": {"digits": 2, "modulus": 11}, "multistep": {"depth": 3}, "compositional": {"steps": 3},
    "shift_cipher": {"shots": 2}, "cot_addition": {"digits": 3}, "largest_choice": {"options": 4},
    "language": {},
}


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_every_registered_kind_is_covered_here():
    assert set(GENERATORS) == set(ONE_OF_EACH)


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
def test_generators_are_deterministic_and_fit_their_declared_answer_length(kind):
    gen = build_generator(kind, ONE_OF_EACH[kind])
    a, b, c = gen.sample(_rng(7), 200), gen.sample(_rng(7), 200), gen.sample(_rng(8), 200)
    assert a == b and a != c
    assert len({p.prompt for p in a}) > 20  # a real space of problems
    for p in a:
        assert p.prompt and p.target and TERMINATOR not in p.prompt + p.target
        assert len(p.target) <= gen.max_target_chars
    assert all(0 < v <= 1 for k, v in gen.chance().items() if k in ("exact_match", "token_accuracy"))


@pytest.mark.parametrize("digits", [1, 2, 3, 5])
def test_addition_and_subtraction_are_right_with_n_digit_operands(digits):
    for p in Addition(digits).sample(_rng(), 200):
        a, b = p.prompt.rstrip("=").split("+")
        assert int(p.target) == int(a) + int(b) and len(a) == len(b) == digits
    for p in Subtraction(digits).sample(_rng(), 200):
        a, b = re.fullmatch(r"(\d+)-(\d+)=", p.prompt).groups()
        assert int(p.target) == int(a) - int(b) and len(a) == len(b) == digits


def test_multiplication_and_modular_arithmetic_are_right():
    for p in Multiplication(3, 2).sample(_rng(), 200):
        a, b = re.fullmatch(r"(\d+)\*(\d+)=", p.prompt).groups()
        assert int(p.target) == int(a) * int(b) and (len(a), len(b)) == (3, 2)
    for op in ("+", "*"):
        for p in Modular(2, modulus=13, op=op).sample(_rng(), 200):
            a, b, m = re.fullmatch(rf"(\d+)\{op}(\d+)%(\d+)=", p.prompt).groups()
            value = int(a) + int(b) if op == "+" else int(a) * int(b)
            assert int(p.target) == value % 13 and m == "13"


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_multistep_answer_is_the_chain_evaluated_in_order(depth):
    for p in MultiStep(depth).sample(_rng(), 200):
        *statements, query = p.prompt.split(",")
        assert len(statements) == depth + 1
        env = {}
        for s in statements:
            name, expr = s.split("=")
            env[name] = eval(expr, {}, dict(env))  # letters, digits, + and - only
            assert 0 <= env[name] <= 99
        assert query == f"{name}?" and int(p.target) == env[name]


def test_compositional_answer_is_the_lookup_of_every_key_and_each_key_is_reused():
    gen = Compositional(steps=4, n_keys=64)
    keys, values = _table(64, 2, 2, 0)
    table = dict(zip(keys, values))
    problems = gen.sample(_rng(), 500)
    for p in problems:
        asked = p.prompt.removeprefix("map:").removesuffix("=").split(" ")
        assert len(asked) == 4 and p.target == " ".join(table[k] for k in asked)
    # Every single lookup is learnable from training problems: each key shows up in many of them.
    train_keys = {k for p in problems if not is_heldout(p.key, 0.1)
                  for k in p.prompt.removeprefix("map:").removesuffix("=").split(" ")}
    assert train_keys == set(keys)
    assert list(_table(64, 2, 2, 1)[1]) != list(values)  # map_seed changes the map


@pytest.mark.parametrize("shots", [0, 1, 4])
def test_shift_cipher_answer_follows_the_rule_shown_in_the_examples(shots):
    for p in ShiftCipher(shots=shots).sample(_rng(), 200):
        *examples, query = p.prompt.removeprefix("shift:").split(",")
        assert len(examples) == shots
        shift = (ord(p.target[0]) - ord(query[0])) % 26
        assert 1 <= shift <= 25 and query.endswith(">")
        for pair in examples + [query + p.target]:
            plain, coded = pair.split(">")
            assert coded == "".join(chr(97 + (ord(c) - 97 + shift) % 26) for c in plain)


def test_chain_of_thought_scratchpad_is_right_and_holds_out_the_same_problems_as_direct_addition():
    cot, direct = CotAddition(3).sample(_rng(3), 300), Addition(3).sample(_rng(3), 300)
    for c, d in zip(cot, direct):
        assert c.prompt == "cot:" + d.prompt and c.answer == d.target and c.key == d.key
        assert c.chain_of_thought and c.target.endswith("#" + d.target)
        for step in c.target.split("#")[0].split(","):
            lhs, rhs = step.split("=")
            assert sum(int(x) for x in lhs.split("+")) == int(rhs)
    problems = {"cot": NamedTask("cot", CotAddition(3)), "direct": NamedTask("direct", Addition(3))}
    held = {name: {p.key for p in eval_problems(t, 300, 9, 0.1)} for name, t in problems.items()}
    assert all(is_heldout(k, 0.1) for k in held["cot"]) and held["cot"] & held["direct"]


def test_multiple_choice_target_is_the_label_of_the_largest_option():
    gen = LargestChoice(options=5, digits=2)
    for p in gen.sample(_rng(), 300):
        shown = dict(part.split(":") for part in p.prompt.removeprefix("max? ").removesuffix(">").split(" "))
        assert p.choices == tuple("ABCDE") and p.target in p.choices
        assert int(shown[p.target]) == max(int(v) for v in shown.values())
        assert len(set(shown.values())) == 5  # no ties
    assert gen.chance()["mc_accuracy"] == 0.2


def test_language_target_is_most_likely_successor_and_fits_length():
    lang = Language()
    for p in lang.sample(_rng(), 100):
        words = p.prompt.split()
        assert lang.min_words - 1 <= len(words) <= lang.max_words - 1
        assert p.target.isalpha() and len(p.target) <= lang.max_target_chars


def test_registry_rejects_unknown_kinds_arguments_and_values():
    with pytest.raises(ValueError, match="unknown task kind"):
        build_generator("sorting", {})
    with pytest.raises(ValueError, match="unknown: \\['base'\\]"):
        build_generator("addition", {"digits": 2, "base": 3})
    with pytest.raises(ValueError, match="missing: \\['digits'\\]"):
        build_generator("addition", {})
    with pytest.raises(ValueError, match="depth must be in 1..20"):
        build_generator("multistep", {"depth": 0})
    with pytest.raises(ValueError, match="options must be in 2..8"):
        build_generator("largest_choice", {"options": 1})


def test_split_is_a_fixed_fraction():
    scores = [heldout_score(f"{i}+{i}=") for i in range(20000)]
    assert 0.09 < np.mean(np.array(scores) < 0.1) < 0.11
    assert heldout_score("12+3=") == heldout_score("12+3=")


def _mixture():
    tasks = (NamedTask("add_2d", Addition(2)), NamedTask("cot_2d", CotAddition(2)),
             NamedTask("comp", Compositional(steps=2, n_keys=32)), NamedTask("mc", LargestChoice(3, 2)),
             NamedTask("language", Language()))
    return Mixture(tasks, (1.0, 1.0, 1.0, 1.0, 2.0), heldout_fraction=0.1, tokenizer=ByteTokenizer())


def _documents(mixture, n_batches):
    for index in range(n_batches):
        text = bytes(mixture.batch(0, index, 16, 128).ravel().astype(np.uint8)).decode()
        yield from text.split(TERMINATOR)[1:-1]  # whole documents only (rows cut documents at the edges)


def test_training_batches_never_contain_an_evaluation_problem_checked_by_hash():
    mixture = _mixture()
    held = {t.name: eval_problems(t, 256, 1234, 0.1) for t in mixture.tasks}
    held_docs = {p.prompt + p.target for problems in held.values() for p in problems}
    held_keys = {p.key for problems in held.values() for p in problems}
    assert len(held_docs) > 500
    seen = 0
    for doc in _documents(mixture, 40):
        assert doc not in held_docs, doc
        if doc.startswith(("cot:", "map:", "max? ")) or re.fullmatch(r"\d+\+\d+=\d+", doc):
            prompt = doc[: doc.index("=") + 1] if not doc.startswith("max? ") else doc[: doc.index(">") + 1]
            key = prompt.removeprefix("cot:")
            assert key not in held_keys and not is_heldout(key, 0.1), doc
            seen += 1
    assert seen > 200


def test_batches_are_pure_functions_of_seed_and_index():
    mixture = _mixture()
    assert np.array_equal(mixture.batch(3, 5, 4, 64), mixture.batch(3, 5, 4, 64))
    assert not np.array_equal(mixture.batch(3, 5, 4, 64), mixture.batch(3, 6, 4, 64))
    assert mixture.batch(3, 5, 4, 64).shape == (4, 65) and mixture.batch(3, 5, 4, 64).dtype == np.int64
    assert not np.array_equal(mixture.batch(3, 5, 4, 64, "heldout"), mixture.batch(3, 5, 4, 64))


def test_a_zero_weight_task_is_evaluated_but_never_trained_on():
    suite = [TaskConfig("add_2d", "addition", {"digits": 2}, 1.0), TaskConfig("mult", "multiplication",
                                                                           {"digits": 2}, 0.0)]
    mixture = mixture_for(suite, DataConfig())
    assert [t.name for t in mixture.tasks] == ["add_2d", "mult"]
    text = bytes(np.concatenate([mixture.batch(0, i, 8, 64).ravel() for i in range(10)]).astype(np.uint8))
    assert b"*" not in text and b"+" in text


def test_eval_problems_are_distinct_heldout_and_capped_by_space():
    one_digit = NamedTask("add_1d", Addition(1))
    problems = eval_problems(one_digit, 256, 1234, 0.1)
    assert 3 <= len(problems) < 100  # only ~10% of the 100 one-digit sums are held out
    assert len({p.prompt for p in problems}) == len(problems)
    assert all(is_heldout(p.key, 0.1) for p in problems)
    assert len(eval_problems(NamedTask("add_3d", Addition(3)), 256, 1234, 0.1)) == 256
