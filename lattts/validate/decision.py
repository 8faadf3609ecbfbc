"""The decision check: is the configuration ``predict`` chose really the best of its neighbours?

``predict`` picks the most accurate configuration whose predicted latency meets the budget. Its
neighbours in the grid (B/2, 2B, gamma-1, gamma+1, the next longer L) are run live next to it;
the measured best is the most accurate one whose measured latency meets the budget (the faster
of equals). Accuracy comes from the curve (it does not depend on timing); latency is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from lattts.simulator.search import Config, Point, SearchProblem, evaluate_grid, predict


def neighbours(chosen: Point, branches: tuple[int, ...], draft_lens: tuple[int, ...], lengths: list[int]) -> list[Config]:
    out = []
    for b in (chosen.branches // 2, chosen.branches * 2):
        if b in branches:
            out.append(Config(b, chosen.draft_len, chosen.max_tokens))
    for g in (chosen.draft_len - 1, chosen.draft_len + 1):
        if g in draft_lens:
            out.append(Config(chosen.branches, g, chosen.max_tokens))
    longer = [L for L in lengths if L > chosen.max_tokens]
    if longer:
        out.append(Config(chosen.branches, chosen.draft_len, min(longer)))
    return out


@dataclass
class Candidate:
    config: Config
    accuracy: float
    predicted_s: float
    measured_s: float

    def to_json(self) -> dict:
        return {"branches": self.config.branches, "draft_len": self.config.draft_len,
                "max_tokens": self.config.max_tokens, "accuracy": self.accuracy,
                "predicted_s": self.predicted_s, "measured_s": self.measured_s}


@dataclass
class DecisionReport:
    budget_s: float
    chosen: Candidate
    candidates: list[Candidate]
    measured_best: Candidate | None

    @property
    def chosen_is_best(self) -> bool:
        return self.measured_best is not None and self.measured_best.config == self.chosen.config

    def to_json(self) -> dict:
        best = self.measured_best
        return {"budget_s": self.budget_s, "chosen": self.chosen.to_json(),
                "chosen_meets_budget": self.chosen.measured_s <= self.budget_s,
                "chosen_is_best": self.chosen_is_best,
                "measured_best": best.to_json() if best else None,
                "accuracy_gap": (best.accuracy - self.chosen.accuracy) if best else None,
                "latency_gap_s": (self.chosen.measured_s - best.measured_s) if best else None,
                "candidates": [c.to_json() for c in self.candidates]}


def measured_best(candidates: list[Candidate], budget_s: float) -> Candidate | None:
    ok = [c for c in candidates if c.measured_s <= budget_s]
    if not ok:
        return None
    return max(ok, key=lambda c: (round(c.accuracy, 9), -c.measured_s))


def check(problem: SearchProblem, budget_s: float, measure) -> DecisionReport:
    """Run the chosen configuration and its neighbours with ``measure(config) -> seconds``; their
    predicted latency and accuracy are the grid's, the very numbers ``predict`` chose by."""
    from lattts.errors import UserError
    from lattts.units import format_duration

    grid = evaluate_grid(problem)
    pred = predict(problem, budget_s, grid)
    best = pred.best
    if best is None:
        raise UserError(f"no configuration meets {format_duration(budget_s)} on this device: the fastest takes "
                        f"{format_duration(pred.fastest_s)}; raise --budget")
    points = {(p.branches, p.draft_len, p.max_tokens): p for p in map(grid.point, range(len(grid)))}
    branches, draft_lens, lengths = (tuple(sorted({key[i] for key in points})) for i in range(3))
    candidates = []
    for config in [best.config] + neighbours(best, branches, draft_lens, list(lengths)):
        point = points[(config.branches, config.draft_len, config.max_tokens)]
        candidates.append(Candidate(config, point.accuracy, point.latency_s, measure(config)))
    return DecisionReport(budget_s, candidates[0], candidates, measured_best(candidates, budget_s))
