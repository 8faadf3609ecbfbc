"""The decision check: is the configuration ``predict`` chose really the best of its neighbours?

``predict`` picks the most accurate configuration that meets the budget: by its predicted mean
latency, or with a confidence by its probability of finishing within the budget. Its neighbours in
the grid (B/2, 2B, gamma-1, gamma+1, the next longer L) are run live next to it; the measured best
is the most accurate one whose measured latency meets the budget (the faster of equals). Accuracy
comes from the curve (it does not depend on timing); latency is measured, beside the device's drift
while each candidate ran (the anchor passes timed around it), so a miss can be told from a slow machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lattts.simulator.deployment import Deployment, DeviceSpeed
from lattts.simulator.generation import Workload, generation_latency
from lattts.simulator.search import Config, Point, SearchProblem, chosen_by, run_prediction

NEAR_BEST = 0.05  # a choice within 5% of the measured best's accuracy (and within the budget) is near best


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


@dataclass(frozen=True)
class Candidate:
    """One configuration of the check: its accuracy and predicted latency (the grid's), its measured
    latency, and the device's speed while it ran relative to calibration as its passes weigh it (``drift``:
    its prediction at the anchors' speed over its prediction as calibrated; 1.0 = as calibrated)."""

    config: Config
    accuracy: float
    predicted_s: float
    measured_s: float
    predicted_p90_s: float | None = None
    drift: float = 1.0

    def to_json(self) -> dict:
        return {"branches": self.config.branches, "draft_len": self.config.draft_len,
                "max_tokens": self.config.max_tokens, "accuracy": self.accuracy,
                "predicted_s": self.predicted_s, "predicted_p90_s": self.predicted_p90_s,
                "measured_s": self.measured_s, "drift": self.drift,
                "predicted_at_drift_s": self.predicted_s * self.drift}


@dataclass(frozen=True)
class DecisionReport:
    budget_s: float
    chosen: Candidate
    candidates: list[Candidate]
    measured_best: Candidate | None
    confidence: float | None = None  # None: predict chose by mean latency

    @property
    def chosen_is_best(self) -> bool:
        return self.measured_best is not None and self.measured_best.config == self.chosen.config

    @property
    def chosen_near_best(self) -> bool:
        """The choice met the budget and its accuracy is within ``NEAR_BEST`` of the measured best's."""
        best = self.measured_best
        return (best is not None and self.chosen.measured_s <= self.budget_s
                and self.chosen.accuracy >= (1.0 - NEAR_BEST) * best.accuracy)

    def to_json(self) -> dict:
        best = self.measured_best
        return {"budget_s": self.budget_s, "chosen_by": chosen_by(self.confidence), "confidence": self.confidence,
                "chosen": self.chosen.to_json(),
                "chosen_meets_budget": self.chosen.measured_s <= self.budget_s,
                "chosen_is_best": self.chosen_is_best, "chosen_near_best": self.chosen_near_best,
                "measured_best": best.to_json() if best else None,
                "accuracy_gap": (best.accuracy - self.chosen.accuracy) if best else None,
                "latency_gap_s": (self.chosen.measured_s - best.measured_s) if best else None,
                "candidates": [c.to_json() for c in self.candidates]}


def drift_factor(work: Workload, deploy: Deployment, config: Config, speed: DeviceSpeed) -> float:
    """The predicted latency of ``config`` at ``speed`` over its latency as profiled."""
    at = [float(generation_latency(work, d, config.branches, config.draft_len, config.max_tokens).total_s[()])
          for d in (replace(deploy, speed=speed), deploy)]
    return at[0] / at[1]


def measured_best(candidates: list[Candidate], budget_s: float) -> Candidate | None:
    ok = [c for c in candidates if c.measured_s <= budget_s]
    if not ok:
        return None
    return max(ok, key=lambda c: (round(c.accuracy, 9), -c.measured_s))


def check(problem: SearchProblem, budget_s: float, measure: Callable[[list[Config]], list[tuple[float, DeviceSpeed]]],
          confidence: float | None = None) -> DecisionReport:
    """Run the chosen configuration and its neighbours with ``measure(configs) -> [(seconds, device speed)]``
    (in the order given); their predicted latency and accuracy are the grid's, the very numbers
    ``predict`` chose by (at ``confidence``, if given). A candidate's drift is what the device's speed
    while it ran makes of its predicted latency."""
    grid, pred = run_prediction(problem, budget_s, confidence)  # its UserErrors say why nothing answers
    best = pred.best
    points = {(p.branches, p.draft_len, p.max_tokens): p for p in map(grid.point, range(len(grid)))}
    branches, draft_lens, lengths = (tuple(sorted({key[i] for key in points})) for i in range(3))
    configs = [best.config] + neighbours(best, branches, draft_lens, list(lengths))
    candidates = []
    for config, (seconds, speed) in zip(configs, measure(configs), strict=True):
        point = points[(config.branches, config.draft_len, config.max_tokens)]
        drift = drift_factor(problem.workload, problem.deployment, config, speed)
        candidates.append(Candidate(config, point.accuracy, point.latency_s, seconds, point.latency_p90_s, drift))
    return DecisionReport(budget_s, candidates[0], candidates, measured_best(candidates, budget_s), confidence)
