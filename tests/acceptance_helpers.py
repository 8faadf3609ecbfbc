"""Hand-built and simulated speculative rounds for the acceptance tests (no real logs are shipped:
their licence is unstated). ``sticky_branches`` draws rounds the way real ones behave: a per-branch
logit shift (prompts differ), a two-state acceptance level that persists (rounds correlate), and a
warm-up offset on the first rounds; ``block_bootstrap_rounds`` resamples them in 16-round blocks."""

from __future__ import annotations

import numpy as np

BLOCK = 16


def rounds_from_levels(level: np.ndarray, gamma: int, rng: np.random.Generator) -> np.ndarray:
    """tau per round (1..gamma+1) when round r accepts each position with probability expit(level[r])."""
    c = 1.0 / (1.0 + np.exp(-level))
    accept = rng.random((len(level), gamma)) < c[:, None]
    return np.cumprod(accept, axis=1).sum(axis=1) + 1


def sticky_branches(n_branches: int, n_rounds: int, gamma: int, rng: np.random.Generator, effect_sd: float = 0.6,
                    stay: float = 0.95, levels=(-0.6, 1.4), warmup: float = -0.8, warm_rounds: int = 8) -> list[np.ndarray]:
    out = []
    for _ in range(n_branches):
        u = effect_sd * rng.standard_normal()
        state = np.zeros(n_rounds, dtype=int)
        state[0] = rng.integers(2)
        flips = rng.random(n_rounds) > stay
        for r in range(1, n_rounds):
            state[r] = 1 - state[r - 1] if flips[r] else state[r - 1]
        level = np.asarray(levels)[state] + u + np.where(np.arange(n_rounds) < warm_rounds, warmup, 0.0)
        out.append(rounds_from_levels(level, gamma, rng))
    return out


def block_bootstrap_rounds(taus: np.ndarray, n_tokens: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Rounds to reach n_tokens of ``size`` synthetic branches glued from circular 16-round blocks of one branch."""
    t = np.asarray(taus, dtype=np.int64)
    L = len(t)
    ext = np.concatenate([t, t[:BLOCK]])
    P = np.concatenate([[0], np.cumsum(ext)])
    K = int(np.ceil(n_tokens / max(1, min(P[a + BLOCK] - P[a] for a in range(L))))) + 1
    starts = rng.integers(0, L, size=(size, K))
    sums = P[starts + BLOCK] - P[starts]
    cum = np.cumsum(sums, axis=1)
    k = np.argmax(cum >= n_tokens, axis=1)
    before = np.where(k > 0, cum[np.arange(size), k - 1], 0)
    need = n_tokens - before
    a = starts[np.arange(size), k]
    within = np.array([np.searchsorted(P[s + 1:s + BLOCK + 1] - P[s], nd) + 1 for s, nd in zip(a, need)])
    return BLOCK * k + within


def descents(runs: list[int]) -> list[int]:
    """A per-position list of accepted runs: each run of k reads k, k-1, ..., 1."""
    return [v for k in runs for v in range(k, 0, -1)]
