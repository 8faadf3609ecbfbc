"""From ordered speculative rounds to an acceptance model: rates per draft length, and how acceptance
varies between branches and along them (``simulator.rounds.AcceptanceVariation``).

A branch is one generation's rounds in order, tau = accepted + 1 per round, at one draft length.

- **Rates** (``equal_token_histogram``): each branch's histogram weighted by 1 / its tokens, so long
  generations do not dominate (pooling raw rounds across rows of unequal length biases even B = 1).
- **Other draft lengths**: a per-position log (one entry per generated position: the accepted length,
  bonus included, a round starting there would have had) is walked at any gamma up to the one it was
  logged with (``walk``); rounds in order are first rebuilt into such a list by run-chaining
  (``run_chain``: an accepted run continues across consecutive full rounds, reading k, k-1, ..., 1
  inside), which is exact for a deterministic drafter and close going down in gamma for others.
- **Variation** (``fit_variation``): within-branch correlation as VIF = (mean_b sqrt(LRV_b) /
  mean_b sd_b)^2 with Bartlett-window long-run variances (lag 16); a per-branch logit shift u_b by
  maximum likelihood given the pooled rates, its spread by the moment estimator var(u) - mean(VIF / I_b)
  (I_b: the branch's Fisher information), split into a part shared by branches of one prompt and a
  per-branch part by one-way analysis of variance; a per-bin logit offset of the round index with
  per-branch fixed effects. Following the prototype study of these choices on Llama-3.1-8B EAGLE and
  n-gram per-position logs (SpecDecode-Bench outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattts.simulator.rounds import AcceptanceVariation

LAG = 16  # Bartlett window of the long-run variance
MIN_ROUNDS = 16  # rounds a branch needs to enter the variation fit
BIN_STARTS = (1, 3, 6, 11, 21, 41, 81, 161, 321, 641, 1281)
MIN_BIN_ROUNDS = 40  # rounds (over branches) a position bin needs to get its own offset
U_LIMIT = 8.0


@dataclass(frozen=True)
class Branch:
    """One branch's rounds in order (tau = accepted + 1) at draft length ``draft_len``; ``group`` names
    its prompt (branches of one prompt share its part of the effect)."""

    group: str
    draft_len: int
    taus: tuple[int, ...]


def walk(acc_len, gamma: int, start: int = 1) -> np.ndarray:
    """Rounds at draft length gamma from a per-position log: tau = min(acc[pos], gamma + 1), pos += tau.
    ``start`` = 1 skips the prefill's token (the first entry of such logs); the last round, cut by the
    end of the generation, is dropped."""
    taus, pos, n = [], start, len(acc_len)
    while pos < n:
        tau = min(int(acc_len[pos]), gamma + 1)
        if pos + tau > n:
            break
        taus.append(tau)
        pos += tau
    return np.asarray(taus, dtype=int)


def run_chain(taus, gamma: int) -> np.ndarray:
    """A per-position list rebuilt from rounds at draft length gamma (no prefill entry): an accepted run
    continues across consecutive full rounds (tau = gamma + 1) and reads k, k-1, ..., 1 inside."""
    out, chain = [], 0
    for t in taus:
        chain += int(t)
        if t < gamma + 1:
            out.extend(range(chain, 0, -1))
            chain = 0
    if chain:
        out.extend(range(chain, 0, -1))
    return np.asarray(out, dtype=int)


def equal_token_histogram(branches: list[np.ndarray], gamma: int) -> np.ndarray:
    """Rounds by accepted tokens 0..gamma, each branch weighted by 1 / its tokens (scaled to the mean tokens)."""
    hists = [np.bincount(np.asarray(t) - 1, minlength=gamma + 1)[:gamma + 1] for t in branches if len(t)]
    tokens = np.array([np.sum(t) for t in branches if len(t)], float)
    return sum(h / n for h, n in zip(hists, tokens)) * tokens.mean()


def _design(branches: list[np.ndarray], gamma: int):
    """Per round: branch index, position bin, reached (R, gamma) and accepted (R, gamma) positions."""
    taus = np.concatenate(branches)
    who = np.repeat(np.arange(len(branches)), [len(t) for t in branches])
    rounds = np.concatenate([np.arange(1, len(t) + 1) for t in branches])
    j = np.arange(1, gamma + 1)[None, :]
    reach = j <= np.minimum(taus, gamma)[:, None]
    acc = j < taus[:, None]
    return who, np.searchsorted(BIN_STARTS, rounds, side="right") - 1, reach, acc


def _solve(index, n_index: int, lc: np.ndarray, fixed: np.ndarray, reach, acc, iters: int = 30):
    """Per index value, the logit shift x solving sum (acc - reach * c(lc + fixed + x)) = 0 (Newton in a bracket)."""
    x, lo, hi = np.zeros(n_index), np.full(n_index, -U_LIMIT), np.full(n_index, U_LIMIT)
    for _ in range(iters):
        c = 1.0 / (1.0 + np.exp(-(lc[None, :] + (fixed + x[index])[:, None])))
        score = np.bincount(index, (acc - reach * c).sum(axis=1), n_index)
        info = np.bincount(index, (reach * c * (1 - c)).sum(axis=1), n_index)
        lo, hi = np.where(score > 0, x, lo), np.where(score > 0, hi, x)
        step = x + score / np.maximum(info, 1e-12)
        x = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
    return x, info


def long_run_vif(branches: list[np.ndarray]) -> float:
    """(mean_b sqrt(LRV_b) / mean_b sd_b)^2 over branches, Bartlett window ``LAG`` (1 if none is long enough)."""
    lr, sd = [], []
    for t in branches:
        x = np.asarray(t, float) - np.mean(t)
        L, g0 = len(x), float(np.mean(x * x))
        if L < 2 * LAG or g0 <= 0:
            continue
        V = g0 + 2 * sum((1 - k / (LAG + 1)) * float(x[:-k] @ x[k:]) / L for k in range(1, LAG + 1))
        lr.append(np.sqrt(max(V, 0.0)))
        sd.append(np.sqrt(g0))
    return max(float((np.mean(lr) / np.mean(sd)) ** 2), 1.0) if lr else 1.0


def _split(u: np.ndarray, noise: np.ndarray, groups: list[str]) -> tuple[float, float, str]:
    """(effect variance, shared fraction, how) from per-branch shifts u and their noise variances."""
    names = sorted(set(groups))
    total = max(float(np.var(u, ddof=1)) - float(noise.mean()), 0.0)
    if len(names) == len(groups):
        return total, 1.0, "one branch per prompt: the spread is taken as the prompts', shared by a batch"
    idx = np.array([names.index(g) for g in groups])
    means = np.bincount(idx, u) / np.bincount(idx)
    within = float(((u - means[idx]) ** 2).sum() / max(len(u) - len(names), 1))
    sigma_e = max(within - float(noise.mean()), 0.0)
    if len(names) == 1:
        return sigma_e, 0.0, "one prompt: the spread between branches only (prompt-to-prompt spread not measured)"
    m = len(names) / float(np.sum(1.0 / np.bincount(idx)))
    sigma_g = max(float(np.var(means, ddof=1)) - within / m, 0.0)
    var = sigma_g + sigma_e
    return var, sigma_g / var if var > 0 else 1.0, f"{len(names)} prompts x {len(u) / len(names):.1f} branches"


def fit_variation(branches: list[Branch], gamma: int, cond: tuple[float, ...]) -> AcceptanceVariation | None:
    """Branch effects, correlated rounds and position offsets at draft length gamma; None with too few branches."""
    kept = [b for b in branches if b.draft_len == gamma and len(b.taus) >= MIN_ROUNDS]
    if len(kept) < 2:
        return None
    taus = [np.asarray(b.taus) for b in kept]
    c = np.clip(np.asarray(cond, float), 1e-6, 1 - 1e-6)
    lc = np.log(c / (1 - c))
    who, bins, reach, acc = _design(taus, gamma)
    vif = long_run_vif(taus)
    counts = np.bincount(bins, minlength=len(BIN_STARTS))
    use = counts >= MIN_BIN_ROUNDS
    offsets = np.zeros(len(BIN_STARTS))
    u = np.zeros(len(kept))
    for _ in range(3):  # alternate: branch shifts given offsets, offsets given branch shifts
        u, info = _solve(who, len(kept), lc, offsets[bins], reach, acc)
        if use.sum() >= 2:
            o, o_info = _solve(bins, len(BIN_STARTS), lc, u[who], reach, acc)
            # shrink each offset by its own noise (positive-part James-Stein), rounds correlated by VIF
            o = np.where(use, o * np.maximum(0.0, 1.0 - vif / np.maximum(o * o * o_info, 1e-12)), 0.0)
            offsets = o - np.average(o, weights=counts * use)  # relative to the branch level
    ok = np.abs(u) < U_LIMIT - 0.1
    if ok.sum() < 2:
        return None
    var, shared, how = _split(u[ok], vif / np.maximum(info[ok], 1e-9), [b.group for b, k in zip(kept, ok) if k])
    last = int(np.flatnonzero(use)[-1]) + 1 if use.any() else 1
    starts, offs = (BIN_STARTS[:last], tuple(float(x) for x in offsets[:last])) if use.sum() >= 2 else ((), ())
    tokens = int(np.median([np.sum(t) for t in taus]))
    source = (f"fitted on {len(kept)} branches at draft length {gamma} ({how}): branch effect sd {np.sqrt(var):.2f} "
              f"(logit), {shared:.0%} shared, VIF {vif:.2f}, position offsets over {len(starts)} round bins, "
              f"{tokens} tokens per branch")
    return AcceptanceVariation(effect_sd=float(np.sqrt(var)), effect_mean=float(np.mean(u[ok])) if var > 0 else 0.0,
                               shared_fraction=float(shared), vif=vif, bin_starts=tuple(starts), bin_offsets=offs,
                               measured_tokens=tokens, source=source)
