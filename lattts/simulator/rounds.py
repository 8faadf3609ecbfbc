"""Rounds of the slowest of B lock-step branches when acceptance varies, as a distribution.

Renewal maths (``speculative``) treats every round of every branch as an independent draw from one
pmf. Real acceptance is not like that (Llama-3.1-8B EAGLE and n-gram logs; lattts' own runs):

- branches differ: a branch (and its prompt) accepts more or less than the pooled rates all along.
  Modelled as a logit shift u on every conditional acceptance, u ~ N(mean, sd^2), of which a
  fraction ``shared_fraction`` of the variance is common to the B branches of one batch (the
  prompt's part) and the rest drawn per branch;
- rounds within a branch are correlated: the round count of a branch spreads sqrt(VIF) times as
  wide as the renewal count around its mean (VIF: long-run over short-run variance of tokens per
  round within a branch);
- acceptance moves with the position in the generation: a logit offset per bin of round indices,
  flat beyond the last bin measured.

For one branch at node u the round count R to reach n tokens is exact (convolution of per-round
pmfs) up to ``EXACT_VARIED_MAX_TOKENS`` and normal above; then
    P(max_b R_b <= r) = sum_s w_s [ sum_i w_i F(r | u_s + u_i) ]^B
over equal-mass nodes u_s of the shared part and Gauss-Hermite nodes u_i of the per-branch part.
With sd 0, VIF 1 and no offsets this is the renewal distribution; ``speculative`` then keeps its own
exact path, so today's numbers stay as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lattts.simulator import normal

EXACT_VARIED_MAX_TOKENS = 160  # exact per-node convolution up to here; normal per node above
SHARED_NODES, BRANCH_NODES = 12, 7
GRID_POINTS = 240  # rounds grid of the normal regime


@dataclass(frozen=True)
class AcceptanceVariation:
    """How acceptance varies between branches and along them (logit scale), fitted from ordered rounds."""

    effect_sd: float = 0.0  # sd of a branch's logit shift u
    effect_mean: float = 0.0  # centre of u (the pooled rates are not the rates of the typical branch)
    shared_fraction: float = 1.0  # share of var(u) common to the batch (the prompt's)
    vif: float = 1.0  # variance inflation of one branch's round count from correlated rounds (>= 1)
    bin_starts: tuple[int, ...] = ()  # first round (1-based) of each position bin
    bin_offsets: tuple[float, ...] = ()  # logit offset of each bin; the last holds beyond
    measured_tokens: int = 0  # tokens per branch the fit saw (longer predictions extrapolate in length)
    source: str = ""

    @property
    def trivial(self) -> bool:
        return self.effect_sd == 0.0 and self.effect_mean == 0.0 and self.vif == 1.0 and not any(self.bin_offsets)

    def offset_of_round(self, r: np.ndarray) -> np.ndarray:
        """Logit offset of rounds r (1-based)."""
        if not self.bin_starts:
            return np.zeros(np.shape(r))
        idx = np.searchsorted(np.asarray(self.bin_starts), np.asarray(r), side="right") - 1
        return np.asarray(self.bin_offsets)[np.clip(idx, 0, len(self.bin_offsets) - 1)]

    def nodes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(shared nodes, their weights, per-branch nodes, their weights) of u."""
        var = self.effect_sd ** 2
        s_sd, b_sd = math.sqrt(var * self.shared_fraction), math.sqrt(var * (1.0 - self.shared_fraction))
        xs, ws = normal.equal_mass_nodes(SHARED_NODES) if s_sd > 0 else (np.zeros(1), np.ones(1))
        xb, wb = normal.hermite_nodes(BRANCH_NODES) if b_sd > 0 else (np.zeros(1), np.ones(1))
        return self.effect_mean + s_sd * xs, ws, b_sd * xb, wb


def node_pmfs(cond: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """P(tau = k), k = 0..gamma+1, per logit shift: (shifts, gamma + 2)."""
    c = np.clip(cond, 1e-9, 1 - 1e-9)
    lc = np.log(c / (1 - c))
    a = 1.0 / (1.0 + np.exp(-(lc[None, :] + np.asarray(shifts, float)[:, None])))  # (N, gamma)
    surv = np.concatenate([np.ones((len(a), 1)), np.cumprod(a, axis=1)], axis=1)
    pmf = np.zeros((len(a), len(cond) + 2))
    pmf[:, 1:-1] = surv[:, :-1] * (1.0 - a)
    pmf[:, -1] = surv[:, -1]
    return pmf


def _exact_cdfs(cond: np.ndarray, shifts: np.ndarray, var: AcceptanceVariation, n: int) -> np.ndarray:
    """P(R <= r), r = 0..n, per shift: (shifts, n + 1); round r's pmf carries the offset of its bin."""
    offsets = var.offset_of_round(np.arange(1, n + 1))
    cache: dict[float, np.ndarray] = {}
    mass = np.zeros((len(shifts), n))
    mass[:, 0] = 1.0
    F = np.ones((len(shifts), n + 1))
    F[:, 0] = 0.0
    g1 = len(cond) + 1
    for r in range(1, n + 1):
        o = float(offsets[r - 1])
        if o not in cache:
            cache[o] = node_pmfs(cond, shifts + o)
        pmf = cache[o]
        new = np.zeros_like(mass)
        for k in range(1, min(g1, n - 1) + 1):
            new[:, k:] += pmf[:, k:k + 1] * mass[:, :n - k]
        mass = new
        left = mass.sum(axis=1)
        F[:, r] = 1.0 - left
        if left.max() < 1e-12:
            break
    return F


def _stretch(F: np.ndarray, r: np.ndarray, k: float) -> np.ndarray:
    """CDFs (rows) of m + k (R - m) on grid r: correlated rounds widen R about its mean m."""
    if k == 1.0:
        return F
    pm = np.diff(F, axis=1, prepend=0.0)
    m = pm @ r
    out = np.empty_like(F)
    for i in range(len(F)):
        out[i] = np.interp(m[i] + (r - m[i]) / k, r, F[i], left=0.0, right=1.0)
    return out


def _normal_moments(cond: np.ndarray, shifts: np.ndarray, var: AcceptanceVariation, n: int):
    """Mean and sd of R per shift: renewal (n + overshoot + tokens lost to the position profile) / mu."""
    k = np.arange(len(cond) + 2)
    pmf = node_pmfs(cond, shifts + (var.bin_offsets[-1] if var.bin_offsets else 0.0))
    mu, m2 = pmf @ k, pmf @ (k * k)
    lost = np.zeros(len(shifts))
    starts = list(var.bin_starts)
    for i, o in enumerate(var.bin_offsets[:-1]):
        rounds = starts[i + 1] - starts[i]
        lost += rounds * (mu - node_pmfs(cond, shifts + o) @ k)
    mean = (n + lost + (m2 - mu) / (2 * mu)) / mu
    sd = np.sqrt(var.vif * np.maximum(m2 - mu * mu, 1e-12) * n / mu ** 3)
    return mean, sd


@lru_cache(maxsize=2048)
def branch_cdfs(cond: tuple[float, ...], var: AcceptanceVariation, n: int):
    """(grid r, per shared node the one-branch CDF of R mixed over the per-branch part, shared weights)."""
    c = np.asarray(cond, float)
    us, ws, ub, wb = var.nodes()
    shifts = (us[:, None] + ub[None, :]).ravel()
    if n <= EXACT_VARIED_MAX_TOKENS:
        r = np.arange(n + 1, dtype=float)
        F = _stretch(_exact_cdfs(c, shifts, var, n), r, math.sqrt(var.vif))
    else:
        mean, sd = _normal_moments(c, shifts, var, n)
        lo, hi = max(0.0, float((mean - 8 * sd).min())), min(float(n), float((mean + 8 * sd).max()))
        r = np.linspace(lo, hi, GRID_POINTS)
        F = normal.cdf((r[None, :] - mean[:, None]) / sd[:, None])
    F[:, r >= n] = 1.0  # every round gives at least one token
    F = (F.reshape(len(us), len(ub), -1) * wb[None, :, None]).sum(axis=1)
    return r, F, ws


def max_rounds_cdf(cond: tuple[float, ...], var: AcceptanceVariation, n: int, branches: int):
    """(grid r, P(max over B branches of R <= r))."""
    r, F, ws = branch_cdfs(cond, var, n)
    return r, ws @ (F ** branches)


def expected_max(cond: tuple[float, ...], var: AcceptanceVariation, n: int, branches: int) -> float:
    r, FB = max_rounds_cdf(cond, var, n, branches)
    if n <= EXACT_VARIED_MAX_TOKENS:
        return float(np.sum(1.0 - FB))  # E = sum_r P(max > r) on the integer grid
    return float(r[0] + np.trapezoid(1.0 - FB, r))


def quantiles(r: np.ndarray, FB: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Smallest r with P(max <= r) >= p, interpolated linearly between grid points."""
    FB = np.maximum.accumulate(FB)
    return np.interp(probs, FB, r, left=r[0], right=r[-1])
