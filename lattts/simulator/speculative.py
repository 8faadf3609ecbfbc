"""Speculative decoding arithmetic: tokens per round and rounds for the slowest of B branches.

Per round the draft proposes gamma tokens and the target verifies them in one pass; a branch
keeps its accepted prefix plus one token from the target, so tau = accepted + 1 in 1..gamma+1
(Leviathan et al. 2023; Chen et al. 2023). With B branches in lock-step the batch runs until its
slowest branch has its tokens: E[max_b R_b], where R_b is a renewal count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EXACT_ROUNDS_MAX_TOKENS = 512  # exact distribution of the round count up to here, normal approximation above


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    """E[tau] = (1 - alpha^(gamma+1)) / (1 - alpha) under i.i.d. acceptance (bonus token included)."""
    if gamma == 0:
        return 1.0
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


@dataclass(frozen=True)
class AcceptanceModel:
    """Probability that draft position j (1-based) is accepted given positions before it were.

    ``conditional`` holds those probabilities for j = 1..m; positions beyond m reuse the last
    one (flagged by ``extrapolates``). I.i.d. acceptance alpha is the special case of one value.
    """

    conditional: tuple[float, ...]
    source: str
    pooled_alpha: float | None = None  # from a histogram: accepted / (accepted + rejections)

    @classmethod
    def iid(cls, alpha: float, source: str) -> "AcceptanceModel":
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"acceptance rate must be in [0, 1], got {alpha}")
        return cls(conditional=(float(alpha),), source=source)

    @classmethod
    def from_histogram(cls, counts: dict[int, int] | list[int], source: str) -> "AcceptanceModel":
        """From counts of rounds by number of accepted draft tokens (0..gamma) at one draft length."""
        if isinstance(counts, dict):
            gamma = max(counts)
            hist = np.array([counts.get(a, 0) for a in range(gamma + 1)], dtype=float)
        else:
            hist = np.asarray(counts, dtype=float)
            gamma = len(hist) - 1
        if gamma < 1 or hist.sum() <= 0:
            raise ValueError("an acceptance histogram needs rounds at draft length >= 1")
        # P(accept position j | accepted j-1) = P(accepted >= j) / P(accepted >= j-1)
        tail = hist[::-1].cumsum()[::-1]  # tail[j] = rounds with at least j accepted
        cond = tuple(float(tail[j] / tail[j - 1]) if tail[j - 1] > 0 else 0.0 for j in range(1, gamma + 1))
        # pooled over positions: sum_j tail[j] = tokens accepted, sum_j tail[j-1] = accepted + rejections
        pooled = float(tail[1:].sum() / tail[:-1].sum())
        return cls(conditional=cond, source=source, pooled_alpha=pooled)

    @classmethod
    def from_mean_accepted(cls, mean_accepted: float, gamma: int, source: str) -> "AcceptanceModel":
        """The i.i.d. alpha whose expected accepted draft tokens per round, sum_{k=1..gamma} alpha^k,
        equal ``mean_accepted`` (what a server's totals allow: accepted tokens over rounds)."""
        if gamma < 1 or not 0.0 <= mean_accepted <= gamma:
            raise ValueError(f"mean accepted {mean_accepted} is not within 0..{gamma}")
        lo, hi = 0.0, 1.0
        for _ in range(60):  # the sum rises with alpha: bisect
            mid = 0.5 * (lo + hi)
            if sum(mid ** k for k in range(1, gamma + 1)) < mean_accepted:
                lo = mid
            else:
                hi = mid
        return cls(conditional=(0.5 * (lo + hi),), source=source)

    @property
    def alpha(self) -> float:
        """One per-token acceptance rate: for a histogram, the pooled estimate accepted / (accepted +
        rejections), i.e. the maximum-likelihood alpha under i.i.d. acceptance; else the mean per position."""
        return self.pooled_alpha if self.pooled_alpha is not None else float(np.mean(self.conditional))

    def extrapolates(self, gamma: int) -> bool:
        return len(self.conditional) > 1 and gamma > len(self.conditional)

    def tau_pmf(self, gamma: int) -> np.ndarray:
        """P(tau = k) for k = 0..gamma+1 (index k; P(tau=0) = 0)."""
        pmf = np.zeros(gamma + 2)
        survive = 1.0
        for j in range(1, gamma + 1):
            a = self.conditional[min(j, len(self.conditional)) - 1]
            pmf[j] = survive * (1.0 - a)  # positions 1..j-1 accepted, j rejected: tau = j
            survive *= a
        pmf[gamma + 1] = survive
        return pmf

    def tokens_per_round(self, gamma: int) -> float:
        pmf = self.tau_pmf(gamma)
        return float(np.dot(np.arange(len(pmf)), pmf))


@lru_cache(maxsize=256)
def expected_max_std_normal(n: int) -> float:
    """E[max of n i.i.d. standard normals], by quadrature of x d(Phi(x)^n)."""
    if n <= 1:
        return 0.0
    x = np.linspace(-8.0, 8.0, 4001)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    dens = n * pdf * cdf ** (n - 1)
    return float(np.trapezoid(x * dens, x))


@lru_cache(maxsize=1024)
def _rounds_cdf_exact(pmf_key: tuple[float, ...], n_tokens: int) -> np.ndarray:
    """P(R <= r) for r = 0, 1, ...: R = rounds until a branch has n_tokens, tau ~ pmf."""
    pmf = np.asarray(pmf_key)
    mass = np.zeros(n_tokens)  # P(S_r = t and t < n_tokens)
    mass[0] = 1.0
    cdf = [0.0]
    while mass.sum() > 1e-12 and len(cdf) < 10 * n_tokens + 10:
        mass = np.convolve(mass, pmf)[:n_tokens]
        cdf.append(1.0 - mass.sum())
    return np.asarray(cdf)


@lru_cache(maxsize=4096)
def _expected_max_rounds_cached(pmf_key: tuple[float, ...], n_tokens: int, branches: int) -> float:
    if n_tokens <= 0:
        return 0.0
    if n_tokens <= EXACT_ROUNDS_MAX_TOKENS:
        cdf = _rounds_cdf_exact(pmf_key, n_tokens)
        return float(np.sum(1.0 - cdf ** branches))  # E[max] = sum_r P(max > r)
    pmf = np.asarray(pmf_key)
    k = np.arange(len(pmf))
    mu = float(np.dot(k, pmf))
    var = float(np.dot(k * k, pmf)) - mu * mu
    overshoot = (float(np.dot(k * k, pmf)) - mu) / (2.0 * mu)  # mean ladder overshoot of an integer renewal
    mean_rounds = (n_tokens + overshoot) / mu
    sd_rounds = math.sqrt(max(var, 0.0) * n_tokens / mu ** 3)
    return mean_rounds + sd_rounds * expected_max_std_normal(branches)


def expected_max_rounds(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches: int) -> float:
    """E[rounds until all of B lock-step branches have n_tokens], per-round tokens from ``acceptance``."""
    pmf = acceptance.tau_pmf(gamma)
    return _expected_max_rounds_cached(tuple(np.round(pmf, 12)), int(n_tokens), int(branches))


def simulate_max_rounds(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches: int,
                        trials: int, rng: np.random.Generator) -> np.ndarray:
    """Monte Carlo of the rejection process: rounds the slowest of B branches needs (for tests)."""
    conds = np.array([acceptance.conditional[min(j, len(acceptance.conditional)) - 1] for j in range(1, gamma + 1)])
    produced = np.zeros((trials, branches))
    rounds = np.zeros((trials, branches))
    active = np.ones((trials, branches), dtype=bool)
    while active.any():
        accept = rng.random((trials, branches, gamma)) < conds  # each draft position accepted?
        accepted = np.cumprod(accept, axis=2).sum(axis=2)  # accepted prefix length
        produced += np.where(active, accepted + 1, 0)
        rounds += active
        active = produced < n_tokens
    return rounds.max(axis=1)
