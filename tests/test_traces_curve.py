"""accuracy(B, L) from traces: bootstrap intervals, interpolation in log2(L), and MeasuredCurve."""

import json
from pathlib import Path

import numpy as np
import pytest

from lattts.errors import UserError
from lattts.traces.curve import MeasuredCurve, bootstrap_means, curve_points, embedded_curve, estimate
from lattts.traces.groups import AnswerSets, group_answers
from lattts.traces.majority import AnswerCounts
from lattts.traces.readers import load_traces


def random_problems(n_problems, seed, samples=16):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_problems):
        draws = rng.multinomial(samples, rng.dirichlet([2.0, 1.0, 1.0, 0.3]))
        out.append(AnswerCounts((int(draws[0]),) if draws[0] else (), tuple(int(d) for d in draws[1:3] if d),
                                int(draws[3])))
    return out


def sets(problems, lengths=None):
    return AnswerSets(problems=tuple(str(i) for i in range(len(problems[0]))), lengths=lengths,
                      counts=tuple(tuple(p) for p in problems))


def width(points):
    return np.mean([p.ci_high - p.ci_low for p in points])


def test_bootstrap_interval_contains_estimate_and_narrows_with_more_problems():
    few = random_problems(25, seed=1)
    many = few * 16  # the same spread of problems, 16 times as many
    p_few = curve_points(estimate(sets([few]), [1, 3, 8]), resamples=2000, seed=3)
    p_many = curve_points(estimate(sets([many]), [1, 3, 8]), resamples=2000, seed=3)
    for p in p_few + p_many:
        assert p.ci_low <= p.accuracy <= p.ci_high
    assert [p.accuracy for p in p_few] == pytest.approx([p.accuracy for p in p_many])
    assert width(p_many) < 0.4 * width(p_few)  # ~ 1/sqrt(16)


def test_bootstrap_means_is_seeded_and_resamples_problems():
    values = np.arange(10.0)[:, None]
    a, b = bootstrap_means(values, 500, seed=7), bootstrap_means(values, 500, seed=7)
    assert np.array_equal(a, b) and a.shape == (500, 1)
    assert a.mean() == pytest.approx(4.5, abs=0.1) and a.min() >= 0 and a.max() <= 9


def test_pass_at_k_bounds_majority_everywhere():
    est = estimate(sets([random_problems(40, seed=2)]), [1, 2, 4, 8, 16, 32])
    assert (est.pass_at_k >= est.majority - 1e-12).all()
    for p in curve_points(est, resamples=200):
        assert p.pass_at_k >= p.accuracy - 1e-12
        assert p.extrapolated == (p.branches > 16)


def test_multi_budget_interpolates_in_log2_and_refuses_outside():
    short, long = random_problems(30, seed=4), random_problems(30, seed=5)
    est = estimate(sets([short, long], lengths=(1024, 4096)), [1, 4])
    points = {(p.max_tokens, p.branches): p for p in curve_points(est, [512, 1024, 2048, 4096, 8192], resamples=200)}
    for b in (1, 4):
        lo, hi, mid = points[(1024, b)], points[(4096, b)], points[(2048, b)]
        assert mid.interpolated and not lo.interpolated and mid.measured
        assert mid.accuracy == pytest.approx((lo.accuracy + hi.accuracy) / 2)  # 2048 is halfway in log2
        assert mid.ci_low <= mid.accuracy <= mid.ci_high
        for L in (512, 8192):
            assert np.isnan(points[(L, b)].accuracy) and not points[(L, b)].measured
            assert points[(L, b)].to_json()["accuracy"] is None


def test_measured_curve_multi_budget(tmp_path):
    rows = []
    for L, right in ((1024, 2), (2048, 3), (4096, 4)):  # of 4 samples, `right` correct per problem
        for p in range(5):
            for s in range(4):
                rows.append({"problem_id": p, "sample_id": s, "answer": "ok" if s < right else f"no{s}",
                             "correct": s < right, "max_tokens": L})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    curve = MeasuredCurve.from_traces(load_traces(path))
    assert curve.kind == "measured" and str(path) in curve.source and curve.lengths == (1024, 2048, 4096)
    assert curve.accuracy(1, [1024, 2048, 4096]) == pytest.approx([0.5, 0.75, 1.0])
    assert curve.accuracy(1, 2 ** 11.5) == pytest.approx(0.875)  # halfway between 2048 and 4096 in log2
    assert np.isnan(curve.accuracy(1, 512)) and np.isnan(curve.accuracy(1, 8192))
    assert np.isnan(curve.accuracy(5, 2048))  # more branches than samples: not answered
    assert curve.search_lengths(2) == [1024, 1448, 2048, 2896, 4096]


def test_measured_curve_single_budget_answers_from_its_longest_sample():
    curve = embedded_curve("qwen2.5-math-math100-n8")
    assert curve.lengths is None and curve.full_tokens == curve.search_lengths()[0] > 1000
    L = curve.full_tokens
    assert np.isnan(curve.accuracy(1, L - 1)) and curve.accuracy(1, L) == curve.accuracy(1, 10 * L) == pytest.approx(0.91)
    assert curve.accuracy(8, L) > curve.accuracy(1, L)
    assert np.isnan(curve.accuracy(16, L))


def test_single_budget_without_tokens_needs_lengths(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"problem_id": p, "sample_id": s, "answer": str(s % 2), "correct": s % 2 == 0})
                            + "\n" for p in range(3) for s in range(3)))
    curve = MeasuredCurve.from_traces(load_traces(path))
    assert curve.accuracy(1, 7) == pytest.approx(2 / 3) and curve.accuracy(3, 100000) == pytest.approx(1.0)
    with pytest.raises(UserError, match="--lengths"):
        curve.search_lengths()


def test_group_answers_from_real_traces():
    answers = group_answers(load_traces(Path(__file__).parent / "data" / "qwen2.5-math_math100_n8.excerpt.jsonl"))
    by_id = dict(zip(answers.problems, answers.counts[0]))
    assert by_id["0"] == AnswerCounts((8,), (), 0)
    assert sorted(by_id["6"].correct) == [3] and sorted(by_id["6"].wrong) == [1, 1, 1, 2]
    assert by_id["17"] == AnswerCounts((4,), (4,), 0)
