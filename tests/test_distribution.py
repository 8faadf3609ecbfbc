"""The predicted latency distribution (``simulator.distribution``): its quantile is the quantile of the
mixture, fixed rounds give the device's lognormal alone, and natural lengths and speculative rounds
agree with a Monte Carlo of the same ingredients."""

import numpy as np
import pytest

from lattts.hardware.profiles import load_profile
from lattts.models import resolve_model
from lattts.simulator.deployment import Deployment
from lattts.simulator.distribution import LatencySpread, latency_nodes, latency_quantile, p_within
from lattts.simulator.generation import Workload, generation_latency, latency_at_rounds
from lattts.simulator.lengths import LengthDistribution
from lattts.simulator.speculative import AcceptanceModel, simulate_branch_rounds, simulate_max_rounds

PROFILE = "tests/data/golden/cpu-profile.json"
SPREAD = LatencySpread(0.08, "test")


def setup(natural=None):
    spec = resolve_model("cpu-small")
    work = Workload(spec, 32, spec.first_layers(3), AcceptanceModel.iid(0.6, "test"), draft_shares_weights=True,
                    natural_lengths=natural)
    return work, Deployment.on(load_profile(PROFILE))


def test_fixed_rounds_give_the_device_spread_alone():
    work, deploy = setup()
    nodes = latency_nodes(work, deploy, [1, 8], [0, 0], [128, 128])  # budget forcing, no draft: 127 steps always
    mean = generation_latency(work, deploy, [1, 8], [0, 0], [128, 128]).total_s
    assert latency_quantile(nodes, SPREAD) == pytest.approx(mean * np.exp(1.2816 * 0.08), rel=1e-3)
    assert p_within(nodes, SPREAD, float(mean[0])) == pytest.approx([0.5, 0.0], abs=1e-3)


def test_quantile_is_the_quantile_of_the_mixture():
    work, deploy = setup()
    nodes = latency_nodes(work, deploy, [1, 4, 16, 4], [2, 2, 3, 0], [64, 300, 900, 64])
    for q in (0.5, 0.9, 0.99):
        t = latency_quantile(nodes, SPREAD, q)
        assert np.allclose([p_within(nodes[i:i + 1], SPREAD, t[i])[0] for i in range(len(t))], q, atol=1e-3)


@pytest.mark.parametrize("branches,gamma", [(1, 0), (8, 0), (1, 3), (8, 3)])
def test_distribution_matches_a_monte_carlo_of_rounds_lengths_and_device(branches, gamma):
    rng = np.random.default_rng(4)
    lengths = LengthDistribution(tuple(int(x) for x in rng.integers(40, 400, 300)), "test")
    natural = gamma == 0
    work, deploy = setup(lengths if natural else None)
    L, trials = 300, 3000
    if natural:  # the longest of B natural lengths, capped at L, then L-1 decode steps... per trial
        longest = np.minimum(rng.choice(lengths.samples, (trials, branches)).max(axis=1), L)
        steps = longest - 1.0
    else:
        steps = simulate_max_rounds(work.acceptance, gamma, L - 1, branches, trials, rng)
    t = latency_at_rounds(work, deploy, float(branches), gamma, steps) * np.exp(SPREAD.sd_log * rng.standard_normal(trials))
    nodes = latency_nodes(work, deploy, branches, gamma, L)
    assert latency_quantile(nodes, SPREAD)[0] == pytest.approx(np.quantile(t, 0.9), rel=0.02)
    budget = float(np.quantile(t, 0.6))
    assert p_within(nodes, SPREAD, budget)[0] == pytest.approx(0.6, abs=0.03)


def test_three_point_pricing_equals_pricing_every_node():
    from lattts.simulator import distribution

    work, deploy = setup()
    B, G, L = np.array([1.0, 8.0, 32.0]), 3, np.array([200.0, 900.0, 3000.0])
    r = distribution._round_nodes(work, B, G, L)
    direct = latency_at_rounds(work, deploy, B[:, None], G, r)
    assert distribution._at_rounds(work, deploy, B[:, None], G, r) == pytest.approx(direct, rel=1e-7)


def test_distribution_where_finished_branches_leave_matches_a_round_by_round_monte_carlo():
    # a server's branch leaves the batch when it has its tokens: price every simulated round at the
    # branches still running, against the nodes' quantile (device spread off, so the rounds are compared)
    from dataclasses import replace

    from lattts.simulator.generation import EngineSchedule, _prefill
    from round_helpers import leaving_cost_s

    work, deploy = setup()
    work = replace(work, schedule=EngineSchedule(finished_leave=True))
    deploy = replace(deploy, profile=replace(deploy.profile, sample_call_s=0.0, sample_s_per_logit=0.0))
    B, gamma, L, trials = 8, 3, 96, 2000
    R = simulate_branch_rounds(work.acceptance, gamma, L - 1, B, trials, np.random.default_rng(5)).astype(int)
    mu = work.acceptance.tokens_per_round(gamma)
    rounds_s = leaving_cost_s(work.target, work.draft, deploy, R, gamma, work.prompt_tokens + 1.0, mu)
    t = float(_prefill(work, deploy, B, True)) + rounds_s
    nodes = latency_nodes(work, deploy, B, gamma, L)
    none = LatencySpread(1e-9, "off")
    assert latency_quantile(nodes, none, 0.9)[0] == pytest.approx(np.quantile(t, 0.9), rel=0.03)
    assert latency_quantile(nodes, none, 0.5)[0] == pytest.approx(np.quantile(t, 0.5), rel=0.03)


def test_a_prediction_for_later_carries_the_device_speed_the_calibration_saw():
    from dataclasses import replace

    from lattts.plan import latency_spread

    golden = load_profile(PROFILE)
    prof = replace(golden, provenance={**golden.provenance, "errors": {"heldout": {"median": 0.06745}},
                                       "drift": {"paired": True, "drift_p90": 0.16449}})
    assert latency_spread(prof).sd_log == pytest.approx(np.hypot(0.10, 0.10))  # 6.7% median |e|; p90 |drift| 16%
    assert latency_spread(prof, device_drift=False).sd_log == pytest.approx(0.10)  # a run the anchor re-timed
    unpaired = replace(prof, provenance={**prof.provenance, "drift": {"paired": False}})
    assert latency_spread(unpaired).sd_log == pytest.approx(0.10)
    assert "p90 |drift| 16.4%" in latency_spread(prof).source
    # anchor timings taken later (a validation session) replace the calibration's, shift and spread alike
    later = latency_spread(prof, speed_factors=[1.2, 1.2, 1 / 1.2, 1.2])
    assert later.sd_log == pytest.approx(np.hypot(0.10, np.log(1.2))) and "4 anchor timings" in later.source
