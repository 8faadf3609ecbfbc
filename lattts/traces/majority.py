"""Exact probability that a majority vote of B samples is correct, for one problem.

A problem's n samples fall into answer groups: groups graded correct, groups graded wrong, and
the unanswered samples (no extracted answer), which form a "no vote" group that can never win.
B samples are drawn without replacement; the plurality answer among the drawn answered samples
wins, ties are split uniformly among the tied answers, and if every drawn sample is unanswered
the vote has no answer (counted wrong).

For B <= n this is the multivariate hypergeometric expectation over the group counts, computed
exactly by counting (no Monte Carlo), so averaging it over problems is an unbiased estimate of
majority-vote accuracy at B. For B > n the samples are drawn with replacement from the problem's
empirical answer distribution (multinomial), a plug-in extrapolation that callers must label.

How the counting works: P(correct) = sum over correct groups g of E[1{g wins} / #tied winners].
Each group is a polynomial in y whose coefficient of y^x counts the ways to draw x of its
samples. With g drawn c times, g wins if every rival group draws fewer than c, and shares the
win with the t rivals that draw exactly c (weight 1/(1+t)). For each c a dynamic programme over
the rivals tracks (samples drawn k, rivals tied at c t); groups too small to reach c votes only
fill up the draw, and c = 1 and "one rival left" have closed forms. Pure numpy, no Monte Carlo;
every term is non-negative, so floating-point sums lose nothing to cancellation.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

import numpy as np

from lattts.limits import MAX_BRANCHES  # the programme's arrays grow as B^3 when extrapolating

MAX_WORK = 3e9  # multiply-adds in one dynamic programme (a few seconds); exact draws stay far below


@dataclass(frozen=True)
class AnswerCounts:
    """One problem's samples at one budget, as answer-group sizes (samples per distinct answer)."""

    correct: tuple[int, ...]  # sizes of the answer groups graded correct
    wrong: tuple[int, ...]  # sizes of the answer groups graded wrong
    unanswered: int = 0  # samples with no extracted answer

    @property
    def n(self) -> int:
        return sum(self.correct) + sum(self.wrong) + self.unanswered

    @property
    def n_correct(self) -> int:
        return sum(self.correct)

    def canonical(self) -> "AnswerCounts":
        """The same counts with groups sorted, so equal problems share a cache entry."""
        return AnswerCounts(tuple(sorted(self.correct)), tuple(sorted(self.wrong)), self.unanswered)


def majority_correct(counts: AnswerCounts, branches) -> tuple[np.ndarray, np.ndarray]:
    """P(the plurality answer of B samples is correct) for each B in ``branches``, and whether
    each value is extrapolated (B > n: drawn with replacement) rather than exact."""
    probs, extrapolated = majority_matrix([counts], branches)
    return probs[0], extrapolated[0]


def majority_matrix(problems, branches) -> tuple[np.ndarray, np.ndarray]:
    """``majority_correct`` for many problems (a sequence of AnswerCounts): arrays of shape
    (problems, branches). Problems with the same group sizes are computed once."""
    b = np.asarray(branches, dtype=int).ravel()
    if len(b) == 0 or b.min() < 1:
        raise ValueError("branches must be at least 1")
    if b.max() > MAX_BRANCHES:
        raise ValueError(f"branches above {MAX_BRANCHES} are not supported")
    probs = np.zeros((len(problems), len(b)))
    n = np.array([c.n for c in problems], dtype=int)
    if (n < 1).any():
        raise ValueError("every problem needs at least one sample")
    extrapolated = b[None, :] > n[:, None]
    done: dict[AnswerCounts, int] = {}
    for i, counts in enumerate(problems):
        key = counts.canonical()
        if key in done:
            probs[i] = probs[done[key]]
            continue
        done[key] = i
        if not key.correct:
            continue
        exact = ~extrapolated[i]
        if exact.any():
            probs[i, exact] = _vote_table(key, int(b[exact].max()), False)[b[exact]]
        if not exact.all():
            far = b[~exact]
            probs[i, ~exact] = _vote_table(key, int(far.max()), True)[far]
    return probs, extrapolated


def pass_at_k(n, n_correct, ks) -> tuple[np.ndarray, np.ndarray]:
    """P(at least one of k samples is correct), for problems with n samples of which n_correct are
    correct (arrays of shape (problems,)) and each k: arrays (problems, ks). Drawing without
    replacement, 1 - C(n-c, k)/C(n, k), unbiased for k <= n; for k > n, with replacement
    1 - (1 - c/n)^k (extrapolated)."""
    n = np.asarray(n, dtype=float).reshape(-1, 1)
    c = np.asarray(n_correct, dtype=float).reshape(-1, 1)
    k = np.asarray(ks, dtype=float).reshape(1, -1)
    extrapolated = k > n
    wrong = n - c
    possible = (wrong >= k) & ~extrapolated  # else every draw of k includes a correct sample
    kk = np.where(possible, k, 0.0)
    # C(n-c, k) / C(n, k) = (n-c)! (n-k)! / ((n-c-k)! n!), in logs so large n stay finite
    log_miss = (_lgamma(wrong + 1) - _lgamma(np.where(possible, wrong - kk, 0.0) + 1)
                - _lgamma(n + 1) + _lgamma(n - kk + 1))
    exact = np.where(possible, 1.0 - np.exp(log_miss), 1.0)
    replaced = 1.0 - (wrong / n) ** k
    return np.where(extrapolated, replaced, exact), np.broadcast_to(extrapolated, exact.shape).copy()


_lgamma = np.vectorize(math.lgamma, otypes=[float])


@lru_cache(maxsize=65536)
def _vote_table(counts: AnswerCounts, kmax: int, with_replacement: bool) -> np.ndarray:
    """P(majority correct) for B = 0..kmax (index B; entry 0 is 0). Cached on the group sizes."""
    n = counts.n
    draw = _Draw(n, kmax, with_replacement)
    sizes = counts.correct + counts.wrong
    total = draw.row(n)  # all ways to draw B (scaled): drawing from every group is drawing from all n
    wins = np.zeros(kmax + 1)
    for i in range(len(counts.correct)):  # a vote has one winner: the correct groups' wins add up
        wins += _focus_wins(draw, sizes[i], sizes[:i] + sizes[i + 1:], counts.unanswered)
    p = wins / total  # total > 0 for every B <= kmax (the scaling keeps it from underflowing)
    p[0] = 0.0
    return np.clip(p, 0.0, 1.0)  # rounding can step past 1 by an ulp


@dataclass(frozen=True)
class _Draw:
    """How B samples are drawn from a problem's n: the per-group weights of drawing x of a group.

    Without replacement the weight is C(size, x), the hypergeometric count; with replacement it is
    p^x / x! with p = size/n, the multinomial's exponential generating function. The coefficient
    of y^x is scaled by lambda^-x (lambda fixed per n and kmax) so that C(64, 32) ~ 1.8e18 and
    256! stay in floating-point range; the scale cancels in every ratio at equal B.
    """

    n: int
    kmax: int
    with_replacement: bool

    def row(self, size: int) -> np.ndarray:
        """Weights for x = 0..reach, reach = the most samples the group can contribute to B <= kmax."""
        return _row(size, self.n, self.kmax, self.with_replacement)


@lru_cache(maxsize=8192)
def _row(size: int, n: int, kmax: int, with_replacement: bool) -> np.ndarray:
    if size == 0:
        row = np.ones(1)
    elif with_replacement:
        log_lam = _log_factorials(kmax)[kmax] / kmax  # lambda^kmax = kmax!: the total at kmax is ~1
        x = np.arange(kmax + 1)
        row = np.exp(x * (math.log(size / n) + log_lam) - _log_factorials(kmax)[x])
    else:
        log_fact = _log_factorials(n)
        log_lam = (log_fact[n] - log_fact[kmax] - log_fact[n - kmax]) / kmax  # C(n, kmax) / lambda^kmax = 1
        x = np.arange(min(size, kmax) + 1)
        row = np.exp(log_fact[size] - log_fact[x] - log_fact[size - x] - x * log_lam)
    row.flags.writeable = False  # shared through the cache
    return row


@lru_cache(maxsize=8)
def _log_factorials(m: int) -> np.ndarray:
    """log(x!) for x = 0..m."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + 1)))])


def _conv(a: np.ndarray, b: np.ndarray, kmax: int) -> np.ndarray:
    """Product of two polynomials in y, coefficients of y^0..y^kmax (zero-padded)."""
    out = np.convolve(a, b)[: kmax + 1]
    if len(out) == kmax + 1:
        return out
    padded = np.zeros(kmax + 1)
    padded[: len(out)] = out
    return padded


def _toeplitz(row: np.ndarray, size: int) -> np.ndarray:
    """(size, size) matrix T with (T @ v)[k] = sum_x row[x] v[k-x]: multiplication by ``row``."""
    padded = np.zeros(2 * size)
    m = min(len(row), size)
    padded[size: size + m] = row[:m]
    return padded[size + _lag(size)]


def _focus_wins(draw: _Draw, focus: int, others: tuple[int, ...], unanswered: int) -> np.ndarray:
    """Scaled number of draws of B = 0..kmax in which the focus group wins the vote (ties split).

    ``focus``, ``others`` and ``unanswered`` are group sizes. wins = sum over the focus's count c
    of focus[c] y^c ways_c(y), where [y^k] ways_c = ways the others and the unanswered draw k
    while the focus wins, weighted 1/(1+t) with t rivals tied at c. Drawing from several groups at
    once is drawing from their union, so groups that cannot reach c votes (and the unanswered)
    enter as one "filler" row of their combined size. Four ranges of c:

    - above what any rival can draw: the focus always wins;
    - c = 1: each rival draws 0 or 1 and every drawn one ties (closed form);
    - 2..runner_up (the second-largest rival's reach): a DP over the rivals, all c at once;
    - runner_up+1..the largest rival's reach: one rival left (closed form).
    """
    kmax = draw.kmax
    others = tuple(sorted(others))
    reach = [len(draw.row(s)) - 1 for s in others]  # the most samples each group can contribute
    f = draw.row(focus)
    top = len(f) - 1
    contested = min(max(reach, default=0), top)  # above this no rival can reach c votes
    tail = np.zeros(top + 1)  # c > contested: the focus wins whatever the others draw
    tail[contested + 1:] = f[contested + 1:]
    wins = _conv(tail, draw.row(sum(others) + unanswered), kmax)
    if contested >= 1:
        wins[1:] += f[1] * _one_vote_each(draw, others, unanswered)[:kmax]
    runner_up = min(reach[-2] if len(reach) > 1 else 0, contested)  # above this only one rival can reach c
    if runner_up >= 2:
        n_single = bisect_left(reach, 2)  # groups of one sample cannot reach c >= 2
        wins += _rivals(draw, f, 2, runner_up, others[n_single:], sum(others[:n_single]) + unanswered)
    if contested > max(runner_up, 1):
        wins += _one_rival(draw, f, max(runner_up, 1) + 1, contested, others[-1], sum(others[:-1]) + unanswered)
    return wins


def _one_vote_each(draw: _Draw, others: tuple[int, ...], unanswered: int) -> np.ndarray:
    """ways_1[k]: each rival draws 0 or 1, and each drawn rival is a group tied with the focus."""
    ties = np.ones(1)  # ties[t]: t rivals drawn once each (short: degree <= number of rivals)
    for size, group in groupby(others):  # m rivals of one size: binomial in the ones drawn
        m = len(list(group))
        ties = np.convolve(ties, draw.row(size)[:2] if m == 1 else _binomial_powers(draw.row(size)[1], m))
    ties = ties / np.arange(1, len(ties) + 1)
    return _conv(ties, draw.row(unanswered), draw.kmax)


def _one_rival(draw: _Draw, f: np.ndarray, lo: int, hi: int, rival_size: int, filler: int) -> np.ndarray:
    """sum over c = lo..hi of f[c] y^c ways_c(y) when one rival can reach c: it must draw fewer
    than c, or exactly c and halve the win."""
    rival = draw.row(rival_size)
    c, x = _grid(hi + 1, len(rival))
    weight = (c >= lo) * ((x < c) + 0.5 * (x == c))  # rows c < lo stay zero
    joint = weight * f[: hi + 1, None] * rival  # joint[c, x]: focus draws c, rival x
    by_total = _shift_rows(joint, draw.kmax + 1).sum(axis=0)  # fold (c, x) onto c + x draws
    return _conv(by_total, draw.row(filler), draw.kmax)


def _rivals(draw: _Draw, f: np.ndarray, lo: int, hi: int, rivals: tuple[int, ...], filler: int) -> np.ndarray:
    """sum over c = lo..hi of f[c] y^c ways_c(y) for rival groups ``rivals``: a DP over them of
    state[c, k, t] (they draw k, t of them tied with the focus at c), all c at once. A rival too
    small to reach c has no terms at or above c, so the same step just multiplies it in."""
    kmax = draw.kmax
    # the rivals together draw at most sum of min(reach, c) <= sum of min(reach, hi)
    depth = min(sum(min(len(draw.row(s)) - 1, hi) for s in rivals), kmax - lo) + 1
    work = len(rivals) ** 2 * (hi - lo + 1) * depth ** 2
    if work > MAX_WORK:  # only when extrapolating far with many distinct answers (each can reach any c)
        raise ValueError(f"majority vote of B={kmax} over {len(rivals) + 1} distinct answers drawn with "
                         f"replacement is too expensive to compute exactly; ask for B <= {draw.n}")
    state = np.zeros((hi - lo + 1, depth, len(rivals) + 1))
    state[:, 0, 0] = 1.0
    lag = _lag(depth)  # lag[k, j] = k - j
    below = lag[None] < np.arange(lo, hi + 1)[:, None, None]  # (c, k, j): x = k - j < c draws
    for s in rivals:
        row = _padded(draw.row(s), max(depth, hi + 1))  # zero where the rival cannot reach
        # this rival draws fewer than c: multiply by its polynomial truncated below c, per c
        nxt = np.where(below, _toeplitz(row, depth), 0.0) @ state
        # exactly c: one more tie (state shifted by c along k); more than c: the focus loses
        tied = _shift_rows(state[:, :, :-1], depth, first=lo)
        nxt[:, :, 1:] += row[lo: hi + 1, None, None] * tied
        state = nxt
    ways = state @ (1.0 / np.arange(1, len(rivals) + 2))  # (c, k): ties split
    by_total = _shift_rows(f[lo: hi + 1, None] * ways, kmax + 1, first=lo).sum(axis=0)
    return _conv(by_total, draw.row(filler), kmax)


def _padded(row: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length)
    m = min(len(row), length)
    out[:m] = row[:m]
    return out


def _binomial_powers(a: float, m: int) -> np.ndarray:
    """Coefficients of (1 + a y)^m."""
    return np.array([math.comb(m, j) for j in range(m + 1)], dtype=float) * a ** np.arange(m + 1)


@lru_cache(maxsize=256)
def _lag(size: int) -> np.ndarray:
    """lag[k, j] = k - j."""
    k = np.arange(size)
    return k[:, None] - k[None, :]


@lru_cache(maxsize=4096)
def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(rows)[:, None], np.arange(cols)[None, :]


def _shift_rows(rows: np.ndarray, width: int, first: int = 0) -> np.ndarray:
    """out[i, j, ...] = rows[i, j - first - i, ...] (0 where that index is negative), for j < width:
    row i shifted right by first + i."""
    n_rows, n_cols = rows.shape[:2]
    span = max(width, first + n_rows + n_cols)
    padded = np.zeros((n_rows, span + 1) + rows.shape[2:])
    padded[:, first: first + n_cols] = rows
    # read the same memory as rows one element shorter: row i now starts i elements further on
    flat = padded.reshape(-1)[: n_rows * span * math.prod(rows.shape[2:])]
    return flat.reshape((n_rows, span) + rows.shape[2:])[:, :width]
