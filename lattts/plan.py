"""From what a user asks (names, flags) to a simulator ``SearchProblem`` with the provenance of every input.

``PlanRequest`` holds every input of ``lattts predict`` with its default, once: the CLI's options
read their defaults from it, and notebooks, tests, benchmarks and validate's decision check build
it by keyword. ``build_plan`` is the one path from a request to a problem, so each of them resolves
models, drafts, acceptance, curves and devices the same way and reports the same sources.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lattts import limits
from lattts.errors import UserError
from lattts.hardware.choose import DeviceChoice, Detection, choose_profile
from lattts.models.registry import published_acceptance, resolve_draft, resolve_model
from lattts.models.spec import ModelSpec
from lattts.dtypes import canonical_dtype
from lattts.simulator.accuracy import (PAPER_CURVE_NAME, PAPER_MODEL, AccuracyCurve, ScaledCurve, accuracy_basis,
                                       paper_table1, resolve_curve)
from lattts.simulator.deployment import Deployment
from lattts.simulator.distribution import LatencySpread
from lattts.simulator.generation import Workload, generation_latency, memory_required_bytes
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.search import Point, Prediction, SearchProblem, branch_grid, chosen_by
from lattts.simulator.speculative import AcceptanceModel
from lattts.units import format_bytes

PROMPT_TOKENS_ASSUMED = 128
PROMPT_TOKENS_ASSUMPTION = ("assumption: MATH-500 problems average 196 characters (about 55 tokens) plus chat "
                            f"template and system prompt, rounded up to {PROMPT_TOKENS_ASSUMED} tokens")
TP_CHOICES = limits.TP_CHOICES
# assumption: a datasheet profile is fitted to nothing on this device, so its run-to-run spread is taken
# wider than a calibration's (held-out per-pass error 4-11% median on the development CPU, NOTES §10)
DATASHEET_SPREAD_SD = 0.15
MEDIAN_ABS_TO_SD = 0.6745  # median |e| of a normal e is 0.6745 sd
P90_ABS_TO_SD = 1.6449  # the 90th percentile of |e| is 1.6449 sd
DEFAULT_CURVE = PAPER_CURVE_NAME  # the accuracy curve when none is given: evidence about s1.1-32B only
PAPER_CHECK_TOKENS = 4096  # the paper's Table 1 baseline at this L is set beside lattts' prediction of it


@dataclass(frozen=True)
class PlanRequest:
    """Every input of a prediction, as names and numbers a user types; defaults live here only.

    ``draft`` None (or 'none') means no speculation; ``acceptance`` is an alpha in [0, 1), a
    measured acceptance file, or an AcceptanceModel already measured (validate's pilot run);
    default: the paper's rate for the pair; ``curve`` None means ``DEFAULT_CURVE``, which for any
    other model than its own stands in, marked as such; ``prompt_tokens`` None means
    the assumed MATH-500 prompt (``PROMPT_TOKENS_ASSUMED``); ``lengths`` empty means the curve's own
    search grid; ``length_scale`` > 1 reads the curve at L * scale (validate's short live runs).
    """

    model: str = "s1.1-32B"
    draft: str | None = "s1.1-7B"
    acceptance: str | AcceptanceModel | None = None
    curve: str | None = None
    device: str | None = None
    profile_file: str | None = None
    devices: str = "auto"
    prompt_tokens: int | None = None
    dtype: str | None = None
    max_branches: int = 128
    max_draft_len: int = 8
    lengths: tuple[int, ...] = ()
    natural_lengths: str | None = None
    length_scale: float = 1.0


@dataclass(frozen=True)
class CurveUse:
    """Whose evidence the accuracy curve is: the target's own, another model's standing in for it, or
    not recorded (``stand_in`` None); ``chosen`` says whether the user named the curve."""

    model: str | None
    stand_in: bool | None
    chosen: bool
    note: str

    def to_json(self) -> dict:
        return {"model": self.model, "stand_in": self.stand_in, "chosen": self.chosen, "note": self.note}


@dataclass(frozen=True)
class LatencyBasis:
    """What the absolute latencies rest on: a calibration of this device, or (``assumes``) a profile's
    stated rates; ``paper_check`` sets the paper's measured baseline beside lattts' prediction of it."""

    calibrated: bool
    assumes: str | None
    paper_check: dict | None

    def to_json(self) -> dict:
        return {"calibrated": self.calibrated, "assumes": self.assumes, "paper_check": self.paper_check}


@dataclass(frozen=True)
class Plan:
    """A SearchProblem plus where each of its inputs comes from."""

    problem: SearchProblem
    device_reason: str
    devices_reason: str
    prompt_tokens_source: str
    curve_use: CurveUse | None = None
    latency_basis: LatencyBasis | None = None


def resolve_acceptance(target: ModelSpec, draft: ModelSpec | None,
                       acceptance: str | float | AcceptanceModel | None) -> AcceptanceModel | None:
    """The acceptance model: an explicit alpha, a measured acceptance file (or model), or the paper's rate."""
    if draft is None:
        return None
    if isinstance(acceptance, AcceptanceModel):
        return acceptance
    if acceptance is None:
        pair = published_acceptance(target, draft)
        if pair is None:
            raise UserError(f"no published acceptance rate for target {target.name} with draft {draft.name}; "
                            f"pass --acceptance ALPHA (0..1) or a measured file")
        return AcceptanceModel.iid(pair.acceptance_rate, f"{pair.source} ({pair.target} / {pair.draft})")
    if not (isinstance(acceptance, (int, float)) or _is_number(acceptance)):
        if Path(acceptance).is_file():
            from lattts.traces.acceptance import load_acceptance

            return load_acceptance(acceptance)
        raise UserError(f"--acceptance {acceptance!r}: give the acceptance rate alpha as a number in [0, 1), "
                        f"or an existing measured acceptance file (no such file)")
    alpha = float(acceptance)
    if not 0.0 <= alpha < 1.0:
        raise UserError(f"--acceptance {acceptance}: an acceptance rate must be in [0, 1)")
    return AcceptanceModel.iid(alpha, "--acceptance (given by the user)")


def latency_spread(profile: DeviceProfile, device_drift: bool = True,
                   speed_factors: list[float] | None = None) -> LatencySpread:
    """How far a run strays from the profile's prediction: a calibration's own held-out error (its
    median per-pass |error|, read as the sd of a normal log error), else a stated assumption.

    The held-out error is of drift-corrected points. With ``device_drift`` (a prediction for some later
    run, which nothing re-times), the device's own speed is added as an independent normal log term:
    from ``speed_factors`` where given (the anchors re-timed later against the calibration's references,
    as a validation session does, both kinds pooled: their root mean square log, which holds both the
    spread and any shift since calibration), else from the calibration's anchors (p90 |time / median - 1|
    / 1.645, pooled). A validation run predicted at the speed its anchors showed beside it leaves the
    speed out."""
    errors = (profile.provenance or {}).get("errors") or {}
    for key in ("heldout", "in_sample"):
        median = (errors.get(key) or {}).get("median")
        if isinstance(median, (int, float)) and median > 0:
            sd = float(median) / MEDIAN_ABS_TO_SD
            source = f"calibration's {key.replace('_', '-')} error: median |error| {median:.1%} per pass, lognormal sd {sd:.1%}"
            drift = (profile.provenance or {}).get("drift") or {}
            p90 = drift.get("drift_p90")
            if device_drift and speed_factors:
                speed_sd = math.sqrt(sum(math.log(f) ** 2 for f in speed_factors) / len(speed_factors))
                speed = f"the device's speed since calibration ({len(speed_factors)} anchor timings, rms log {speed_sd:.1%})"
            elif device_drift and drift.get("paired") and isinstance(p90, (int, float)) and p90 > 0:
                speed_sd = float(p90) / P90_ABS_TO_SD
                speed = f"the device's speed during calibration (anchor p90 |drift| {p90:.1%}, sd {speed_sd:.1%})"
            else:
                return LatencySpread(sd, source)
            sd = math.hypot(sd, speed_sd)
            return LatencySpread(sd, f"{source}; with {speed}: lognormal sd {sd:.1%}")
    return LatencySpread(DATASHEET_SPREAD_SD, f"assumption: lognormal sd {DATASHEET_SPREAD_SD:.0%} for a "
                                              f"{profile.kind} profile (not calibrated end to end on this device)")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def resolve_any_curve(curve: str) -> AccuracyCurve:
    """An accuracy curve: a built-in (paper-fitted) or embedded measured curve by name, or a trace file.

    A trace file's curve is measured from its samples (source: the file); see
    ``lattts.traces.curve.MeasuredCurve`` for how single-length files treat L.
    """
    from lattts.errors import suggest
    from lattts.simulator.accuracy import BUILTIN_CURVES

    key = curve.strip().lower()
    if key in BUILTIN_CURVES:
        return resolve_curve(key)
    from lattts.traces.curve import EMBEDDED, embedded_curve, load_curve  # only now: keeps the default fast

    if key in EMBEDDED:
        return embedded_curve(key)
    if Path(curve).is_file():
        return load_curve(curve)
    names = list(BUILTIN_CURVES) + list(EMBEDDED)
    raise UserError(f"unknown accuracy curve {curve!r}{suggest(curve, names)}: not a curve name "
                    f"({', '.join(names)}) and no such trace file")


def _same_model(name: str, target: ModelSpec) -> bool:
    """Whether a curve's model ``name`` (a catalogue name or alias, or free text) is ``target``."""
    from lattts.models.registry import find_entry

    entry = find_entry(name)
    return (entry.name if entry else name).strip().lower() == target.name.strip().lower()


def curve_use(curve: AccuracyCurve, target: ModelSpec, chosen: bool) -> CurveUse:
    """Whether ``curve`` is evidence about ``target``; a curve of another model is a stand-in, said so."""
    if curve.model is None:
        return CurveUse(None, None, chosen, f"the curve does not record its model; lattts cannot check that it "
                                            f"measures {target.name}")
    if _same_model(curve.model, target):
        return CurveUse(curve.model, False, chosen, f"the curve of {target.name} itself")
    note = f"stand-in: the curve of {curve.model}, not of {target.name}"
    if not chosen:
        note += (f"; no --curve was given, so the default stands in (pass --curve NAME or a traces FILE, see "
                 f"`lattts curves`, or --curve {DEFAULT_CURVE} to choose this one)")
    return CurveUse(curve.model, True, chosen, note)


def latency_basis(work: Workload, deploy: Deployment) -> LatencyBasis:
    """What the absolute latencies assume; for the paper's model, its Table 1 baseline at
    ``PAPER_CHECK_TOKENS`` beside lattts' prediction of the same configuration on this deployment."""
    from lattts.hardware.profiles import absolute_assumptions

    check = None
    if work.target.name == PAPER_MODEL:
        row = next(r for r in paper_table1() if r["strategy"] == "baseline" and int(r["max_tokens"]) == PAPER_CHECK_TOKENS)
        forced = replace(work, natural_lengths=None)  # the paper's runs are budget-forced
        predicted = float(generation_latency(forced, deploy, 1, 0, PAPER_CHECK_TOKENS).total_s)
        check = {"branches": 1, "draft_len": 0, "max_tokens": PAPER_CHECK_TOKENS,
                 "paper_latency_s": float(row["latency_s"]), "predicted_latency_s": round(predicted, 6),
                 "source": "paper (arXiv 2505.19634) Table 1, baseline; its hardware and engine are not named"}
    return LatencyBasis(deploy.profile.kind == "calibrated", absolute_assumptions(deploy.profile), check)


def choose_device(device: str | None, profile_file: str | None, dtype: str | None,
                  need_bytes: Callable[[str], float], detection: Detection | None = None) -> DeviceChoice:
    """The profile a command models with (``hardware.choose.choose_profile``), where this CPU's saved
    calibration is taken only if the model fits its memory: ``need_bytes(dtype)`` is what the model
    needs in the dtype it would run in there (predict and roofline choose alike)."""
    return choose_profile(device, profile_file, dtype, detection=detection,
                          fits=lambda p: need_bytes(dtype or p.dtype) <= p.usable_memory_bytes)


def choose_devices(requested: str, profile: DeviceProfile, need_bytes: float, what: str) -> tuple[int, str]:
    """Tensor-parallel device count: a number, or 'auto' = the fewest (1, 2, 4, 8) that hold ``need_bytes``."""
    if requested != "auto":
        n = parse_devices(requested)
        note = "" if n == 1 else f" (tensor-parallel; interconnect {profile.interconnect_bytes_per_s and format_bytes(profile.interconnect_bytes_per_s) + '/s' or 'unknown'})"
        return n, f"--devices {n}{note}"
    if profile.kind == "calibrated" or need_bytes <= profile.usable_memory_bytes:
        return 1, "one device"
    for n in TP_CHOICES:
        if need_bytes <= profile.usable_memory_bytes * n:
            return n, (f"{n} devices, tensor-parallel: {what} need {format_bytes(need_bytes)} with the shortest "
                       f"budget, more than one device's {format_bytes(profile.usable_memory_bytes)} usable")
    raise UserError(f"{what} need {format_bytes(need_bytes)}, more than {TP_CHOICES[-1]} devices of "
                    f"{profile.name} hold; pick a smaller model or another --device")


def parse_devices(requested: str) -> int:
    """A tensor-parallel device count from --devices: one of TP_CHOICES ('auto' is handled by the caller)."""
    choices = ", ".join(map(str, TP_CHOICES[:-1])) + f" or {TP_CHOICES[-1]}"
    try:
        n = int(requested)
    except ValueError:
        raise UserError(f"--devices {requested!r}: give a number of devices ({choices}) or 'auto'") from None
    if n not in TP_CHOICES:
        raise UserError(f"--devices {n} is out of range: give {choices} (tensor-parallel groups lattts models), "
                        f"or 'auto'")
    return n


def _check(request: PlanRequest) -> None:
    """The request's numbers, against the ranges the CLI documents (notebooks get the same lines)."""
    if request.prompt_tokens is not None:
        limits.TOKENS.check("--prompt-tokens", request.prompt_tokens)
    limits.BRANCHES.check("--max-branches", request.max_branches)
    limits.DRAFT_LEN.check("--max-draft-len", request.max_draft_len)
    for L in request.lengths:
        limits.TOKENS.check("--lengths", L)
    if request.devices != "auto":
        parse_devices(request.devices)
    if request.length_scale <= 0:
        raise UserError(f"length scale {request.length_scale}: must be positive")


def _workload(request: PlanRequest, prompt_tokens: int) -> Workload:
    target = resolve_model(request.model)
    no_draft = request.draft is None or request.draft.lower() in ("none", "")
    draft = None if no_draft else resolve_draft(request.draft, target)
    natural = None
    if request.natural_lengths:
        from lattts.traces.lengths import load_lengths

        natural = load_lengths(request.natural_lengths)
    return Workload(target=target, prompt_tokens=prompt_tokens, draft=draft,
                    acceptance=resolve_acceptance(target, draft, request.acceptance),
                    draft_shares_weights=not no_draft and request.draft.lower().startswith("self:"),
                    natural_lengths=natural)


def build_plan(request: PlanRequest, detection: Detection | None = None) -> Plan:
    """Resolve every name in ``request``; ``detection`` (GPUs and CPU found) is looked up when not given."""
    _check(request)
    prompt_tokens = request.prompt_tokens or PROMPT_TOKENS_ASSUMED
    work = _workload(request, prompt_tokens)
    curve = resolve_any_curve(request.curve or DEFAULT_CURVE)
    if request.length_scale != 1.0:
        curve = ScaledCurve(curve, request.length_scale)
    dtype = canonical_dtype(request.dtype) if request.dtype else None
    shortest = min(request.lengths) if request.lengths else min(curve.search_lengths())
    gamma_max = request.max_draft_len if work.draft else 0

    def need_in(dtype_there: str) -> float:
        return float(memory_required_bytes(work, dtype_there, 1, gamma_max, shortest))

    def need(profile: DeviceProfile) -> float:
        return need_in(dtype or profile.dtype)

    choice = choose_device(request.device, request.profile_file, dtype, need_in, detection)
    what = f"{work.target.name}" + (f" + {work.draft.name}" if work.draft and not work.draft_shares_weights else "") + \
           f" in {dtype or choice.profile.dtype}"
    n_dev, dev_reason = choose_devices(request.devices, choice.profile, need(choice.profile), what)
    from lattts.backend import schedule_of  # the engine the profile was calibrated on schedules the passes

    work = replace(work, schedule=schedule_of(choice.profile.provenance.get("engine")))
    problem = SearchProblem(
        workload=work, deployment=Deployment.on(choice.profile, dtype, n_dev), curve=curve,
        branches=branch_grid(request.max_branches), draft_lens=tuple(range(0, gamma_max + 1)),
        lengths=tuple(request.lengths), spread=latency_spread(choice.profile),
    )
    source = PROMPT_TOKENS_ASSUMPTION if request.prompt_tokens is None else "--prompt-tokens (given by the user)"
    return Plan(problem=problem, device_reason=choice.reason, devices_reason=dev_reason, prompt_tokens_source=source,
                curve_use=curve_use(curve, work.target, chosen=request.curve is not None),
                latency_basis=latency_basis(work, problem.deployment))


def point_json(plan: Plan, point: Point | None) -> dict | None:
    """One configuration of `predict --json`, with the basis of its accuracy and whose curve it is."""
    if point is None:
        return None
    curve, use = plan.problem.curve, plan.curve_use
    basis = accuracy_basis(curve, point.branches, point.max_tokens).to_json()
    basis |= {"curve": curve.name, "curve_model": curve.model, "stand_in": use.stand_in if use else None}
    return point.to_json() | {"accuracy_basis": basis}


def _acceptance_json(acc: AcceptanceModel | None, draft_lens: tuple[int, ...]) -> dict | None:
    if acc is None:
        return None
    out = {"alpha": acc.alpha, "source": acc.source, "measured_positions": len(acc.conditional),
           "extrapolated": acc.extrapolates(max(draft_lens)),
           "draft_lens": {str(g): acc.basis(g) for g in draft_lens if g > 0}}
    if acc.varies:
        v = acc.variation
        out["variation"] = {"effect_sd": v.effect_sd, "shared_fraction": v.shared_fraction, "vif": v.vif,
                            "position_offsets": dict(zip(map(str, v.bin_starts), v.bin_offsets)),
                            "measured_tokens": v.measured_tokens, "source": v.source}
    return out


def prediction_json(plan: Plan, prediction: Prediction) -> dict:
    """The JSON contract of `lattts predict --json`."""
    p = plan.problem
    work, deploy = p.workload, p.deployment

    def point(x):
        return point_json(plan, x)

    curve = {"name": p.curve.name, "source": p.curve.source, "kind": p.curve.kind, "model": p.curve.model,
             "lengths": list(p.curve.lengths) if p.curve.lengths else None,
             "branches": {"min": p.curve.branch_range[0], "max": p.curve.branch_range[1]}}
    if plan.curve_use:
        curve |= {"stand_in": plan.curve_use.stand_in, "chosen": plan.curve_use.chosen, "note": plan.curve_use.note}
    return {
        "budget_s": prediction.budget_s,
        "device": {"name": deploy.profile.name, "source": deploy.profile.source, "kind": deploy.profile.kind,
                   "reason": plan.device_reason, "devices": deploy.devices, "devices_reason": plan.devices_reason},
        "model": work.target.name,
        "draft": work.draft.name if work.draft else None,
        "acceptance": _acceptance_json(work.acceptance, p.draft_lens),
        "latency_distribution": {"device_spread_sd": p.spread.sd_log, "device_spread_source": p.spread.source,
                                 "confidence": prediction.confidence,
                                 "chosen_by": chosen_by(prediction.confidence)},
        "curve": curve,
        "latency_basis": plan.latency_basis.to_json() if plan.latency_basis else None,
        "prompt_tokens": work.prompt_tokens,
        "prompt_tokens_source": plan.prompt_tokens_source,
        "lengths": work.natural_lengths.source if work.natural_lengths else "budget forcing: every branch runs to L",
        "dtype": deploy.dtype,
        "best": point(prediction.best),
        "baselines": {k: point(v) for k, v in prediction.baselines.items()},
        "frontier": [point(x) for x in prediction.frontier],
        "evaluated": prediction.evaluated,
        "excluded_memory": prediction.excluded_memory,
        "fastest_s": prediction.fastest_s,
    }
