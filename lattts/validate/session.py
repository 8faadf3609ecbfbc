"""A validation session: run a grid of configurations live, interleaved with anchor passes that
track the device's speed, predict each run, and summarise the errors.

Order matters on a machine whose speed drifts: configurations run in a shuffled order (so drift
does not line up with configuration size), and the profile's anchor pass is re-timed before,
after and during each run (every few steps, paused out of the run's time: on this kind of VM the
speed switches by up to ~1.5x within seconds). The mean of those factors scales that run's
prediction to the device's speed while it ran. The drift of the whole session is reported
beside the errors, with and without this correction.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lattts.engine.generate import Draft, generate
from lattts.errors import UserError
from lattts.models.spec import ModelSpec
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.speculative import AcceptanceModel
from lattts.validate.live import Comparison, Config, compare

PROBE_EVERY = 4  # steps (or speculative rounds) between anchor re-timings inside a run
# speculative runs are shorter: a 24-of-30-layer self-draft accepted ~30% of the time makes them the slow ones
QUICK_GRID = [Config(b, 0, 64) for b in (1, 4, 16)] + [Config(b, g, 48) for b in (1, 4) for g in (2, 4)] + [
    Config(1, 0, 128), Config(8, 0, 128), Config(8, 3, 48), Config(1, 3, 64), Config(2, 2, 64)]
FULL_GRID = [Config(b, g, L) for b in (1, 2, 4, 8, 16) for g in (0, 2, 4) for L in (32, 128, 512)]


class Anchor:
    """Re-times the profile's anchor pass (the shape and point its calibration timed throughout)."""

    def __init__(self, profile: DeviceProfile, device: str):
        info = (profile.provenance or {}).get("anchor")
        self.reference_s = info["reference_s"] if info else None
        self.runner = None
        if info:
            from lattts.calibrate.grid import Point

            spec = ModelSpec.from_hf_config(info["config"], info["shape"])
            self.point = Point(*info["point"])
            if profile.provenance.get("engine") == "transformers":
                from lattts.calibrate.transformers_runner import TransformersRunner as Runner
            else:
                from lattts.calibrate.sweep import TorchRunner as Runner
            self.runner = Runner(spec, device, profile.dtype)
            self.runner.time_pass(self.point, 0, 2)

    def factor(self, repeats: int = 5) -> float:
        """Current anchor time over its calibration reference (1.0 when the profile has no anchor)."""
        if self.runner is None:
            return 1.0
        return statistics.median(self.runner.time_pass(self.point, repeats, 0)) / self.reference_s

    def probe(self, samples: list[float]):
        """A callable for ``generate(probe=...)`` that appends one anchor factor per call to ``samples``."""
        return None if self.runner is None else (lambda: samples.append(self.factor(repeats=1)))


@dataclass
class Session:
    comparisons: list[Comparison] = field(default_factory=list)
    anchors: list[float] = field(default_factory=list)  # drift factors in time order

    def summary(self) -> dict:
        return summarise(self.comparisons, self.anchors)


def error_stats(errors: list[float]) -> dict:
    """Median and p90 of |predicted/measured - 1|, and the bias (median signed error)."""
    e = np.asarray(errors)
    if len(e) == 0:
        return {"median_abs_error": None, "p90_abs_error": None, "bias": None, "runs": 0}
    return {"median_abs_error": float(np.median(np.abs(e))), "p90_abs_error": float(np.quantile(np.abs(e), 0.9)),
            "bias": float(np.median(e)), "runs": int(len(e))}


def summarise(comparisons: list[Comparison], anchors: list[float]) -> dict:
    out = error_stats([c.error for c in comparisons])
    out["with_measured_acceptance"] = error_stats([c.error_measured_acceptance for c in comparisons])
    out["without_drift_correction"] = error_stats([c.predicted_raw_s / c.measured_s - 1 for c in comparisons])
    if anchors:
        out["drift"] = {"start": anchors[0], "end": anchors[-1], "min": min(anchors), "max": max(anchors),
                        "spread": max(anchors) / min(anchors) - 1.0}
        out["drift_exceeds_error"] = bool(out["drift"]["spread"] > (out["median_abs_error"] or 0.0))
    return out


def pilot_acceptance(model, prompt: list[int], draft: Draft, stop_ids, gamma: int = 4, seed: int = 12345) -> AcceptanceModel:
    """A-priori acceptance for a pair nobody published: one short speculative run on its own seed,
    before (and apart from) the runs it will predict."""
    res = generate(model, prompt, branches=4, max_tokens=48, min_tokens=48, temperature=1.0, seed=seed,
                   draft=draft, draft_len=gamma, stop_ids=stop_ids)
    return AcceptanceModel.from_histogram(res.accepted_histogram, f"pilot run (4 branches x 48 tokens, gamma {gamma}, "
                                                                  f"seed {seed}): alpha {res.acceptance_rate:.3f}")


def run_grid(grid: list[Config], model, prompt: list[int], draft: Draft | None, target: ModelSpec,
             draft_spec: ModelSpec | None, profile: DeviceProfile, prior: AcceptanceModel | None, anchor: Anchor,
             stop_ids, seed: int = 0, on_run: Callable[[Comparison], None] | None = None) -> Session:
    """Run every configuration (shuffled, bracketed by anchor timings) and compare each with its prediction."""
    if any(c.draft_len for c in grid) and draft is None:
        raise UserError("the grid has draft lengths above 0 but no draft: pass --draft (e.g. self:N)")
    session = Session()
    order = list(grid)
    random.Random(seed).shuffle(order)
    before = anchor.factor()
    session.anchors.append(before)
    for config in order:
        during: list[float] = []
        result = generate(model, prompt, config.branches, config.max_tokens, config.max_tokens, 1.0, 1.0, seed,
                          draft if config.draft_len else None, config.draft_len, stop_ids,
                          probe=anchor.probe(during), probe_every=PROBE_EVERY)
        after = anchor.factor()
        session.anchors.extend(during + [after])
        factor = float(np.mean([before, after] + during))
        comparison = compare(config, result, target, draft_spec, profile, prior, factor)
        session.comparisons.append(comparison)
        before = after
        if on_run:
            on_run(comparison)
    return session
