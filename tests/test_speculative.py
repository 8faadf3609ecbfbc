"""Speculative decoding formulas against a Monte Carlo of the rejection process, and the paper."""

import numpy as np
import pytest

from lattts.hardware.devices import find_device
from lattts.models import resolve_model
from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import Workload, generation_latency
from lattts.hardware.profiles import datasheet_profile
from lattts.simulator.speculative import (
    EXACT_ROUNDS_MAX_TOKENS, AcceptanceModel, expected_max_rounds, expected_max_std_normal,
    expected_tokens_per_round, simulate_max_rounds,
)


def test_expected_tokens_per_round_matches_notes():
    # Leviathan et al. 2023, eq. 1: E[tau] = (1 - alpha^(gamma+1)) / (1 - alpha); paper pair alpha 0.831, gamma 5 -> ~3.97
    assert expected_tokens_per_round(0.831, 5) == pytest.approx(3.97, abs=0.005)
    assert AcceptanceModel.iid(0.831, "t").tokens_per_round(5) == pytest.approx(expected_tokens_per_round(0.831, 5))
    assert expected_tokens_per_round(0.5, 0) == 1.0


def test_tau_pmf_sums_to_one_and_matches_simulation():
    rng = np.random.default_rng(0)
    model = AcceptanceModel.iid(0.7, "t")
    pmf = model.tau_pmf(4)
    assert pmf.sum() == pytest.approx(1.0)
    accept = rng.random((200_000, 4)) < 0.7
    tau = np.cumprod(accept, axis=1).sum(axis=1) + 1
    empirical = np.bincount(tau, minlength=6) / len(tau)
    assert np.allclose(empirical, pmf, atol=0.005)


def test_histogram_model_recovers_iid_alpha():
    pmf = AcceptanceModel.iid(0.8, "t").tau_pmf(5)
    counts = list((pmf[1:] * 100_000).round().astype(int))  # accepted = tau - 1
    model = AcceptanceModel.from_histogram(counts, "measured")
    assert model.conditional == pytest.approx((0.8,) * 5, abs=1e-3)
    assert model.tokens_per_round(5) == pytest.approx(expected_tokens_per_round(0.8, 5), rel=1e-3)
    assert model.extrapolates(7) and not model.extrapolates(5)


def test_expected_max_of_normals():
    assert expected_max_std_normal(1) == 0.0
    assert expected_max_std_normal(2) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-4)  # exact: 1/sqrt(pi)
    rng = np.random.default_rng(1)
    assert expected_max_std_normal(16) == pytest.approx(rng.standard_normal((200_000, 16)).max(axis=1).mean(), rel=0.01)


@pytest.mark.parametrize("alpha,gamma,n,branches", [
    (0.831, 5, 31, 1), (0.831, 5, 127, 16), (0.6, 3, 200, 8), (0.9, 8, 64, 64),  # exact regime
    (0.831, 5, 2047, 1), (0.7, 4, 1500, 16), (0.9, 2, 4000, 128),  # normal approximation regime
])
def test_rounds_of_slowest_branch_match_monte_carlo(alpha, gamma, n, branches):
    model = AcceptanceModel.iid(alpha, "t")
    predicted = expected_max_rounds(model, gamma, n, branches)
    trials = 4000 if n < 1000 else 600
    sim = simulate_max_rounds(model, gamma, n, branches, trials, np.random.default_rng(42))
    se = sim.std() / np.sqrt(trials)
    tolerance = 4 * se + (0.0 if n <= EXACT_ROUNDS_MAX_TOKENS else 0.005 * predicted)
    assert abs(predicted - sim.mean()) <= tolerance, (predicted, sim.mean(), se)
    if branches > 1:  # the slowest branch needs more rounds than the average one
        assert predicted > expected_max_rounds(model, gamma, n, 1)


def test_sequence_wise_speedup_golden():
    # paper Table 1: sequence-wise (s1.1-7B draft) is 1.73x faster than baseline at every length for s1.1-32B
    # (96.2/55.5, 157.9/91.1, 280.6/161.9, 419.5/241.9); alpha 0.831 (Appendix A.2), gamma 5 (Appendix A.2, fig 9).
    target, draft = resolve_model("s1.1-32B"), resolve_model("s1.1-7B")
    h100 = Deployment.on(datasheet_profile(find_device("h100-sxm")))
    acc = AcceptanceModel.iid(0.831, "paper")
    for L in (1024, 2048, 4096, 8192):
        lat = generation_latency(Workload(target, 128, draft, acc), h100, [1, 1], [0, 5], [L, L])
        speedup = lat.total_s[0] / lat.total_s[1]
        assert speedup == pytest.approx(1.73, rel=0.20), (L, speedup)
