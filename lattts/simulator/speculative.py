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

from lattts.simulator import normal, rounds
from lattts.simulator.rounds import AcceptanceVariation

EXACT_ROUNDS_MAX_TOKENS = 512  # exact distribution of the round count up to here, normal approximation above


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    """E[tau] = (1 - alpha^(gamma+1)) / (1 - alpha) under i.i.d. acceptance (bonus token included)."""
    if gamma == 0:
        return 1.0
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


BASES = ("measured", "derived", "extrapolated", "given")


@dataclass(frozen=True)
class AcceptanceModel:
    """Probability that draft position j (1-based) is accepted given positions before it were.

    ``conditional`` holds those probabilities for j = 1..m, as measured at draft length
    ``draft_len`` (None: not measured, e.g. an alpha given by the user); positions beyond m reuse
    the last one (flagged by ``extrapolates``). I.i.d. acceptance alpha is the special case of one
    value. ``by_draft_len`` holds rates at other draft lengths, each with its basis: 'measured' at
    that gamma, or 'derived' from what was measured at another (``lattts.traces.acceptance`` says
    how). ``variation`` (branch effects, correlated rounds, position in the generation) turns the
    renewal round counts into ``rounds.py``'s; None is renewal.
    """

    conditional: tuple[float, ...]
    source: str
    pooled_alpha: float | None = None  # from a histogram: accepted / (accepted + rejections)
    draft_len: int | None = None
    by_draft_len: tuple[tuple[int, tuple[float, ...], str], ...] = ()  # (gamma, conditional, basis)
    variation: AcceptanceVariation | None = None

    @classmethod
    def iid(cls, alpha: float, source: str) -> "AcceptanceModel":
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"acceptance rate must be in [0, 1], got {alpha}")
        return cls(conditional=(float(alpha),), source=source)

    @classmethod
    def from_histogram(cls, counts: dict[int, int] | list[int], source: str, gamma: int | None = None) -> "AcceptanceModel":
        """From counts of rounds by number of accepted draft tokens (0..gamma) at draft length ``gamma``.

        A dict needs ``gamma``: its keys cannot say whether the top bins were zero. A list has gamma + 1
        counts; ``gamma``, when given, must agree with it."""
        if isinstance(counts, dict):
            if gamma is None:
                raise ValueError("a histogram given as a dict needs gamma: missing top bins would shorten it")
            if counts and (max(counts) > gamma or min(counts) < 0):
                raise ValueError(f"histogram keys must be in 0..{gamma}, got {sorted(counts)}")
            hist = np.array([counts.get(a, 0) for a in range(gamma + 1)], dtype=float)
        else:
            hist = np.asarray(counts, dtype=float)
            if gamma is not None and len(hist) != gamma + 1:
                raise ValueError(f"a histogram at draft length {gamma} has {gamma + 1} counts, got {len(hist)}")
            gamma = len(hist) - 1
        if gamma < 1 or hist.sum() <= 0:
            raise ValueError("an acceptance histogram needs rounds at draft length >= 1")
        # pooled over positions: sum_j tail[j] = tokens accepted, sum_j tail[j-1] = accepted + rejections
        tail = hist[::-1].cumsum()[::-1]
        pooled = float(tail[1:].sum() / tail[:-1].sum())
        return cls(conditional=conditional_from_histogram(hist), source=source, pooled_alpha=pooled, draft_len=gamma)

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
        rejections) over all rounds (positions every round reaches weigh most), i.e. the
        maximum-likelihood alpha under i.i.d. acceptance; else the mean of the conditional rates."""
        return self.pooled_alpha if self.pooled_alpha is not None else float(np.mean(self.conditional))

    def rates(self, gamma: int) -> tuple[float, ...]:
        """Conditional acceptance used at draft length ``gamma`` (its own if known, else ``conditional``)."""
        for g, cond, _ in self.by_draft_len:
            if g == gamma:
                return cond
        return self.conditional

    def basis(self, gamma: int) -> str:
        """'measured', 'derived', 'extrapolated' (beyond what was measured) or 'given' (an alpha)."""
        for g, _, basis in self.by_draft_len:
            if g == gamma:
                return basis
        if self.draft_len is None:
            return "extrapolated" if self.extrapolates(gamma) else "given"
        return "measured" if gamma == self.draft_len else "extrapolated" if self.extrapolates(gamma) else "derived"

    def extrapolates(self, gamma: int) -> bool:
        known = [g for g, _, b in self.by_draft_len if b != "extrapolated"] + [len(self.conditional)]
        return (len(self.conditional) > 1 or bool(self.by_draft_len)) and gamma > max(known)

    def tau_pmf(self, gamma: int) -> np.ndarray:
        """P(tau = k) for k = 0..gamma+1 (index k; P(tau=0) = 0)."""
        cond = self.rates(gamma)
        pmf = np.zeros(gamma + 2)
        survive = 1.0
        for j in range(1, gamma + 1):
            a = cond[min(j, len(cond)) - 1]
            pmf[j] = survive * (1.0 - a)  # positions 1..j-1 accepted, j rejected: tau = j
            survive *= a
        pmf[gamma + 1] = survive
        return pmf

    def tokens_per_round(self, gamma: int) -> float:
        pmf = self.tau_pmf(gamma)
        return float(np.dot(np.arange(len(pmf)), pmf))

    def rates_at(self, gamma: int) -> tuple[float, ...]:
        """The conditional rates of positions 1..gamma (the last one reused past what is known)."""
        cond = self.rates(gamma)
        return tuple(float(cond[min(j, len(cond)) - 1]) for j in range(1, gamma + 1))

    @property
    def varies(self) -> bool:
        return self.variation is not None and not self.variation.trivial


def conditional_from_histogram(hist) -> tuple[float, ...]:
    """P(accept position j | accepted j-1) = P(accepted >= j) / P(accepted >= j-1), j = 1..gamma."""
    hist = np.asarray(hist, dtype=float)
    tail = hist[::-1].cumsum()[::-1]  # tail[j] = rounds with at least j accepted
    return tuple(float(tail[j] / tail[j - 1]) if tail[j - 1] > 0 else 0.0 for j in range(1, len(hist)))


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
    mean_rounds, sd_rounds = _renewal_normal(pmf_key, n_tokens)
    return mean_rounds + sd_rounds * expected_max_std_normal(branches)


def expected_max_rounds(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches: int) -> float:
    """E[rounds until all of B lock-step branches have n_tokens], per-round tokens from ``acceptance``
    (renewal; with the acceptance's variation, ``rounds.py``'s mixture)."""
    if acceptance.varies:
        return rounds.expected_max(acceptance.rates_at(gamma), acceptance.variation, int(n_tokens), int(branches))
    pmf = acceptance.tau_pmf(gamma)
    return _expected_max_rounds_cached(tuple(np.round(pmf, 12)), int(n_tokens), int(branches))


def max_rounds_quantiles(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches,
                         probs: np.ndarray) -> np.ndarray:
    """(len(branches), len(probs)): quantiles of the rounds the slowest of B branches needs for
    n_tokens, for each B (fractional rounds: interpolated between integers in the exact regime)."""
    n, Bs, probs = int(n_tokens), np.atleast_1d(np.asarray(branches, float)), np.asarray(probs, float)
    if n <= 0:
        return np.zeros((len(Bs), len(probs)))
    if acceptance.varies:
        cond, var = acceptance.rates_at(gamma), acceptance.variation
        return np.array([rounds.quantiles(*rounds.max_rounds_cdf(cond, var, n, int(B)), probs) for B in Bs])
    key = tuple(np.round(acceptance.tau_pmf(gamma), 12))
    if n <= EXACT_ROUNDS_MAX_TOKENS:
        cdf = _rounds_cdf_exact(key, n)
        r = np.arange(len(cdf), dtype=float)
        return np.array([rounds.quantiles(r, cdf ** B, probs) for B in Bs])
    mean_rounds, sd_rounds = _renewal_normal(key, n)
    # P(max <= r) = Phi(z)^B: the p-quantile of the max is at z = Phi^-1(p^(1/B))
    z = np.array([_max_normal_z(float(B), tuple(probs)) for B in Bs])
    return np.minimum(mean_rounds + sd_rounds * z, float(n))


@lru_cache(maxsize=256)
def _max_normal_z(branches: float, probs: tuple[float, ...]) -> np.ndarray:
    """z at which Phi(z)^B = p, for each p."""
    return normal.ppf(np.asarray(probs) ** (1.0 / branches))


def _renewal_normal(pmf_key: tuple[float, ...], n_tokens: int) -> tuple[float, float]:
    """Normal approximation of one branch's round count: mean (n + overshoot) / mu, variance sigma^2 n / mu^3."""
    pmf = np.asarray(pmf_key)
    k = np.arange(len(pmf))
    mu = float(np.dot(k, pmf))
    var = float(np.dot(k * k, pmf)) - mu * mu
    overshoot = (float(np.dot(k * k, pmf)) - mu) / (2.0 * mu)  # mean ladder overshoot of an integer renewal
    return (n_tokens + overshoot) / mu, math.sqrt(max(var, 0.0) * n_tokens / mu ** 3)


def simulate_max_rounds(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches: int,
                        trials: int, rng: np.random.Generator) -> np.ndarray:
    """Monte Carlo of the rejection process: rounds the slowest of B branches needs (for tests)."""
    return simulate_branch_rounds(acceptance, gamma, n_tokens, branches, trials, rng).max(axis=1)


def simulate_branch_rounds(acceptance: AcceptanceModel, gamma: int, n_tokens: int, branches: int,
                           trials: int, rng: np.random.Generator) -> np.ndarray:
    """Monte Carlo of the rejection process: (trials, branches) rounds each branch needs (for tests)."""
    conds = np.array(acceptance.rates_at(gamma))
    produced = np.zeros((trials, branches))
    rounds = np.zeros((trials, branches))
    active = np.ones((trials, branches), dtype=bool)
    while active.any():
        accept = rng.random((trials, branches, gamma)) < conds  # each draft position accepted?
        accepted = np.cumprod(accept, axis=2).sum(axis=2)  # accepted prefix length
        produced += np.where(active, accepted + 1, 0)
        rounds += active
        active = produced < n_tokens
    return rounds
