"""Accuracy curves accuracy(B, L) with provenance, and the embedded paper-fitted default.

Every curve answers ``accuracy(branches, max_tokens)`` (fractions; NaN outside what it can
answer), says where its numbers come from and for which model, and lists the lengths and branch
counts its evidence covers. Between measured lengths it interpolates linearly in log2(L); outside
them it refuses (NaN), never extrapolates in L. ``accuracy_basis`` says of any (B, L) whether it
was measured or fitted there, interpolated in L, or extrapolated in B (a fitted model answers B
beyond the branch counts it was fitted at; a measured curve does not).

The default curve is fitted to the paper's published s1.1-32B MATH-500 summary (Table 1): at
each budget L the single-sample success p of a problem is modelled as Beta(mean = acc(1, L),
concentration k_L), and k_L is chosen so that the majority vote of B=16 branches (the paper's
latency-optimal setting for this model, Appendix A.2) matches its latency-optimal accuracy.
Majority voting is modelled as binary: a vote is correct when correct samples outnumber the
rest (ties split evenly); with wrong answers spread over several values this is pessimistic.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np

from lattts.errors import UserError, suggest

PAPER_SOURCE = ("fitted to published summary: Wang et al. 2025, 'Faster and Better LLMs via Latency-Aware "
                "Test-Time Scaling', Table 1 (s1.1-32B, MATH-500), B=16 from Appendix A.2")
PAPER_FIT_BRANCHES = 16
PAPER_CURVE_NAME = "s1.1-32b-math500-paper"
PAPER_MODEL = "s1.1-32B"  # whose answers Table 1 reports
BASES = ("measured", "fitted", "extrapolated-B", "interpolated-L")


class AccuracyCurve(Protocol):
    name: str
    source: str
    kind: str  # 'fitted' or 'measured'
    model: str | None  # the model whose answers the curve measures or is fitted to; None: not recorded

    @property
    def lengths(self) -> tuple[int, ...] | None: ...  # measured L values; None for a single-budget curve

    @property
    def branch_range(self) -> tuple[int, int]: ...  # (smallest, largest) B measured or fitted at

    def accuracy(self, branches, max_tokens) -> np.ndarray: ...

    def search_lengths(self, steps_per_octave: int = 4) -> list[int]: ...


def log2_grid(lengths, steps_per_octave: int) -> list[int]:
    """The measured lengths plus evenly spaced points in log2(L) between neighbours."""
    lengths = sorted(set(int(b) for b in lengths))
    out = set(lengths)
    for lo, hi in zip(lengths, lengths[1:]):
        k = max(1, round(steps_per_octave * math.log2(hi / lo)))
        out.update(int(round(lo * (hi / lo) ** (i / k))) for i in range(1, k))
    return sorted(out)


def interp_log2(values_at_lengths: np.ndarray, lengths: np.ndarray, max_tokens) -> np.ndarray:
    """Interpolate per-length values (..., n_lengths) linearly in log2(L); NaN outside the lengths."""
    x = np.log2(np.asarray(max_tokens, float))
    xb = np.log2(np.asarray(lengths, float))
    if len(xb) == 1:
        return np.where(np.isclose(x, xb[0]), values_at_lengths[..., 0], np.nan)
    j = np.clip(np.searchsorted(xb, x, side="right") - 1, 0, len(xb) - 2)
    w = (x - xb[j]) / (xb[j + 1] - xb[j])
    lo = np.take_along_axis(values_at_lengths, j[..., None], -1)[..., 0] if values_at_lengths.ndim > 1 else values_at_lengths[j]
    hi = np.take_along_axis(values_at_lengths, (j + 1)[..., None], -1)[..., 0] if values_at_lengths.ndim > 1 else values_at_lengths[j + 1]
    out = lo + w * (hi - lo)
    return np.where((x < xb[0] - 1e-9) | (x > xb[-1] + 1e-9), np.nan, out)


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def majority_accuracy_beta(mean: float, concentration: float, branches: int) -> float:
    """P(majority of B votes correct) when each problem's success p ~ Beta(mean, concentration).

    X ~ BetaBinomial(B, a, b): P(X > B/2) + P(X = B/2)/2 (binary vote, ties split).
    """
    a, b = mean * concentration, (1.0 - mean) * concentration
    x = np.arange(branches + 1, dtype=float)
    log_pmf = (_lgamma(branches + 1.0) - _lgamma(x + 1.0) - _lgamma(branches - x + 1.0)
               + _lgamma(x + a) + _lgamma(branches - x + b) - _lgamma(branches + a + b)
               - (_lgamma(a) + _lgamma(b) - _lgamma(a + b))).astype(float)
    pmf = np.exp(log_pmf)
    weight = np.where(2 * x > branches, 1.0, np.where(2 * x == branches, 0.5, 0.0))
    return float(np.dot(pmf, weight) / pmf.sum())


def fit_concentration(mean: float, target: float, branches: int) -> float:
    """The Beta concentration k at which the B-branch majority vote reaches ``target`` (bisection in log k)."""
    lo, hi = math.log(1e-3), math.log(1e5)
    f_lo = majority_accuracy_beta(mean, math.exp(lo), branches)
    f_hi = majority_accuracy_beta(mean, math.exp(hi), branches)
    if not f_lo <= target <= f_hi:
        raise ValueError(f"majority accuracy {target:.3f} at B={branches} is not reachable from single-sample "
                         f"accuracy {mean:.3f} (range {f_lo:.3f}..{f_hi:.3f})")
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if majority_accuracy_beta(mean, math.exp(mid), branches) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


@dataclass(frozen=True)
class BetaMajorityCurve:
    """acc(B, L) from a Beta model of per-problem success per budget (fitted to summaries)."""

    name: str
    source: str
    measured_lengths: tuple[int, ...]
    means: tuple[float, ...]
    concentrations: tuple[float, ...]
    fitted_branches: int
    model: str | None = None
    kind: str = "fitted"

    @property
    def lengths(self) -> tuple[int, ...]:
        return self.measured_lengths

    @property
    def branch_range(self) -> tuple[int, int]:
        """B = 1 (the means) and B = ``fitted_branches`` (the concentrations); larger B is the model's extrapolation."""
        return 1, self.fitted_branches

    def at_lengths(self, branches: int) -> np.ndarray:
        return np.array([majority_accuracy_beta(m, k, branches) for m, k in zip(self.means, self.concentrations)])

    def accuracy(self, branches, max_tokens) -> np.ndarray:
        B, L = np.broadcast_arrays(np.asarray(branches, int), np.asarray(max_tokens, float))
        out = np.full(B.shape, np.nan)
        for b in np.unique(B):
            sel = B == b
            out[sel] = interp_log2(self.at_lengths(int(b)), np.array(self.measured_lengths), L[sel])
        return out

    def search_lengths(self, steps_per_octave: int = 4) -> list[int]:
        return log2_grid(self.measured_lengths, steps_per_octave)


@lru_cache(maxsize=1)
def paper_table1() -> tuple[dict, ...]:
    path = resources.files("lattts").joinpath("data", "paper", "table1_s1.1-32b_math500.csv")
    with path.open(encoding="utf-8") as handle:
        return tuple(dict(r) for r in csv.DictReader(handle))


@lru_cache(maxsize=1)
def paper_curve() -> BetaMajorityCurve:
    """The embedded default: s1.1-32B on MATH-500, fitted to Table 1 (baseline and latency-optimal rows)."""
    rows = paper_table1()
    base = {int(r["max_tokens"]): float(r["accuracy_pct"]) / 100 for r in rows if r["strategy"] == "baseline"}
    best = {int(r["max_tokens"]): float(r["accuracy_pct"]) / 100 for r in rows if r["strategy"] == "latency-optimal"}
    lengths = tuple(sorted(base))
    ks = tuple(fit_concentration(base[L], best[L], PAPER_FIT_BRANCHES) for L in lengths)
    return BetaMajorityCurve(name=PAPER_CURVE_NAME, source=PAPER_SOURCE, measured_lengths=lengths,
                             means=tuple(base[L] for L in lengths), concentrations=ks,
                             fitted_branches=PAPER_FIT_BRANCHES, model=PAPER_MODEL)


@dataclass(frozen=True)
class ScaledCurve:
    """A curve read at L * length_scale: the shape of a real trade-off moved to the short lengths a
    small machine can run live (validation's decision check). Labelled as such wherever it appears."""

    base: AccuracyCurve
    length_scale: float
    kind: str = "scaled"

    @property
    def name(self) -> str:
        return f"{self.base.name} (lengths / {self.length_scale:g})"

    @property
    def source(self) -> str:
        return (f"synthetic: {self.base.name} with every length divided by {self.length_scale:g}, so its trade-off "
                f"between branches and length falls where this machine can run it ({self.base.source})")

    @property
    def model(self) -> str | None:
        return self.base.model

    @property
    def branch_range(self) -> tuple[int, int]:
        return self.base.branch_range

    @property
    def lengths(self) -> tuple[int, ...] | None:
        b = self.base.lengths
        return None if b is None else tuple(max(1, round(x / self.length_scale)) for x in b)

    def accuracy(self, branches, max_tokens) -> np.ndarray:
        return self.base.accuracy(branches, np.asarray(max_tokens, float) * self.length_scale)

    def search_lengths(self, steps_per_octave: int = 4) -> list[int]:
        return sorted({max(1, round(x / self.length_scale)) for x in self.base.search_lengths(steps_per_octave)})


@dataclass(frozen=True)
class AccuracyBasis:
    """What an accuracy at one (B, L) rests on. ``basis`` is the weakest that applies: extrapolated-B
    (B outside the branch counts measured or fitted at), else interpolated-L (L between measured
    lengths), else the curve's own kind (measured or fitted); both flags are kept."""

    basis: str  # one of BASES
    extrapolated_b: bool
    interpolated_l: bool

    def to_json(self) -> dict:
        return {"basis": self.basis, "extrapolated_B": self.extrapolated_b, "interpolated_L": self.interpolated_l}


def accuracy_basis(curve: AccuracyCurve, branches: int, max_tokens: int) -> AccuracyBasis:
    """The basis of ``curve``'s accuracy at (B, L), by the same rules as ``lattts accuracy``: B beyond
    what was measured (or fitted) is extrapolated, L strictly between measured lengths interpolated."""
    lo, hi = curve.branch_range
    extrapolated = not lo <= int(branches) <= hi
    lengths = curve.lengths
    interpolated = bool(lengths) and lengths[0] < max_tokens < lengths[-1] and int(max_tokens) not in lengths
    kind = curve.base.kind if isinstance(curve, ScaledCurve) else curve.kind
    basis = "extrapolated-B" if extrapolated else "interpolated-L" if interpolated else kind
    return AccuracyBasis(basis, extrapolated, interpolated)


BUILTIN_CURVES = {PAPER_CURVE_NAME: paper_curve}


def resolve_curve(name: str) -> AccuracyCurve:
    """A built-in curve by name (measured-trace curves are added by lattts.traces)."""
    key = name.strip().lower()
    if key in BUILTIN_CURVES:
        return BUILTIN_CURVES[key]()
    raise UserError(f"unknown accuracy curve {name!r}{suggest(name, BUILTIN_CURVES)}; "
                    f"known: {', '.join(BUILTIN_CURVES)}")
