"""A validation session: run a grid of configurations live, interleaved with anchor passes that
track the device's speed, predict each run, and summarise the errors.

Order matters on a machine whose speed drifts: configurations run in a shuffled order (so drift
does not line up with configuration size), and the profile's anchor passes (one of one token row,
one of several) are re-timed before, after and during each run (every few steps, paused out of the
run's time: on this kind of VM the speed switches by up to ~1.5x within seconds). The mean of those
factors is the device's speed while it ran (``DeviceSpeed``), at which that run is predicted: each
pass at the factor of its own kind. The drift of the whole session is reported beside the errors,
with and without this correction.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np

from lattts.backend import GenerationRequest, GenerationResult, Generator
from lattts.errors import UserError
from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import AS_PROFILED, Deployment, DeviceSpeed
from lattts.simulator.generation import Workload
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.search import Config
from lattts.simulator.speculative import AcceptanceModel
from lattts.validate.live import Comparison, compare

PROBE_EVERY = 4  # steps (or speculative rounds) between anchor re-timings inside a run
PILOT_BRANCHES = 4
T = TypeVar("T")


@dataclass
class Anchor:
    """Re-times the profile's anchor passes (the shape and points its calibration timed throughout): the
    one-row anchor and the many-row one, each against its calibration reference, as a ``DeviceSpeed``.

    ``start`` builds it (and warms its runner up); a profile without an anchor gives the speed as
    profiled, one with only the one-row anchor (calibrated before there were two) that anchor's factor
    for both kinds."""

    runner: Any = None
    one_row: tuple | None = None  # (PassShape, reference seconds)
    rows: tuple | None = None

    @classmethod
    def start(cls, profile: DeviceProfile, make_runner: Callable[[ModelSpec], Any]) -> "Anchor":
        """The anchors of ``profile``, timed with ``make_runner(shape)`` (the engine its calibration timed)."""
        info = (profile.provenance or {}).get("anchor")
        if not info:
            return cls()
        from lattts.calibrate.grid import PassShape

        runner = make_runner(ModelSpec.from_hf_config(info["config"], info["shape"]))
        one, rows = ((PassShape(*info[f"{k}point"]), info[f"{k}reference_s"]) if f"{k}point" in info else None
                     for k in ("", "rows_"))
        for point, _ in filter(None, (one, rows)):
            runner.time_pass(point, 0, 2)
        return cls(runner, one, rows)

    def speed(self, repeats: int = 5) -> DeviceSpeed:
        """Each anchor's time now (median of ``repeats``) over its calibration reference (as profiled
        without an anchor; a kind without its own anchor takes the other's)."""
        if self.runner is None:
            return AS_PROFILED
        one, rows = (self._factor(anchor, repeats) if anchor else None for anchor in (self.one_row, self.rows))
        return DeviceSpeed(one or rows, rows or one)

    def _factor(self, anchor: tuple, repeats: int) -> float:
        point, reference_s = anchor
        return statistics.median(self.runner.time_pass(point, repeats, 0)) / reference_s

    def probe(self, samples: list[DeviceSpeed]):
        """A ``Probe`` for the engine that appends one ``speed`` per call to ``samples`` (None without an anchor)."""
        if self.runner is None:
            return None
        from lattts.engine.generate import Probe

        return Probe(lambda: samples.append(self.speed(repeats=1)), PROBE_EVERY)


def mean_speed(speeds: list[DeviceSpeed]) -> DeviceSpeed:
    return DeviceSpeed(float(np.mean([s.one_row for s in speeds])), float(np.mean([s.rows for s in speeds])))


def speed_factors(speeds: list[DeviceSpeed]) -> list[float]:
    """Every anchor factor of ``speeds``, e.g. for the spread of the device's speed: both kinds, or one
    where the profile has only the one-row anchor (its speeds carry that factor for both)."""
    return [f for s in speeds for f in ((s.one_row,) if s.rows == s.one_row else (s.one_row, s.rows))]


def drift_corrected_runs(items: Iterable[T], anchor: Anchor, run: Callable[[T, Any], Any], seed: int,
                         anchors: list[DeviceSpeed]) -> Iterator[tuple[T, Any, DeviceSpeed]]:
    """Run every item in a shuffled order, re-timing the anchors before, during and after each; yields
    (item, what ``run(item, probe)`` returned, the mean speed while it ran) as each finishes.
    Every speed is appended to ``anchors`` in time order."""
    order = list(items)
    random.Random(seed).shuffle(order)
    before = anchor.speed()
    anchors.append(before)
    for item in order:
        during: list[DeviceSpeed] = []
        result = run(item, anchor.probe(during))
        after = anchor.speed()
        anchors.extend(during + [after])
        yield item, result, mean_speed([before, after] + during)
        before = after


def error_stats(errors: list[float]) -> dict:
    """Median and p90 of |predicted/measured - 1|, and the bias (median signed error)."""
    e = np.asarray(errors)
    if len(e) == 0:
        return {"median_abs_error": None, "p90_abs_error": None, "bias": None, "runs": 0}
    return {"median_abs_error": float(np.median(np.abs(e))), "p90_abs_error": float(np.quantile(np.abs(e), 0.9)),
            "bias": float(np.median(e)), "runs": int(len(e))}


@dataclass
class Session:
    comparisons: list[Comparison] = field(default_factory=list)
    anchors: list[DeviceSpeed] = field(default_factory=list)  # the device's speed in time order

    def summary(self) -> dict:
        """Errors with the a-priori and the measured acceptance, without drift correction, and the drift."""
        out = error_stats([c.error for c in self.comparisons])
        out["with_measured_acceptance"] = error_stats([c.error_measured_acceptance for c in self.comparisons])
        out["without_drift_correction"] = error_stats([c.predicted_raw_s / c.measured_s - 1 for c in self.comparisons])
        within = [c.measured_s <= c.predicted_p90_s for c in self.comparisons]
        out["coverage_p90"] = {"within": int(sum(within)), "runs": len(within),
                               "fraction": float(np.mean(within)) if within else None}
        if self.anchors:  # the one-row anchor's factors as "drift", the many-row anchor's (where timed) as "drift_rows"
            kinds = {"drift": [s.one_row for s in self.anchors]}
            if any(s.rows != s.one_row for s in self.anchors):
                kinds["drift_rows"] = [s.rows for s in self.anchors]
            for key, a in kinds.items():
                out[key] = {"start": a[0], "end": a[-1], "min": min(a), "max": max(a), "spread": max(a) / min(a) - 1.0}
            spread = max(out[key]["spread"] for key in kinds)
            out["drift_exceeds_error"] = bool(spread > (out["median_abs_error"] or 0.0))
        return out


def pilot_acceptance(engine: Generator, prompts: list[list[int]], max_tokens: int, gammas: Iterable[int] = (4,),
                     seed: int = 12345) -> AcceptanceModel:
    """A-priori acceptance for a pair nobody published: short speculative runs of 4 branches on each of
    ``prompts`` (not the prompt validated) at the longest length validated and at each of ``gammas``,
    on their own seed, before (and apart from) the runs they will predict. Each draft length is then
    predicted from its own rounds, not derived from another's (derived gamma = 2 rates missed its
    slowest-of-B rounds by 15-20% on the CPU grid). Their rounds in order give the model's
    variation: between prompts, between branches, along the generation."""
    from lattts.traces.acceptance import from_branches
    from lattts.traces.acceptance_fit import Branch

    gammas = sorted(set(gammas))
    branches, results = [], {}
    for gamma in gammas:
        for p, prompt in enumerate(prompts):
            request = GenerationRequest.forced(prompt, PILOT_BRANCHES, max_tokens, seed=seed + p, draft_len=gamma,
                                               stop_ids=engine.stop_ids)
            res = engine.generate(request)
            results.setdefault(gamma, []).append(res)
            branches += [Branch(f"pilot-{p}", gamma, tuple(a + 1 for a in acc)) for acc in res.accepted_per_branch]
    what = (f"pilot runs ({len(prompts)} prompts x {PILOT_BRANCHES} branches x {max_tokens} tokens, "
            f"gamma {', '.join(map(str, gammas))}, seed {seed}")
    if not any(b.taus for b in branches):  # a server counts only totals: no order, no variation
        return _pooled_pilot(results, what + "; totals only)")
    m = from_branches(branches, what + ")")
    model = m.model()
    return replace(model, source=f"{m.source}: alpha {model.alpha:.3f}")


def _pooled_pilot(results: dict[int, list[GenerationResult]], source: str) -> AcceptanceModel:
    """I.i.d. acceptance per draft length of pilot runs whose server reports totals (accepted tokens
    over rounds at that length), each draft length measured at its own."""
    alphas = {}
    for gamma, runs in results.items():
        rounds = sum(r.counts.rounds for r in runs if r.counts)
        if not rounds:
            raise UserError(f"the pilot runs at gamma {gamma} drafted nothing, so no acceptance rate could be "
                            f"measured; pass --acceptance ALPHA")
        mean = sum(r.counts.accepted for r in runs if r.counts) / rounds
        alphas[gamma] = AcceptanceModel.from_mean_accepted(min(mean, gamma), gamma, source).alpha
    return _iid_by_draft_len(alphas, source)


def _iid_by_draft_len(alphas: dict[int, float], source: str) -> AcceptanceModel:
    """I.i.d. acceptance ``alphas[gamma]`` measured at each draft length; its source is ``source``
    followed by those rates."""
    top = max(alphas)
    label = ", ".join(f"{alphas[g]:.3f} at gamma {g}" for g in sorted(alphas))
    return AcceptanceModel(conditional=(alphas[top],) * top, source=f"{source}: alpha {label}", draft_len=top,
                           by_draft_len=tuple((g, (alphas[g],) * g, "measured") for g in sorted(alphas) if g != top))


@dataclass(frozen=True)
class AcceptanceAlongLength:
    """Pilot acceptance over the first ``short_tokens`` and over ``long_tokens`` tokens, for a pilot whose
    rounds come without their order (a server's totals). A run of L tokens is predicted with each draft
    length's alpha interpolated in log L between the two (held at the nearer one outside them): the
    first tokens of an answer are accepted more often than the whole (on llama.cpp with a self:24 draft
    of SmolLM2 at gamma 2, the pilot prompts gave 0.347 over 32 tokens, 0.314 over 64, 0.301 over
    128 and 0.254 over 256)."""

    short_tokens: int
    short: AcceptanceModel
    long_tokens: int
    long: AcceptanceModel

    @staticmethod
    def _alphas(model: AcceptanceModel) -> dict[int, float]:
        return {g: model.rates_at(g)[0] for g in [model.draft_len, *(g for g, _, _ in model.by_draft_len)]}

    def at(self, tokens: int) -> AcceptanceModel:
        w = float(np.clip(np.log(tokens / self.short_tokens) / np.log(self.long_tokens / self.short_tokens), 0.0, 1.0))
        short, long = self._alphas(self.short), self._alphas(self.long)
        alphas = {g: (1 - w) * short[g] + w * long[g] for g in long}
        return _iid_by_draft_len(alphas, f"{self.source}; at L={tokens}")

    def pricing(self, work: Workload) -> Callable[[Config], Workload]:
        """``work`` with the acceptance at each speculative configuration's length."""
        return lambda c: replace(work, acceptance=self.at(c.max_tokens)) if c.draft_len else work

    @property
    def source(self) -> str:
        short, long = self._alphas(self.short), self._alphas(self.long)
        each = "; ".join(f"gamma {g}: {short[g]:.3f} over {self.short_tokens} tokens, {long[g]:.3f} over "
                         f"{self.long_tokens}" for g in sorted(long))
        return f"pilot acceptance along the generation ({each}), interpolated in log L"


def pilot_along_length(engine: Generator, prompts: list[list[int]], shortest: int, longest: int,
                       gammas: Iterable[int], seed: int = 12345) -> tuple[AcceptanceModel, AcceptanceAlongLength | None]:
    """The pilot at the longest length validated; where its rounds came without their order (no
    variation along the generation in its model) and the shortest length validated is at most half of
    it, a second pilot at the shortest, so each run is predicted at its own length."""
    model = pilot_acceptance(engine, prompts, longest, gammas, seed)
    if model.variation is not None or 2 * shortest > longest:
        return model, None
    return model, AcceptanceAlongLength(shortest, pilot_acceptance(engine, prompts, shortest, gammas, seed),
                                        longest, model)


def run_config(engine: Generator, prompt: list[int], config: Config, probe=None, seed: int = 0) -> GenerationResult:
    """One budget-forced live run of ``config`` (every branch runs exactly L tokens) on ``engine``."""
    request = GenerationRequest.forced(prompt, config.branches, config.max_tokens, seed=seed,
                                       draft_len=config.draft_len, stop_ids=engine.stop_ids)
    return engine.generate(request, probe=probe)


def run_grid(grid: list[Config], engine: Generator, prompt: list[int], work: Workload | Callable[[Config], Workload],
             deploy: Deployment, anchor: Anchor, seed: int = 0,
             on_run: Callable[[Comparison], None] | None = None) -> Session:
    """Run every configuration (shuffled, bracketed by anchor timings) on ``engine`` and compare each
    with its prediction from ``work`` (models and a-priori acceptance; or ``work(config)``, the workload
    each configuration is priced with: ``AcceptanceAlongLength.pricing``) on ``deploy``."""
    work_of = work if callable(work) else (lambda _: work)
    if any(c.draft_len and work_of(c).draft is None for c in grid):
        raise UserError("the grid has draft lengths above 0 but no draft: pass --draft (e.g. self:N)")
    from lattts.plan import latency_spread

    session, spread = Session(), latency_spread(deploy.profile, device_drift=False)  # runs are drift-corrected
    run = partial(run_config, engine, prompt, seed=seed)
    for config, result, speed in drift_corrected_runs(grid, anchor, run, seed, session.anchors):
        comparison = compare(config, result, work_of(config), deploy, speed, spread)
        session.comparisons.append(comparison)
        if on_run:
            on_run(comparison)
    return session
