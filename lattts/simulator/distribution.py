"""The predicted latency of a configuration as a distribution, not one number.

Three things vary from run to run:

- the rounds the slowest branch needs (speculative decoding): their distribution comes from the
  acceptance model (``speculative.max_rounds_quantiles``: renewal, or ``rounds.py`` with branch
  effects, correlated rounds and position offsets);
- the tokens the longest branch runs to, when branches stop on their own (natural lengths):
  the longest of B draws from the length sample;
- the device: how far a run's time strays from what the profile predicts for it. A spread
  ``LatencySpread``: log(measured / predicted) ~ N(0, sd_log^2), from the calibration's own
  held-out error or a stated assumption (``plan.latency_spread``).

Per configuration the run's time is evaluated at ``NODES`` equal-probability quantiles of its
rounds (``generation.latency_at_rounds``), and mixed with the device's lognormal spread:
    P(T <= t) = mean_k Phi((ln t - ln T_k) / sd_log),
from which ``latency_p90_s`` (by bisection) and P(T <= budget) follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattts.simulator import normal
from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import Workload, branch_rounds, latency_at_rounds
from lattts.simulator.speculative import max_rounds_quantiles

NODES = 20
LENGTH_NODES = 8  # natural lengths with speculation: quantiles of the longest branch mixed over
QUANTILE = 0.9
BISECTIONS = 16  # a bracket of 0.5 in log time ends within 1e-5 of the quantile
MIN_SD_LOG = 1e-3  # keeps the mixture continuous when a spread is given as zero


@dataclass(frozen=True)
class LatencySpread:
    """log(measured / predicted latency) of a whole run ~ N(0, sd_log^2); ``source`` says why."""

    sd_log: float
    source: str


def _probs(k: int) -> np.ndarray:
    return (np.arange(k) + 0.5) / k


def _longest_quantiles(work: Workload, b: float, cap: float, probs: np.ndarray) -> np.ndarray:
    """Quantiles of max over b branches of min(X, cap), X from the natural length sample."""
    x = np.sort(np.asarray(work.natural_lengths.samples, float))
    idx = np.ceil(probs ** (1.0 / b) * len(x)).astype(int) - 1  # F(x)^b = p at x = F^-1(p^(1/b))
    return np.maximum(np.minimum(x[np.clip(idx, 0, len(x) - 1)], cap), 1.0)


def _natural_round_nodes(work: Workload, b: float, gamma: int, cap: float) -> np.ndarray:
    """``NODES`` equal-probability quantiles of the rounds after prefill when branches stop on their own."""
    probs = _probs(NODES)
    if gamma == 0:
        return np.sort(_longest_quantiles(work, b, cap, probs)) - 1.0
    # the longest branch at LENGTH_NODES quantiles, the rounds at each; pool their quantiles, take the pool's
    need = _longest_quantiles(work, b, cap, _probs(LENGTH_NODES))
    fine = _probs(4 * NODES)
    pool = np.concatenate([max_rounds_quantiles(work.acceptance, gamma, int(round(n - 1)), b, fine)[0] for n in need])
    return np.quantile(pool, probs)


def _round_nodes(work: Workload, B: np.ndarray, gamma: int, L: np.ndarray) -> np.ndarray:
    """(configurations, NODES) equal-probability quantiles of each configuration's rounds after prefill."""
    if work.natural_lengths is not None:
        return np.array([_natural_round_nodes(work, float(b), gamma, float(cap)) for b, cap in zip(B, L)])
    out = np.zeros((len(B), NODES))
    if gamma == 0:  # budget forcing without speculation: L - 1 decode steps, always
        return out + (L - 1.0)[:, None]
    for cap in np.unique(L):
        sel = L == cap
        out[sel] = max_rounds_quantiles(work.acceptance, gamma, int(cap) - 1, B[sel], _probs(NODES))
    return out


def latency_nodes(work: Workload, deploy: Deployment, branches, draft_len, max_tokens) -> np.ndarray:
    """(configurations, NODES) seconds: each configuration's time at equal-probability quantiles of its rounds."""
    B, G, L = (np.asarray(x, float).ravel() for x in np.broadcast_arrays(branches, draft_len, max_tokens))
    out = np.zeros((len(B), NODES))
    for gamma in np.unique(G):
        sel = np.flatnonzero(G == gamma)
        r = _round_nodes(work, B[sel], int(gamma), L[sel])
        share = None
        if gamma and work.priced_as_leaving:
            # where finished branches leave: one branch's mean rounds over the slowest's mean, so the other
            # branches' rounds move with the slowest's (a shared acceptance effect moves them all)
            share = branch_rounds(work, int(gamma), L[sel] - 1.0)[:, None] / r.mean(axis=1, keepdims=True)
        out[sel] = _at_rounds(work, deploy, B[sel][:, None], int(gamma), r, share)
    return out


def _at_rounds(work: Workload, deploy: Deployment, b: np.ndarray, gamma: int, r: np.ndarray,
               own_share: np.ndarray | None = None) -> np.ndarray:
    """Latency at rounds r (configurations, NODES). Time is smooth in the round count (a sum of passes
    whose cost grows with context), so it is priced at the smallest, middle and largest node and read
    between them by the quadratic through those three (tests check it against pricing every node).
    ``own_share``: the other branches' rounds as a share of the slowest's (``latency_nodes``)."""
    lo, hi = r.min(axis=1, keepdims=True), r.max(axis=1, keepdims=True)
    three = np.concatenate([lo, 0.5 * (lo + hi), hi], axis=1)
    t = latency_at_rounds(work, deploy, b, gamma, three, None if own_share is None else own_share * three)
    x = np.where(hi > lo, (r - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)  # 0..1 across the nodes
    t0, t1, t2 = t[:, :1], t[:, 1:2], t[:, 2:]
    return t0 + x * (4 * t1 - 3 * t0 - t2) + x * x * (2 * t0 - 4 * t1 + 2 * t2)


def p_within(nodes_s: np.ndarray, spread: LatencySpread, budget_s: float) -> np.ndarray:
    """P(latency <= budget) per configuration (rows of ``nodes_s``)."""
    sd = max(spread.sd_log, MIN_SD_LOG)
    return normal.cdf((np.log(budget_s) - np.log(nodes_s)) / sd).mean(axis=1)


def latency_quantile(nodes_s: np.ndarray, spread: LatencySpread, q: float = QUANTILE) -> np.ndarray:
    """The q-quantile of latency per configuration, by bisection in log time. Every component's
    q-quantile is its node + z_q sd, so the mixture's lies between the smallest and the largest of them:
    a bracket as wide as the spread of the nodes, halved ``BISECTIONS`` times."""
    sd = max(spread.sd_log, MIN_SD_LOG)
    logs = np.log(nodes_s)
    z = float(normal.ppf(q))
    lo, hi = logs.min(axis=1) + z * sd, logs.max(axis=1) + z * sd
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = normal.cdf((mid[:, None] - logs) / sd).mean(axis=1) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.exp(0.5 * (lo + hi))
