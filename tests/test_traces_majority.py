"""The exact majority-vote estimator against brute force, Monte Carlo and the Qwen2.5-Math traces."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lattts.traces.curve import embedded_curve
from lattts.traces.majority import AnswerCounts, majority_correct, majority_matrix, pass_at_k


def vote_value(labels, correct):
    """Brute force of one draw: fraction of the tied plurality answers that are correct (None: no vote)."""
    votes = Counter(a for a in labels if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    tied = [a for a, v in votes.items() if v == top]
    return sum(a in correct for a in tied) / len(tied)


def brute_without_replacement(labels, correct, b):
    subsets = list(itertools.combinations(labels, b))
    return sum(vote_value(s, correct) for s in subsets) / len(subsets)


def brute_with_replacement(labels, correct, b):
    draws = list(itertools.product(labels, repeat=b))
    return sum(vote_value(d, correct) for d in draws) / len(draws)


def counts_of(labels, correct):
    groups = Counter(a for a in labels if a is not None)
    return AnswerCounts(tuple(v for a, v in groups.items() if a in correct),
                        tuple(v for a, v in groups.items() if a not in correct), labels.count(None))


problem = st.tuples(
    st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=9),
    st.sets(st.integers(0, 4), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(problem)
def test_exact_matches_enumeration_of_all_subsets(case):
    labels, correct = case
    branches = list(range(1, len(labels) + 1))
    probs, extrapolated = majority_correct(counts_of(labels, correct), branches)
    assert not extrapolated.any()
    expected = [brute_without_replacement(labels, correct, b) for b in branches]
    assert probs == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=1, max_size=4),
                 st.sets(st.integers(0, 3), max_size=2)))
def test_beyond_n_matches_enumeration_with_replacement(case):
    labels, correct = case
    branches = list(range(len(labels) + 1, 7))
    probs, extrapolated = majority_correct(counts_of(labels, correct), branches)
    assert extrapolated.all()
    assert probs == pytest.approx([brute_with_replacement(labels, correct, b) for b in branches], abs=1e-12)


@pytest.mark.parametrize("labels,correct", [
    (["a"] * 20 + ["b"] * 15 + ["c"] * 12 + ["d"] * 5 + [None] * 8 + list(range(4)), {"b"}),
    (["a"] * 30 + ["b"] * 30 + ["c"] * 4, {"a", "c"}),
    (list(range(40)), {7}),
])
def test_matches_monte_carlo_at_64_samples(labels, correct):
    rng = np.random.default_rng(5)
    branches = [3, 8, 17, 40]
    probs, _ = majority_correct(counts_of(labels, correct), branches)
    arr = np.array(labels, dtype=object)
    for b, p in zip(branches, probs):
        sims = [vote_value(list(arr[rng.permutation(len(arr))[:b]]), correct) for _ in range(6000)]
        assert p == pytest.approx(np.mean(sims), abs=4 * np.std(sims) / np.sqrt(len(sims)) + 1e-3)


def test_known_values():
    # 2 correct of 3, B = 2: draws {c,c} win, {c,w} tie at one vote each: 1/3 * 1 + 2/3 * 1/2
    assert majority_correct(AnswerCounts((2,), (1,)), [2])[0][0] == pytest.approx(2 / 3)
    # without unanswered samples B = 2 equals B = 1: a split pair is a coin flip
    one, two = majority_correct(AnswerCounts((5,), (2, 1)), [1, 2])[0]
    assert one == pytest.approx(two) == pytest.approx(5 / 8)
    # with them it does not: a correct sample beside an unanswered one wins outright
    # (C(5,2) + 5*3 + 5*3/2) / C(11,2)
    assert majority_correct(AnswerCounts((5,), (2, 1), 3), [2])[0][0] == pytest.approx(32.5 / 55)
    # unanswered samples never win: all-unanswered draws are wrong
    assert majority_correct(AnswerCounts((1,), (), 3), [1, 4])[0] == pytest.approx([0.25, 1.0])
    assert majority_correct(AnswerCounts((), (4,), 1), [3])[0][0] == 0.0


def test_matrix_reuses_equal_problems_and_flags_extrapolation():
    problems = [AnswerCounts((3,), (1,)), AnswerCounts((3,), (1,)), AnswerCounts((2,), (1, 1), 1)]
    probs, ext = majority_matrix(problems, [1, 4, 5])
    assert probs[0] == pytest.approx(probs[1])
    assert ext.tolist() == [[False, False, True], [False, False, True], [False, False, False]]
    with pytest.raises(ValueError):
        majority_matrix(problems, [0])


def test_pass_at_k_formula_and_bound():
    n, c = 8, 3
    ks = np.arange(1, 13)
    p, ext = pass_at_k([n], [c], ks)
    for k, value in zip(ks, p[0]):
        want = 1 - math.comb(n - c, k) / math.comb(n, k) if k <= n else 1 - (1 - c / n) ** k
        assert value == pytest.approx(want)
    assert ext[0].tolist() == [k > n for k in ks]
    maj, _ = majority_correct(AnswerCounts((3,), (2, 2, 1)), ks)
    assert (p[0] >= maj - 1e-12).all()  # pass@k bounds any vote


# --- the Qwen2.5-Math MATH-100 traces (8 samples per problem), package data ----------------------

def qwen_labels():
    curve = embedded_curve("qwen2.5-math-math100-n8")
    problems = []
    for counts in curve.answers.counts[0]:
        labels = [("c", i) for i, n in enumerate(counts.correct) for _ in range(n)]
        labels += [("w", i) for i, n in enumerate(counts.wrong) for _ in range(n)] + [None] * counts.unanswered
        problems.append((labels, {("c", i) for i in range(len(counts.correct))}))
    return curve, problems


def test_qwen_single_sample_accuracy_is_728_of_800():
    curve, problems = qwen_labels()
    assert sum(len(labels) for labels, _ in problems) == 800
    assert curve.accuracy(1, 4096) == pytest.approx(728 / 800) == pytest.approx(0.91)


def test_qwen_majority_equals_enumeration_of_every_subset():
    curve, problems = qwen_labels()
    for b in range(1, 9):
        brute = np.mean([brute_without_replacement(labels, correct, b) for labels, correct in problems])
        assert float(curve.at_lengths(b)[0]) == pytest.approx(brute, abs=1e-12), b
