"""accuracy(B, L) from traces: the mean over problems of the exact per-problem majority-vote
probability, a bootstrap confidence interval over problems, pass@k beside it, and
``MeasuredCurve``, the same numbers as an ``AccuracyCurve`` for ``lattts predict``.

Between measured lengths values are interpolated linearly in log2(L); outside them there is no
value (NaN), and points say which they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from lattts.errors import UserError
from lattts.simulator.accuracy import interp_log2, log2_grid
from lattts.traces.format import Traces
from lattts.traces.groups import AnswerSets, group_answers
from lattts.traces.majority import AnswerCounts, majority_matrix, pass_at_k


@dataclass(frozen=True)
class Estimates:
    """Per-problem estimates, arrays of shape (lengths, problems, branches); one budget entry for a
    single-budget file."""

    answers: AnswerSets
    branches: tuple[int, ...]
    majority: np.ndarray  # P(majority of B correct)
    pass_at_k: np.ndarray  # P(any of B correct)
    extrapolated: np.ndarray  # bool: B > the problem's samples (drawn with replacement)


def estimate(answers: AnswerSets, branches) -> Estimates:
    """Majority-vote accuracy and pass@k of every problem at every budget, for each B."""
    branches = tuple(int(b) for b in branches)
    maj, passk, ext = [], [], []
    for per_length in answers.counts:
        try:
            m, e = majority_matrix(per_length, branches)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        p, _ = pass_at_k([c.n for c in per_length], [c.n_correct for c in per_length], branches)
        maj.append(m), passk.append(p), ext.append(e)
    return Estimates(answers=answers, branches=branches, majority=np.stack(maj), pass_at_k=np.stack(passk),
                     extrapolated=np.stack(ext))


@dataclass(frozen=True)
class CurvePoint:
    """accuracy at one (B, L), with its interval and how it was obtained."""

    branches: int
    max_tokens: int | None  # None: a single-budget file
    accuracy: float  # mean over problems; NaN outside the measured lengths
    ci_low: float
    ci_high: float
    pass_at_k: float  # P(any of B correct): the upper bound for any vote
    extrapolated: bool  # B > some problem's samples: drawn with replacement from its answers
    interpolated: bool  # L between measured lengths (linear in log2 L)
    measured: bool  # False when L is outside the measured lengths (no value)

    def to_json(self) -> dict:
        def num(x: float):
            return None if np.isnan(x) else round(float(x), 6)

        return {"branches": self.branches, "max_tokens": self.max_tokens, "accuracy": num(self.accuracy),
                "ci_low": num(self.ci_low), "ci_high": num(self.ci_high), "pass_at_k": num(self.pass_at_k),
                "extrapolated": self.extrapolated, "interpolated": self.interpolated, "measured": self.measured}


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means over problems of ``values`` (problems, ...) for ``resamples`` resamplings of the
    problems with replacement: shape (resamples, ...)."""
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) / n  # (resamples, problems)
    return np.tensordot(weights, values, axes=(1, 0))


def curve_points(est: Estimates, lengths=None, confidence: float = 0.95, resamples: int = 1000,
                 seed: int = 0) -> list[CurvePoint]:
    """One point per (L, B): L = ``lengths`` (default: the measured ones; ignored for a
    single-budget file) and B = the estimated branches. The interval is the percentile bootstrap
    over problems (the same resamples for every point), interpolated in log2(L) like the mean."""
    measured = est.answers.lengths
    per_problem = np.moveaxis(est.majority, 1, 0)  # (problems, lengths, branches)
    mean = per_problem.mean(axis=0)  # (lengths, branches)
    boot = bootstrap_means(per_problem, resamples, seed)  # (resamples, lengths, branches)
    passk = est.pass_at_k.mean(axis=1)
    ext = est.extrapolated.any(axis=1)  # (lengths, branches)
    tail = (1.0 - confidence) / 2
    if measured is None:
        lo, hi = np.quantile(boot, [tail, 1 - tail], axis=0)
        return [_point(b, None, mean[0, i], lo[0, i], hi[0, i], passk[0, i], ext[0, i], False, True)
                for i, b in enumerate(est.branches)]
    wanted = sorted(set(int(L) for L in (lengths or measured)))
    xb = np.array(measured, float)
    points = []
    for L in wanted:
        exact = L in measured
        inside = measured[0] <= L <= measured[-1]
        # the lengths a value at L is made from: itself, or its two neighbours
        j = np.searchsorted(xb, L)
        used = [measured.index(L)] if exact else ([j - 1, j] if inside else [])
        at = np.full(len(est.branches), float(L))
        m = interp_log2(mean.T, xb, at)
        reps = interp_log2(np.moveaxis(boot, 1, 2), xb, np.broadcast_to(at, boot.shape[::2]))  # (resamples, branches)
        lo, hi = np.quantile(reps, [tail, 1 - tail], axis=0)
        pk = interp_log2(passk.T, xb, at)
        for i, b in enumerate(est.branches):
            points.append(_point(b, L, m[i], lo[i], hi[i], pk[i], bool(ext[used, i].any()) if used else False,
                                 inside and not exact, inside))
    return points


def _point(b, L, acc, lo, hi, pk, ext, interpolated, measured) -> CurvePoint:
    if not np.isnan(acc):  # the percentile interval can miss the mean by rounding when all resamples agree
        lo, hi = min(lo, acc), max(hi, acc)
    return CurvePoint(branches=int(b), max_tokens=L, accuracy=float(acc), ci_low=float(lo), ci_high=float(hi),
                      pass_at_k=float(pk), extrapolated=bool(ext), interpolated=bool(interpolated),
                      measured=bool(measured))


@lru_cache(maxsize=4096)
def mean_majority(problems: tuple[AnswerCounts, ...], branches: int) -> float:
    """Mean over problems of the exact majority-vote accuracy at B (cached: the search asks per B)."""
    return float(majority_matrix(problems, [branches])[0].mean())


@dataclass(frozen=True)
class MeasuredCurve:
    """An ``AccuracyCurve`` measured from traces (kind 'measured').

    B up to the fewest samples any problem has is answered exactly; larger B are not answered
    (NaN), so ``lattts predict`` never extrapolates a vote silently. Multi-budget traces
    interpolate in log2(L) between their lengths and answer nothing outside them.

    A single-budget file says nothing about how accuracy falls when L is cut. With token counts
    it answers at L >= its longest sample (``full_tokens``: no sample is cut there, so the measured
    accuracy holds) and nothing below; predict then searches that one L. Without token counts it
    answers at any L, trusting the L the user gives with ``--lengths`` to be the budget the traces
    were generated under, and ``search_lengths`` asks for one.
    """

    name: str
    source: str
    answers: AnswerSets
    full_tokens: int | None = None
    model: str | None = None  # whose samples these are; None: the file does not say
    kind: str = "measured"

    @classmethod
    def from_traces(cls, traces: Traces, name: str | None = None, source: str | None = None,
                    model: str | None = None) -> "MeasuredCurve":
        answers = group_answers(traces)
        full = traces.longest_tokens if answers.lengths is None else None
        n_min, n_max = answers.min_samples, answers.max_samples
        samples = f"{n_min}" if n_min == n_max else f"{n_min}-{n_max}"
        text = (f"measured from traces {source or traces.describe()}: {len(answers.problems)} problems x {samples} "
                f"samples; majority vote exact for B <= {n_min}, larger B not answered")
        if answers.lengths is None:
            text += (f"; single budget: answers at L >= {full} tokens (its longest sample"
                     f"{', approximate' if traces.tokens_approximate else ''})" if full else
                     "; single budget without token counts: answers at the L given with --lengths")
        return cls(name=name or traces.path, source=text, answers=answers, full_tokens=full, model=model)

    @property
    def lengths(self) -> tuple[int, ...] | None:
        return self.answers.lengths

    @property
    def max_branches(self) -> int:
        """The largest B answered (exactly): the fewest samples any problem has at any budget."""
        return self.answers.min_samples

    @property
    def branch_range(self) -> tuple[int, int]:
        return 1, self.max_branches

    def at_lengths(self, branches: int) -> np.ndarray:
        """Mean majority-vote accuracy at each measured budget (one entry if single-budget)."""
        b = int(branches)
        if b < 1 or b > self.max_branches:
            return np.full(len(self.answers.counts), np.nan)
        return np.array([mean_majority(per_length, b) for per_length in self.answers.counts])

    def accuracy(self, branches, max_tokens) -> np.ndarray:
        B, L = np.broadcast_arrays(np.asarray(branches, int), np.asarray(max_tokens, float))
        out = np.full(B.shape, np.nan)
        for b in np.unique(B):
            sel = B == b
            values = self.at_lengths(int(b))
            if self.lengths is None:
                ok = L[sel] >= self.full_tokens if self.full_tokens else np.ones(sel.sum(), bool)
                out[sel] = np.where(ok, values[0], np.nan)
            else:
                out[sel] = interp_log2(values, np.array(self.lengths), L[sel])
        return out

    def search_lengths(self, steps_per_octave: int = 4) -> list[int]:
        if self.lengths is not None:
            return log2_grid(self.lengths, steps_per_octave)
        if self.full_tokens:
            return [self.full_tokens]
        raise UserError(f"accuracy curve {self.name} is a single-budget trace without token counts, so its "
                        f"length budget is unknown; pass --lengths L (the budget the traces were generated under)")


@dataclass(frozen=True)
class EmbeddedCurve:
    """A measured curve shipped with lattts (lattts/data/curves/)."""

    name: str
    file: str
    provenance: str  # repo@commit:path (licence) of the raw traces
    model: str  # whose samples, as far as the source says


EMBEDDED = {
    "qwen2.5-math-math100-n8": EmbeddedCurve(
        name="qwen2.5-math-math100-n8", file="qwen2.5-math-math100-n8.jsonl",
        model="Qwen2.5-Math-Instruct (size not recorded)",
        provenance="QwenLM/Qwen2.5-Math@a45202b:evaluation/data/eval_rm_maj_example/math_cot_100.jsonl (MIT), "
                   "100 MATH problems x 8 sampled answers of a Qwen2.5-Math instruct model"),
}


@lru_cache(maxsize=8)
def embedded_curve(name: str) -> MeasuredCurve:
    """A shipped measured curve by name (see ``EMBEDDED``)."""
    from lattts.traces.readers import load_traces

    entry = EMBEDDED[name]
    ref = resources.files("lattts").joinpath("data", "curves", entry.file)
    with resources.as_file(ref) as path:
        traces = load_traces(path)
    return MeasuredCurve.from_traces(traces, name=entry.name, model=entry.model,
                                     source=f"{entry.provenance}, converted to lattts traces ({entry.file})")


def load_curve(path: str) -> MeasuredCurve:
    """A measured curve from a trace file (any format ``load_traces`` reads); its name is the path, its
    model the one ``lattts measure`` recorded beside it (``<file>.run.json``), else unknown."""
    from lattts.traces.journal import run_info
    from lattts.traces.readers import load_traces

    info = run_info(path)
    config = info.get("config") if isinstance(info, dict) else None
    model = config.get("model") if isinstance(config, dict) else None
    return MeasuredCurve.from_traces(load_traces(path), model=model if isinstance(model, str) and model else None)
