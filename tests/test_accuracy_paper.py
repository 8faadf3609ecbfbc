"""The embedded default curve against the paper's published Table 1."""

import math

import numpy as np
import pytest

from lattts.errors import UserError
from lattts.simulator.accuracy import (
    fit_concentration, interp_log2, log2_grid, majority_accuracy_beta, paper_curve, resolve_curve,
)

# paper Table 1 (s1.1-32B, MATH-500): baseline and latency-optimal (B=16, Appendix A.2) accuracy per length
BASELINE = {1024: 0.750, 2048: 0.834, 4096: 0.849, 8192: 0.854}
LATENCY_OPTIMAL = {1024: 0.823, 2048: 0.859, 4096: 0.917, 8192: 0.927}


def test_reproduces_the_points_it_was_fitted_to():
    curve = paper_curve()
    for L, acc in BASELINE.items():
        assert curve.accuracy(1, L) == pytest.approx(acc, abs=1e-9)
    for L, acc in LATENCY_OPTIMAL.items():
        assert curve.accuracy(16, L) == pytest.approx(acc, abs=1e-6)


def test_labelled_as_fitted_to_published_summary():
    curve = resolve_curve("s1.1-32b-math500-paper")
    assert curve.kind == "fitted" and "fitted to published summary" in curve.source and "Table 1" in curve.source


def test_majority_vote_improves_with_branches_and_saturates():
    curve = paper_curve()
    acc = [float(curve.accuracy(b, 4096)) for b in (1, 4, 16, 64, 128)]
    assert all(b >= a - 1e-12 for a, b in zip(acc, acc[1:]))
    assert acc[-1] - acc[-2] < 0.01


def test_beta_majority_against_monte_carlo():
    rng = np.random.default_rng(3)
    mean, k, B = 0.75, 2.5, 7
    p = rng.beta(mean * k, (1 - mean) * k, 400_000)
    votes = rng.binomial(B, p)
    assert majority_accuracy_beta(mean, k, B) == pytest.approx(np.mean(votes > B / 2), abs=0.003)
    assert fit_concentration(mean, majority_accuracy_beta(mean, k, B), B) == pytest.approx(k, rel=1e-4)


def test_interpolates_in_log2_and_refuses_outside():
    curve = paper_curve()
    mid = float(curve.accuracy(1, int(math.sqrt(1024 * 2048))))
    assert mid == pytest.approx((BASELINE[1024] + BASELINE[2048]) / 2, abs=1e-3)
    assert np.isnan(curve.accuracy(1, 512)) and np.isnan(curve.accuracy(1, 16384))
    assert np.isnan(interp_log2(np.array([0.5]), np.array([100]), 200))


def test_search_grid_contains_measured_budgets():
    grid = log2_grid([1024, 2048, 8192], 4)
    assert {1024, 2048, 8192} <= set(grid) and len(grid) == 13 and grid == sorted(grid)


def test_unknown_curve():
    with pytest.raises(UserError, match="unknown accuracy curve"):
        resolve_curve("nope")
