"""Search the (B, gamma, L) grid: latency, accuracy, memory, the Pareto frontier and the best
configuration within a budget, beside the paper's Table-1 strategies at that budget.

Strategies (paper Table 1): baseline = B=1, gamma=0; branch-wise = gamma=0, any B; sequence-wise =
B=1, any gamma; latency-optimal = anything. Each is the most accurate configuration of its kind
that meets the budget (ties go to the faster one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from lattts.simulator.accuracy import AccuracyCurve
from lattts.simulator.deployment import Deployment
from lattts.simulator.distribution import LatencySpread, latency_nodes, latency_quantile, p_within
from lattts.simulator.generation import Workload, generation_latency, memory_required_bytes

DEFAULT_BRANCHES = (1, 2, 4, 8, 16, 32, 64, 128)
DEFAULT_DRAFT_LENS = tuple(range(0, 9))
STRATEGIES = ("baseline", "branch_wise", "sequence_wise")


def branch_grid(max_branches: int) -> tuple[int, ...]:
    """The branch counts searched up to ``max_branches``: powers of two, and the maximum itself."""
    branches = tuple(b for b in DEFAULT_BRANCHES if b <= max_branches) or (1,)
    if max_branches > branches[-1]:
        branches = branches + (max_branches,)
    return branches


@dataclass(frozen=True)
class SearchProblem:
    """Everything a prediction depends on: what runs, where, how accurate it is, and which
    configurations to consider."""

    workload: Workload
    deployment: Deployment
    curve: AccuracyCurve
    branches: tuple[int, ...] = DEFAULT_BRANCHES
    draft_lens: tuple[int, ...] = DEFAULT_DRAFT_LENS
    lengths: tuple[int, ...] = ()  # length budgets L (tokens); empty = the curve's search grid
    spread: LatencySpread = LatencySpread(0.0, "device spread not modelled")  # run-to-run, from the profile


@dataclass(frozen=True)
class Config:
    """One configuration theta: B branches, draft length gamma, length budget L (tokens)."""

    branches: int
    draft_len: int
    max_tokens: int

    def label(self) -> str:
        return f"B={self.branches} γ={self.draft_len} L={self.max_tokens}"


@dataclass(frozen=True)
class Point:
    """One configuration with its predicted latency and accuracy."""

    branches: int
    draft_len: int
    max_tokens: int
    latency_s: float
    accuracy: float
    memory_bytes: float = field(default=0.0)
    tokens_per_round: float = 1.0
    latency_p90_s: float | None = None  # 90th percentile of the predicted latency distribution
    p_within_budget: float | None = None  # P(latency <= the budget asked for)

    @property
    def config(self) -> Config:
        return Config(self.branches, self.draft_len, self.max_tokens)

    def to_json(self) -> dict:
        d = asdict(self)
        d["latency_s"] = round(self.latency_s, 6)
        d["accuracy"] = round(self.accuracy, 6)
        d["memory_bytes"] = int(self.memory_bytes)
        d["tokens_per_round"] = round(self.tokens_per_round, 4)
        d["latency_p90_s"] = None if self.latency_p90_s is None else round(self.latency_p90_s, 6)
        d["p_within_budget"] = None if self.p_within_budget is None else round(self.p_within_budget, 4)
        return d


@dataclass(frozen=True)
class Grid:
    """Every configuration evaluated, as flat arrays."""

    branches: np.ndarray
    draft_len: np.ndarray
    max_tokens: np.ndarray
    latency_s: np.ndarray
    accuracy: np.ndarray
    memory_bytes: np.ndarray
    fits: np.ndarray  # bool: within device memory
    tokens_per_round: np.ndarray
    latency_nodes_s: np.ndarray  # (configurations, NODES): latency at quantiles of the rounds (distribution.py)
    latency_p90_s: np.ndarray
    spread: LatencySpread

    def p_within(self, budget_s: float) -> np.ndarray:
        """P(latency <= budget_s) of every configuration."""
        return p_within(self.latency_nodes_s, self.spread, budget_s)

    def point(self, i: int, budget_s: float | None = None) -> Point:
        pw = None if budget_s is None else float(p_within(self.latency_nodes_s[i:i + 1], self.spread, budget_s)[0])
        return Point(int(self.branches[i]), int(self.draft_len[i]), int(self.max_tokens[i]),
                     float(self.latency_s[i]), float(self.accuracy[i]), float(self.memory_bytes[i]),
                     float(self.tokens_per_round[i]), float(self.latency_p90_s[i]), pw)

    def __len__(self) -> int:
        return len(self.branches)


def evaluate_grid(problem: SearchProblem) -> Grid:
    """Latency, accuracy and memory of every (B, gamma, L) in the problem's grid."""
    work, deploy = problem.workload, problem.deployment
    lengths = problem.lengths or tuple(problem.curve.search_lengths())
    gammas = problem.draft_lens if work.draft is not None else (0,)
    B, G, L = (a.ravel() for a in np.meshgrid(problem.branches, gammas, lengths, indexing="ij"))
    lat = generation_latency(work, deploy, B, G, L)
    acc = problem.curve.accuracy(B, L)
    mem = memory_required_bytes(work, deploy.dtype, B, G, L)
    fits = mem <= deploy.usable_memory_bytes
    valid = ~np.isnan(acc)
    nodes = latency_nodes(work, deploy, B[valid], G[valid], L[valid])
    return Grid(B[valid], G[valid], L[valid], lat.total_s[valid], acc[valid], mem[valid], fits[valid],
                lat.tokens_per_round[valid], nodes, latency_quantile(nodes, problem.spread), problem.spread)


def strategy_mask(grid: Grid, strategy: str) -> np.ndarray:
    """Which configurations belong to one of the paper's strategies (``STRATEGIES``)."""
    if strategy == "baseline":
        return (grid.branches == 1) & (grid.draft_len == 0)
    if strategy == "branch_wise":
        return grid.draft_len == 0
    if strategy == "sequence_wise":
        return grid.branches == 1
    raise ValueError(strategy)


def best_within(grid: Grid, budget_s: float, mask: np.ndarray | None = None,
                confidence: float | None = None) -> int | None:
    """Index of the most accurate configuration meeting the budget (fastest among equals), or None.
    Meeting it means a predicted mean latency within the budget, or with ``confidence`` a probability
    of at least that of finishing within it (its ``confidence``-quantile of latency is within it)."""
    ok = grid.fits & (grid.latency_s <= budget_s if confidence is None else grid.p_within(budget_s) >= confidence)
    if mask is not None:
        ok &= mask
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return None
    acc = np.round(grid.accuracy[idx], 9)
    top = idx[acc == acc.max()]
    return int(top[np.argmin(grid.latency_s[top])])


def pareto_frontier(latency_s: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal points, ordered by latency; accuracy strictly rises along it."""
    order = np.lexsort((-accuracy, latency_s))  # by latency, then by accuracy descending
    frontier, best = [], -np.inf
    for i in order:
        if accuracy[i] > best + 1e-12:
            frontier.append(i)
            best = accuracy[i]
    return np.asarray(frontier, dtype=int)


@dataclass(frozen=True)
class Prediction:
    budget_s: float
    best: Point | None
    baselines: dict  # strategy -> Point | None
    frontier: tuple[Point, ...]
    evaluated: int
    excluded_memory: int
    fastest_s: float  # fastest configuration that fits memory
    confidence: float | None = None  # None: chosen by mean latency; else by P(within budget) >= confidence


def predict(problem: SearchProblem, budget_s: float, grid: Grid | None = None,
            confidence: float | None = None) -> Prediction:
    """The best configuration within ``budget_s`` (by mean latency, or with ``confidence`` by the
    probability of finishing within it), the paper's strategies and the Pareto frontier."""
    grid = grid if grid is not None else evaluate_grid(problem)
    fitting = np.flatnonzero(grid.fits)
    best = best_within(grid, budget_s, confidence=confidence)
    baselines = {}
    for strategy in STRATEGIES:
        i = best_within(grid, budget_s, strategy_mask(grid, strategy), confidence)
        baselines[strategy] = grid.point(i, budget_s) if i is not None else None
    frontier = fitting[pareto_frontier(grid.latency_s[fitting], grid.accuracy[fitting])] if len(fitting) else []
    return Prediction(
        budget_s=budget_s, best=grid.point(best, budget_s) if best is not None else None, baselines=baselines,
        frontier=tuple(grid.point(int(i), budget_s) for i in frontier), evaluated=len(grid),
        excluded_memory=int((~grid.fits).sum()),
        fastest_s=float(grid.latency_s[fitting].min()) if len(fitting) else float("inf"), confidence=confidence,
    )


def chosen_by(confidence: float | None) -> str:
    """How the best configuration was chosen, in words (the JSON's ``chosen_by``)."""
    return "mean latency within the budget" if confidence is None else f"P(latency <= budget) >= {confidence}"


def check_confidence(confidence: float | None) -> None:
    """Refuse a ``--confidence`` that is not a probability strictly between 0 and 1."""
    from lattts.errors import UserError

    if confidence is not None and not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence {confidence}: give a probability strictly between 0 and 1, e.g. 0.9")


def run_prediction(problem: SearchProblem, budget_s: float, confidence: float | None = None) -> tuple[Grid, Prediction]:
    """The grid and the prediction within ``budget_s``; a UserError says why when nothing answers."""
    from lattts.errors import UserError
    from lattts.units import format_duration

    check_confidence(confidence)
    grid = evaluate_grid(problem)
    if len(grid) == 0:
        raise UserError(f"the curve {problem.curve.name} has no accuracy at the requested lengths; "
                        f"its lengths are {problem.curve.lengths}")
    result = predict(problem, budget_s, grid, confidence)
    if not grid.fits.any():
        raise UserError(f"no configuration fits in memory ({result.excluded_memory} evaluated) on "
                        f"{problem.deployment.devices}x {problem.deployment.profile.name}; "
                        f"try --devices, --dtype or a smaller model")
    if result.best is None:
        if confidence is not None:
            fits = np.flatnonzero(grid.fits)
            p = grid.p_within(budget_s)[fits]
            i = int(fits[np.lexsort((grid.latency_s[fits], -p))[0]])  # the likeliest; of equals, the fastest
            chance = f"{p.max():.1%}" if p.max() >= 1e-3 else "less than 0.1%"
            raise UserError(f"no configuration finishes within {format_duration(budget_s)} with probability "
                            f"{100 * confidence:g}%: the likeliest that fits memory ({grid.point(i).config.label()}) does "
                            f"with {chance}; raise --budget or lower --confidence")
        fastest = min((grid.point(i) for i in range(len(grid)) if grid.fits[i]), key=lambda p: p.latency_s)
        raise UserError(f"no configuration meets {format_duration(budget_s)}: the fastest that fits memory takes "
                        f"{format_duration(fastest.latency_s)} (B={fastest.branches}, γ={fastest.draft_len}, "
                        f"L={fastest.max_tokens}); raise --budget")
    return grid, result
