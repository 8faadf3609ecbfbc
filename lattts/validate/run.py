"""A whole ``lattts validate``: on lattts' engine or on the servers a user runs (``subject``), settle
the a-priori acceptance, run the grid live against its predictions, optionally time transformers'
generate and check predict's decision, and return one JSON-ready report.

Every prediction goes through ``plan.build_plan`` (the path ``lattts predict`` takes), so the
models, acceptance and device that validation checks are the ones predict would use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from lattts.errors import UserError
from lattts.plan import Plan, PlanRequest, build_plan
from lattts.simulator.accuracy import PAPER_CURVE_NAME
from lattts.simulator.deployment import DeviceSpeed
from lattts.simulator.generation import memory_required_bytes
from lattts.simulator.search import Config, check_confidence, run_prediction
from lattts.units import format_bytes
from lattts.validate.subject import Subject

DEFAULT_PROMPT = ("Solve the problem and put the final answer in \\boxed{}. What is the sum of the first "
                  "20 positive integers?")
PILOT_MAX_TOKENS = 512
DECISION_BRANCHES, DECISION_DRAFT_LEN = 16, 4  # the decision check's grid: B up to 16, gamma up to 4


@dataclass(frozen=True)
class ValidateRequest:
    """What to validate: where (the engine on a device, or servers), which model and draft, which
    configurations, and the checks to add."""

    configs: tuple[Config, ...]
    device: str = "cpu"  # 'cpu' or 'cuda:N' (lattts' engine)
    model: str = "smollm2-135m"
    model_given: bool = True  # False: the servers say which model they serve
    draft: str = "self:24"
    servers: tuple[str, ...] = ()  # serving engines, one per draft length; empty: lattts' engine
    engine: str | None = None  # the serving engine expected at ``servers``
    profile_file: Path | None = None  # default: the saved calibration, made now if missing or stale
    acceptance: str | None = None  # alpha or a measured file; default: the paper's rate, else a pilot run
    budget_s: float | None = None  # also check predict's decision at this budget
    confidence: float | None = None  # the decision chosen by P(within budget) >= this, as predict --confidence
    transformers: bool = False  # also time transformers' generate (gamma = 0 runs)
    prompt: str = DEFAULT_PROMPT
    length_scale: float = 16.0  # decision check: the paper curve with lengths divided by this
    seed: int = 0

    @property
    def dtype(self) -> str:
        from lattts.calibrate.shapes import CPU_DTYPE
        from lattts.hardware.profiles import DEFAULT_GPU_DTYPE

        return CPU_DTYPE if self.device == "cpu" else DEFAULT_GPU_DTYPE


def _plan_request(subject: Subject, acceptance) -> PlanRequest:
    """What predict would be asked for this model on this profile."""
    return PlanRequest(
        model=subject.model_ref, draft=subject.draft_ref, acceptance=acceptance, curve=PAPER_CURVE_NAME,
        profile_file=str(subject.profile_file), devices="1", prompt_tokens=len(subject.prompt), dtype=subject.dtype,
        max_branches=DECISION_BRANCHES, max_draft_len=DECISION_DRAFT_LEN if subject.draft else 0)


def _checked_plan(plan_request: PlanRequest, subject: Subject) -> Plan:
    """The plan, after checking that the subject runs the shapes it predicts (and only its draft lengths)."""
    plan = build_plan(plan_request)
    work = plan.problem.workload
    if work.target.shape != subject.target.shape or (work.draft and work.draft.shape != subject.draft.shape):
        raise UserError(f"{plan_request.model}: the engine loaded a shape other than the one lattts predicts for "
                        f"that name; pass the model's config.json or GGUF file instead")
    if subject.gammas is not None:
        lens = tuple(g for g in plan.problem.draft_lens if g in subject.gammas)
        plan = replace(plan, problem=replace(plan.problem, draft_lens=lens))
    return plan


def _check_memory(plan: Plan, configs) -> None:
    deploy, work = plan.problem.deployment, plan.problem.workload
    too_big = [c for c in configs if float(memory_required_bytes(work, deploy.dtype, c.branches, c.draft_len,
                                                                 c.max_tokens)) > deploy.usable_memory_bytes]
    if too_big:
        raise UserError(f"{len(too_big)} configuration(s) do not fit in {format_bytes(deploy.usable_memory_bytes)} "
                        f"(e.g. {too_big[-1].label()}); drop them from --grid")


def check_request(request: ValidateRequest) -> None:
    """Refuse, before the engine loads (or a calibration starts), an empty prompt and a grid whose
    largest run cannot fit this machine's memory."""
    from lattts.engine.memory import check_fits, engine_memory_bytes, live_workload, prompt_tokens_at_most

    if not request.prompt.strip():
        raise UserError("--prompt is empty: give the text every run continues")
    check_confidence(request.confidence)
    if request.confidence is not None and request.budget_s is None:
        raise UserError("--confidence chooses the decision check's configuration: give --budget as well")
    if request.servers:
        return
    needs_draft = any(c.draft_len for c in request.configs)
    work = live_workload(request.model, request.draft if needs_draft else None, prompt_tokens_at_most(request.prompt))
    sizes = {c: engine_memory_bytes(work, request.dtype, c.branches, c.draft_len, c.max_tokens, request.device)
             for c in request.configs}
    worst = max(sizes, key=sizes.get)
    check_fits(sizes[worst], f"{work.target.name} in {request.dtype} at {worst.label()}", "drop it from --grid",
               request.device)


def _prior(request: ValidateRequest, subject: Subject):
    """The a-priori acceptance: the user's alpha or file, else the paper's rate for the pair (lattts' engine
    samples as the paper did), else a pilot run on the subject; and, from a pilot without the order of
    its rounds, its acceptance along the generation (``AcceptanceAlongLength``, else None)."""
    from lattts.models.registry import published_acceptance
    from lattts.validate.session import pilot_along_length

    if subject.draft is None:
        return None, None
    if request.acceptance is not None:
        return request.acceptance, None
    if subject.published_pairs and published_acceptance(subject.target, subject.draft):
        return None, None  # the plan takes the paper's rate
    spec = [c for c in request.configs if c.draft_len] or [Config(1, DECISION_DRAFT_LEN, 48)]
    longest = min(max(c.max_tokens for c in spec), PILOT_MAX_TOKENS)  # measured at length: acceptance moves with it
    # every draft length validated runs its own pilot; on an engine that runs any draft length the
    # decision check's longest too (the lengths between are run-chained from the next longer one)
    validated = {c.draft_len for c in spec}
    # servers: only the draft lengths they were launched with
    gammas = validated | {DECISION_DRAFT_LEN} if subject.gammas is None else validated & set(subject.gammas)
    shortest = min(min(c.max_tokens for c in spec), longest)
    return pilot_along_length(subject.engine, subject.pilot_prompts, shortest, longest, sorted(gammas - {0}))


def _runnable(request: ValidateRequest, subject: Subject, on_note) -> list[Config]:
    if subject.gammas is None:
        return list(request.configs)
    runnable = [c for c in request.configs if c.draft_len in subject.gammas]
    skipped = sorted({c.draft_len for c in request.configs} - set(subject.gammas))
    if skipped and on_note:
        on_note(f"draft lengths {skipped} are launch settings no given server has: those runs are skipped")
    if not runnable:
        raise UserError(f"no configuration of the grid runs on these servers (they run draft lengths "
                        f"{list(subject.gammas)}); start one per draft length (lattts serve --draft-len G)")
    return runnable


def validate(request: ValidateRequest, on_run: Callable | None = None,
             on_note: Callable[[str], None] | None = None) -> dict:
    """Run the request; ``on_run(comparison)`` after each live run, ``on_note(text)`` for what the user
    should know while it runs (a calibration made first, runs skipped)."""
    from lattts.validate.session import run_grid
    from lattts.validate.subject import local_subject, server_subject

    check_request(request)
    subject = server_subject(request, on_note) if request.servers else local_subject(request, on_note)
    configs = _runnable(request, subject, on_note)
    prior, along = _prior(request, subject)
    plan_request = _plan_request(subject, prior)
    plan = _checked_plan(plan_request, subject)
    _check_memory(plan, configs)
    work = plan.problem.workload
    decision_plan = None
    if request.budget_s:  # refused now if nothing meets the budget, not after the grid has run
        decision_plan = _checked_plan(replace(plan_request, acceptance=work.acceptance,
                                              length_scale=request.length_scale), subject)
        run_prediction(decision_plan.problem, request.budget_s, request.confidence)
    session = run_grid(configs, subject.engine, subject.prompt, along.pricing(work) if along else work,
                       plan.problem.deployment, subject.anchor, request.seed, on_run)
    out = {**subject.describe,
           "profile": {"name": subject.profile.name, "source": subject.profile.source, "reason": subject.profile_reason},
           "acceptance_prior": work.acceptance.source if work.acceptance else None,
           "acceptance_along_length": along.source if along else None,
           "acceptance_variation": work.acceptance.variation.source if work.acceptance and work.acceptance.varies else None,
           "latency_spread": plan.problem.spread.source, "prompt_tokens": len(subject.prompt),
           "skipped": [c.label() for c in request.configs if c not in configs],
           "runs": [c.to_json() for c in session.comparisons], "summary": session.summary()}
    if request.transformers and not request.servers and any(c.draft_len == 0 for c in configs):
        out["transformers"] = _transformers(request, subject, on_note)
    if decision_plan is not None:
        out["decision"] = _decision(request, subject, decision_plan, session.anchors)
    return out


def _transformers(request: ValidateRequest, subject: Subject, on_note) -> dict:
    """transformers' generate on the same model, predicted with a profile calibrated on transformers."""
    from lattts.calibrate.run import runner_factory
    from lattts.calibrate.transformers_runner import hf_model
    from lattts.validate.independent import run_transformers
    from lattts.validate.profile import profile_for
    from lattts.validate.session import Anchor

    prof, why, prof_file = profile_for(None, request.device, request.dtype, "transformers", on_note)
    loaded = subject.engine.loaded
    weights = str(loaded.hf_folder) if loaded.hf_folder else None  # random weights stay random (seeded)
    hf = hf_model(subject.target, request.device, request.dtype, weights=weights, seed=request.seed)
    plan = build_plan(replace(_plan_request(subject, None), draft="none", max_draft_len=0,
                              profile_file=str(prof_file)))
    anchor = Anchor.start(prof, runner_factory("transformers", request.device, request.dtype))
    pad = loaded.tokenizer.eos_ids[0] if loaded.tokenizer.eos_ids else 0
    out = run_transformers(list(request.configs), hf, subject.prompt, pad, plan.problem.workload,
                           plan.problem.deployment, anchor, request.seed)
    return {"profile": {"name": prof.name, "source": prof.source, "reason": why}, **out}


def _decision(request: ValidateRequest, subject: Subject, plan: Plan, anchors: list[DeviceSpeed]) -> dict:
    """Run what predict chooses at the budget (on the length-scaled paper curve) and its neighbours,
    shuffled and bracketed by anchor timings as the grid's runs are. The choice's spread takes the
    device's speed from the grid's ``anchors`` (minutes of it, where calibration saw about one)."""
    from lattts.plan import latency_spread
    from lattts.validate.decision import check
    from lattts.validate.session import drift_corrected_runs, run_config, speed_factors

    run = partial(run_config, subject.engine, subject.prompt, seed=request.seed)

    def measure(configs: list[Config]) -> list[tuple[float, DeviceSpeed]]:
        runs = drift_corrected_runs(configs, subject.anchor, run, request.seed, [])
        done = {c: (result.latency_s, speed) for c, result, speed in runs}
        return [done[c] for c in configs]

    problem = replace(plan.problem, spread=latency_spread(plan.problem.deployment.profile,
                                                          speed_factors=speed_factors(anchors)))
    try:
        report = check(problem, request.budget_s, measure, request.confidence)
    except UserError:  # the session's speed leaves nothing within the budget at this confidence
        problem = plan.problem
        report = check(problem, request.budget_s, measure, request.confidence)
    out = report.to_json()
    out["curve"] = {"name": problem.curve.name, "source": problem.curve.source}
    out["spread"] = problem.spread.source
    return out
