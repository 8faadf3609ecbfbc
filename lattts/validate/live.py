"""One live run of a configuration and what the simulator says it should have cost.

A run is the engine's ``generate`` with budget forcing (every branch exactly L tokens), so its
length is known; it records every forward pass. ``compare`` predicts the run three ways: with
the a-priori acceptance (the end-to-end claim), with the acceptance measured in the run
(isolates the latency model), and pass by pass on the run's actual shapes (isolates the cost of
a forward pass from the count of passes). Every prediction is made at the device's speed while the
run ran (``DeviceSpeed``, from the profile's anchor passes timed around it): each pass at the factor
of its kind, one token row or more. ``drift_factor`` is what that speed makes of the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lattts.backend import GenerationResult
from lattts.simulator.deployment import AS_PROFILED, Deployment, DeviceSpeed
from lattts.simulator.distribution import LatencySpread, latency_nodes, latency_quantile
from lattts.simulator.generation import Workload, generation_latency, prefill_time, sampling_time
from lattts.simulator.roofline import pass_time
from lattts.simulator.search import Config


@dataclass
class Comparison:
    """Predicted against measured for one run (seconds; errors are predicted/measured - 1)."""

    config: Config
    measured_s: float
    predicted_s: float  # a-priori acceptance, drift-corrected
    predicted_measured_acceptance_s: float  # acceptance of this run, drift-corrected
    predicted_raw_s: float  # a-priori acceptance, no drift correction
    drift_factor: float  # predicted_s / predicted_raw_s: the device's speed, as this run's passes weigh it
    acceptance_rate: float | None
    rounds: int
    predicted_rounds: float
    terms: dict = field(default_factory=dict)  # term -> {measured_s, predicted_s}
    culprit: str | None = None
    predicted_p90_s: float = float("inf")  # 90th percentile of the predicted latency distribution, drift-corrected
    speed: DeviceSpeed = AS_PROFILED  # the anchors' factors while it ran

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0

    @property
    def error_measured_acceptance(self) -> float:
        return self.predicted_measured_acceptance_s / self.measured_s - 1.0

    def to_json(self) -> dict:
        return {
            "branches": self.config.branches, "draft_len": self.config.draft_len, "max_tokens": self.config.max_tokens,
            "predicted_s": self.predicted_s, "measured_s": self.measured_s, "error": self.error,
            "predicted_with_measured_acceptance_s": self.predicted_measured_acceptance_s,
            "error_with_measured_acceptance": self.error_measured_acceptance,
            "predicted_without_drift_correction_s": self.predicted_raw_s, "drift_factor": self.drift_factor,
            "speed": {"one_row": self.speed.one_row, "rows": self.speed.rows},
            "acceptance_rate": self.acceptance_rate, "rounds": self.rounds, "predicted_rounds": self.predicted_rounds,
            "terms": self.terms, "culprit": self.culprit, "predicted_p90_s": self.predicted_p90_s,
            "within_predicted_p90": self.measured_s <= self.predicted_p90_s,
        }


def _pass_prediction(result: GenerationResult, work: Workload, deploy: Deployment) -> dict[str, float]:
    """Predicted time of every pass the run actually made, on its actual shape, summed per phase."""
    sums: dict[str, float] = {}
    for p in result.passes:
        spec = work.draft if p.model == "draft" else work.target
        logits = p.query if p.phase == "verify" else 1
        sums[p.phase] = sums.get(p.phase, 0.0) + float(pass_time(spec, deploy, p.batch, p.query, p.context_mean, logits))
    return sums


def _server_terms(result: GenerationResult, predicted) -> dict:
    """A server reports no passes: its time to the first token (prefill) and its decode span (the
    decode steps, or the speculative rounds) against the same parts predicted."""
    timings = result.server.get("timings") or []
    span = max((float(t.get("predicted_ms", 0.0)) for t in timings), default=0.0) / 1e3
    steps = "rounds (draft and verify)" if result.draft_len else "decode"
    return {"prefill": {"measured_s": result.latency_s - span, "predicted_s": float(predicted.prefill_s[()])},
            steps: {"measured_s": span, "predicted_s": float(predicted.target_s[()] + predicted.draft_s[()]
                                                              + predicted.sampling_s[()])}}


def _measured_terms(result: GenerationResult) -> dict[str, float]:
    sums: dict[str, float] = {}
    for p in result.passes:
        sums[p.phase] = sums.get(p.phase, 0.0) + p.time_s
    sums["prefill"] = sums.get("prefill", 0.0) + result.fork_s
    sums["other"] = result.outside_passes_s
    return sums


def _kv_growth(result: GenerationResult, work: Workload, deploy: Deployment) -> dict | None:
    """Does cost rise with context as predicted? Late against early decode/verify passes."""
    steps = [p for p in result.passes if p.phase in ("decode", "verify")]
    if len(steps) < 8:
        return None
    predicted = [float(pass_time(work.target, deploy, p.batch, p.query, p.context_mean,
                                 p.query if p.phase == "verify" else 1)) for p in steps]
    k = len(steps) // 4
    late_over_early = [np.mean(x[-k:]) / np.mean(x[:k]) for x in ([p.time_s for p in steps], predicted)]
    return {"measured_late_over_early": late_over_early[0], "predicted_late_over_early": late_over_early[1]}


TERM_NAMES = {
    "prefill": "prefill (prompt pass and KV copy)", "decode": "per-step cost (decode passes)",
    "verify": "verify cost (target passes of gamma+1 tokens)", "draft": "draft cost (draft passes)",
    "other": "per-step overhead outside forward passes (sampling, acceptance, Python)",
    "rounds": "number of rounds (acceptance)", "kv_growth": "KV growth (cost rising with context)",
}


def compare(config: Config, result: GenerationResult, work: Workload, deploy: Deployment,
            speed: DeviceSpeed = AS_PROFILED, spread: LatencySpread | None = None) -> Comparison:
    """Predictions for one live run (``work`` carries the a-priori acceptance) on ``deploy`` at ``speed``,
    and which term explains most of the gap; with ``spread``, the 90th percentile of the predicted
    latency distribution too."""
    B, G, L = config.branches, config.draft_len, config.max_tokens
    work = replace(work, prompt_tokens=result.prompt_tokens, natural_lengths=None)  # runs are budget-forced
    measured_acc = result.acceptance_model() if G else None
    now = replace(deploy, speed=speed)  # the device as fast as its anchors were around the run

    def total(acceptance, at: Deployment = now):
        return generation_latency(replace(work, acceptance=acceptance), at, B, G, L)

    prior_lat = total(work.acceptance)
    predicted, predicted_rounds = float(prior_lat.total_s[()]), float(prior_lat.rounds[()])
    raw = float(total(work.acceptance, deploy).total_s[()])
    with_measured = float(total(measured_acc).total_s[()]) if G and measured_acc else predicted
    if result.server:  # a server reports no passes: its own two parts
        terms = _server_terms(result, prior_lat)
    else:
        terms = _engine_terms(result, work, now, config)
    terms["rounds"] = {"measured": result.rounds, "predicted": predicted_rounds}
    p90 = float("inf")
    if spread is not None:
        p90 = float(latency_quantile(latency_nodes(work, now, B, G, L), spread)[0])
    return Comparison(config=config, measured_s=result.latency_s, predicted_s=predicted, predicted_p90_s=p90,
                      predicted_measured_acceptance_s=with_measured, predicted_raw_s=raw,
                      drift_factor=predicted / raw, acceptance_rate=result.acceptance_rate, rounds=result.rounds,
                      predicted_rounds=predicted_rounds, terms=terms, culprit=culprit(terms, result.latency_s),
                      speed=speed)


def _engine_terms(result: GenerationResult, work: Workload, deploy: Deployment, config: Config) -> dict:
    """Measured time of each phase of the engine's run against the same phase predicted on its own passes
    (on ``deploy``, at its speed)."""
    measured = _measured_terms(result)
    per_pass = _pass_prediction(result, work, deploy)
    P = result.prompt_tokens
    fork = float(prefill_time(work.target, deploy, config.branches, P)) - float(pass_time(work.target, deploy, 1, P, 0, 1))
    per_pass["prefill"] = per_pass.get("prefill", 0.0) + fork
    per_pass["other"] = float(sampling_time(deploy, work.target.vocab_size, config.branches, config.draft_len,
                                            result.rounds))
    terms = {k: {"measured_s": measured.get(k, 0.0), "predicted_s": per_pass.get(k, 0.0)}
             for k in sorted(set(measured) | set(per_pass))}
    growth = _kv_growth(result, work, deploy)
    if growth:
        terms["kv_growth"] = growth
    return terms


def culprit(terms: dict, measured_s: float, threshold: float = 0.05) -> str | None:
    """The term whose misprediction moves the total most, if any moves it more than ``threshold``."""
    gaps = {k: abs(v["predicted_s"] - v["measured_s"]) / measured_s for k, v in terms.items() if "measured_s" in v}
    r = terms.get("rounds")
    if r and r["measured"]:
        # a wrong round count shifts every round's cost: its share is the relative miss in rounds
        gaps["rounds"] = abs(r["predicted"] / r["measured"] - 1.0) * (
            (terms.get("verify", {}).get("measured_s", 0.0) + terms.get("draft", {}).get("measured_s", 0.0)) / measured_s)
    kv = terms.get("kv_growth")
    if kv:
        steps = sum(terms.get(k, {}).get("measured_s", 0.0) for k in ("decode", "verify"))
        gaps["kv_growth"] = abs(kv["measured_late_over_early"] - kv["predicted_late_over_early"]) / 2 * steps / measured_s
    if not gaps:
        return None
    worst = max(gaps, key=gaps.get)
    return TERM_NAMES.get(worst, worst) if gaps[worst] > threshold else None
