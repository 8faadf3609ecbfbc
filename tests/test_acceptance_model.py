"""The acceptance model that varies between branches and along them (``simulator.rounds``): it reduces
to the renewal maths exactly when nothing varies, it matches a Monte Carlo of its own process, and,
fitted from simulated real-like rounds (branch effects, sticky acceptance, a warm-up), it matches a
block bootstrap of those rounds where the renewal model falls 15-30% short."""

from dataclasses import replace

import numpy as np
import pytest

from acceptance_helpers import block_bootstrap_rounds, sticky_branches
from lattts.simulator import rounds
from lattts.simulator.rounds import AcceptanceVariation
from lattts.simulator.speculative import AcceptanceModel, expected_max_rounds, max_rounds_quantiles
from lattts.traces.acceptance import from_branches
from lattts.traces.acceptance_fit import Branch

HIST = [30, 20, 15, 10, 25]  # rounds by accepted draft tokens at draft length 4


@pytest.mark.parametrize("n,branches", [(50, 1), (150, 8), (600, 16), (3000, 64)])
def test_zero_variation_is_the_renewal_maths(n, branches):
    model = AcceptanceModel.from_histogram(HIST, "t", 4)
    renewal = expected_max_rounds(model, 4, n, branches)  # speculative's own exact / normal path
    general = rounds.expected_max(model.rates_at(4), AcceptanceVariation(), n, branches)
    assert general == pytest.approx(renewal, rel=1e-8)
    # and a variation that is there but zero leaves the model on the renewal path
    assert not replace(model, variation=AcceptanceVariation(effect_sd=0.0)).varies


def simulate(cond, var: AcceptanceVariation, n, branches, trials, rng):
    """Monte Carlo of the varied process: shared + per-branch logit shifts, position offsets per round."""
    lc = np.log(np.array(cond) / (1 - np.array(cond)))
    sd = var.effect_sd
    u = (var.effect_mean + np.sqrt(sd * sd * var.shared_fraction) * rng.standard_normal((trials, 1))
         + np.sqrt(sd * sd * (1 - var.shared_fraction)) * rng.standard_normal((trials, branches)))
    produced, count = np.zeros((trials, branches)), np.zeros((trials, branches))
    active, r = np.ones((trials, branches), dtype=bool), 0
    while active.any():
        r += 1
        c = 1 / (1 + np.exp(-(lc + u[..., None] + var.offset_of_round(np.array([r]))[0])))
        accepted = np.cumprod(rng.random(c.shape) < c, axis=2).sum(axis=2)
        produced += np.where(active, accepted + 1, 0)
        count += active
        active = produced < n
    return count.max(axis=1)


@pytest.mark.parametrize("n,branches", [(100, 1), (100, 16), (400, 1), (400, 16)])
def test_varied_model_matches_its_own_monte_carlo(n, branches):
    var = AcceptanceVariation(effect_sd=0.5, effect_mean=-0.05, shared_fraction=0.4, bin_starts=(1, 6, 21),
                              bin_offsets=(-0.4, -0.1, 0.1))
    model = replace(AcceptanceModel.from_histogram(HIST, "t", 4), variation=var)
    sim = simulate(model.rates_at(4), var, n, branches, 4000, np.random.default_rng(3))
    assert expected_max_rounds(model, 4, n, branches) == pytest.approx(sim.mean(), rel=0.015)
    q50, q90 = max_rounds_quantiles(model, 4, n, branches, [0.5, 0.9])[0]
    assert q90 == pytest.approx(np.quantile(sim, 0.9), rel=0.03) and q50 == pytest.approx(np.median(sim), rel=0.03)


@pytest.fixture(scope="module")
def real_like():
    rng = np.random.default_rng(7)
    taus = sticky_branches(60, 220, 3, rng)
    model = from_branches([Branch(str(i), 3, tuple(int(x) for x in t)) for i, t in enumerate(taus)], "simulated").model()
    return taus, model, rng


@pytest.mark.parametrize("n", [128, 256])
def test_model_fitted_on_rounds_matches_their_block_bootstrap(real_like, n):
    taus, model, rng = real_like
    v = model.variation
    assert v is not None and v.effect_sd > 0.2 and v.vif > 1.5  # it sees the branch effect and the stickiness
    pools = [block_bootstrap_rounds(t, n, 200, rng) for t in taus]
    renewal = replace(model, variation=None)
    for B in (1, 16):
        # X: every branch of a batch resampled from a different source (independent effects);
        # S: the whole batch from one source (the effect shared, as one prompt's branches share it)
        src, pick = rng.integers(0, len(taus), (2000, B)), rng.integers(0, 200, (2000, B))
        ref_x = np.array([[pools[s][p] for s, p in zip(ss, pp)] for ss, pp in zip(src, pick)]).max(axis=1)
        ref_s = np.array([pools[s][rng.integers(0, 200, B)].max() for s in src[:, 0]])
        for ref, m in ((ref_x, replace(model, variation=replace(v, shared_fraction=0.0))), (ref_s, model)):
            e, q = expected_max_rounds(m, 3, n, B), max_rounds_quantiles(m, 3, n, B, [0.9])[0, 0]
            assert e == pytest.approx(ref.mean(), rel=0.05), (B, e, ref.mean())
            assert q == pytest.approx(np.quantile(ref, 0.9), rel=0.07), (B, q, np.quantile(ref, 0.9))
        # the renewal model (every round independent) is far short of the slowest of 16 and of any p90
        assert expected_max_rounds(renewal, 3, n, 16) < 0.85 * ref_x.mean() if B == 16 else True
        assert max_rounds_quantiles(renewal, 3, n, B, [0.9])[0, 0] < 0.88 * np.quantile(ref_s, 0.9)


def test_position_offsets_follow_a_warm_up():
    rng = np.random.default_rng(11)
    taus = sticky_branches(40, 200, 3, rng, effect_sd=0.2, stay=0.5, warmup=-1.5, warm_rounds=10)
    v = from_branches([Branch(str(i), 3, tuple(int(x) for x in t)) for i, t in enumerate(taus)], "s").model().variation
    early, late = v.offset_of_round(np.array([4]))[0], v.offset_of_round(np.array([100]))[0]
    assert early < late - 0.5  # the first rounds accept less
