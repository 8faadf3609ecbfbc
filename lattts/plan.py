"""From what a user asks (names, flags) to a simulator ``Problem`` with the provenance of every input.

Shared by ``lattts predict``, ``lattts validate`` and the notebooks, so each resolves models,
drafts, acceptance, curves and devices the same way and reports the same sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lattts.errors import UserError
from lattts.hardware.choose import DeviceChoice, Detection, choose_profile
from lattts.models.registry import published_acceptance, resolve_draft, resolve_model
from lattts.models.spec import ModelSpec, canonical_dtype
from lattts.simulator.accuracy import AccuracyCurve, resolve_curve
from lattts.simulator.generation import memory_required_bytes
from lattts.simulator.lengths import LengthDistribution
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.search import DEFAULT_BRANCHES, Prediction, Problem
from lattts.simulator.speculative import AcceptanceModel
from lattts.units import format_bytes

PROMPT_TOKENS_DEFAULT_SOURCE = ("assumption: MATH-500 problems average 196 characters (about 55 tokens) plus chat "
                                "template and system prompt, rounded up to 128 tokens")
TP_CHOICES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Plan:
    """A Problem plus where each of its inputs comes from."""

    problem: Problem
    device_reason: str
    devices_reason: str
    prompt_tokens_source: str


def resolve_acceptance(target: ModelSpec, draft: ModelSpec | None, acceptance: str | float | None) -> AcceptanceModel | None:
    """The acceptance model: an explicit alpha, a measured acceptance file, or the paper's rate for the pair."""
    if draft is None:
        return None
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


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def resolve_any_curve(curve: str) -> AccuracyCurve:
    """An accuracy curve: a built-in (paper-fitted) or embedded measured curve by name, or a trace file.

    A trace file's curve is measured from its samples (source: the file); see
    ``lattts.traces.curve.MeasuredCurve`` for how single-budget files treat L.
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


def choose_devices(requested: str, profile: DeviceProfile, need_bytes: float, what: str) -> tuple[int, str]:
    """Tensor-parallel device count: a number, or 'auto' = the fewest (1, 2, 4, 8) that hold ``need_bytes``."""
    if requested != "auto":
        try:
            n = int(requested)
        except ValueError:
            raise UserError(f"--devices {requested!r}: give a number of devices (1, 2, 4, 8) or 'auto'") from None
        if n < 1:
            raise UserError(f"--devices {n}: must be at least 1")
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


def build_plan(model: str, draft: str | None, acceptance: str | float | None, curve: str, device: str | None,
               profile_file: str | None, devices: str, prompt_tokens: int, dtype: str | None,
               max_branches: int, max_draft_len: int, budgets: list[int] | None = None,
               natural_lengths: str | None = None, detection: Detection | None = None,
               prompt_tokens_given: bool = True) -> Plan:
    if prompt_tokens < 1:
        raise UserError(f"--prompt-tokens {prompt_tokens}: must be at least 1")
    if max_branches < 1 or max_draft_len < 0:
        raise UserError("--max-branches must be at least 1 and --max-draft-len at least 0")
    target = resolve_model(model)
    draft_spec = None if (draft is None or draft.lower() in ("none", "")) else resolve_draft(draft, target)
    shares = bool(draft and draft.lower().startswith("self:"))
    accept = resolve_acceptance(target, draft_spec, acceptance)
    acc_curve = resolve_any_curve(curve)
    dtype = canonical_dtype(dtype) if dtype else None
    if budgets and any(b < 1 for b in budgets):
        raise UserError("--lengths: every length budget must be at least 1 token")
    shortest = min(budgets) if budgets else min(acc_curve.search_budgets())

    def need(profile: DeviceProfile) -> float:
        return float(memory_required_bytes(target, 1, max_draft_len if draft_spec else 0, shortest, prompt_tokens,
                                           dtype or profile.dtype, draft_spec, shares))

    choice: DeviceChoice = choose_profile(device, profile_file, dtype,
                                          fits=lambda p: need(p) <= p.usable_memory_bytes, detection=detection)
    what = f"{target.name}" + (f" + {draft_spec.name}" if draft_spec and not shares else "") + \
           f" in {dtype or choice.profile.dtype}"
    n_dev, dev_reason = choose_devices(devices, choice.profile, need(choice.profile), what)
    branches = tuple(b for b in DEFAULT_BRANCHES if b <= max_branches) or (1,)
    if max_branches not in branches and max_branches > branches[-1]:
        branches = branches + (max_branches,)
    problem = Problem(
        target=target, profile=choice.profile, curve=acc_curve, prompt_tokens=prompt_tokens, draft=draft_spec,
        acceptance=accept, draft_shares_weights=shares, dtype=dtype, devices=n_dev, branches=branches,
        draft_lens=tuple(range(0, max_draft_len + 1)) if draft_spec else (0,), budgets=tuple(budgets or ()),
        lengths=LengthDistribution.from_file(Path(natural_lengths)) if natural_lengths else None,
    )
    return Plan(problem=problem, device_reason=choice.reason, devices_reason=dev_reason,
                prompt_tokens_source="--prompt-tokens (given by the user)" if prompt_tokens_given
                else PROMPT_TOKENS_DEFAULT_SOURCE)


def prediction_json(plan: Plan, prediction: Prediction) -> dict:
    """The JSON contract of `lattts predict --json`."""
    p = plan.problem

    def point(x):
        return x.to_json() if x is not None else None

    return {
        "budget_s": prediction.budget_s,
        "device": {"name": p.profile.name, "source": p.profile.source, "kind": p.profile.kind,
                   "reason": plan.device_reason, "devices": p.devices, "devices_reason": plan.devices_reason},
        "model": p.target.name,
        "draft": p.draft.name if p.draft else None,
        "acceptance": ({"alpha": p.acceptance.alpha, "source": p.acceptance.source,
                        "measured_positions": len(p.acceptance.conditional),
                        "extrapolated": p.acceptance.extrapolates(max(p.draft_lens))} if p.acceptance else None),
        "curve": {"name": p.curve.name, "source": p.curve.source, "kind": p.curve.kind},
        "prompt_tokens": p.prompt_tokens,
        "prompt_tokens_source": plan.prompt_tokens_source,
        "lengths": p.lengths.source if p.lengths else "budget forcing: every branch runs to L",
        "dtype": p.weight_dtype,
        "best": point(prediction.best),
        "baselines": {k: point(v) for k, v in prediction.baselines.items()},
        "frontier": [point(x) for x in prediction.frontier],
        "evaluated": prediction.evaluated,
        "excluded_memory": prediction.excluded_memory,
        "fastest_s": prediction.fastest_s,
    }
