"""A whole ``lattts validate``: load the model on the engine, choose the profile, settle the
a-priori acceptance, run the grid live against its predictions, optionally time transformers'
generate and check predict's decision, and return one JSON-ready report.

Every prediction goes through ``plan.build_plan`` (the path ``lattts predict`` takes), so the
models, acceptance and device that validation checks are the ones predict would use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lattts.errors import UserError
from lattts.plan import Plan, PlanRequest, build_plan
from lattts.simulator.accuracy import PAPER_CURVE_NAME
from lattts.simulator.generation import memory_required_bytes
from lattts.simulator.search import Config
from lattts.units import format_bytes

DEFAULT_PROMPT = ("Solve the problem and put the final answer in \\boxed{}. What is the sum of the first "
                  "20 positive integers?")
PILOT_PROMPTS = ("Write a short story about a lighthouse.", "Explain how a refrigerator keeps food cold.",
                 "List three facts about the Moon, then explain one of them.")  # never the prompt validated
PILOT_MAX_TOKENS = 512
DECISION_BRANCHES, DECISION_DRAFT_LEN = 16, 4  # the decision check's grid: B up to 16, gamma up to 4


@dataclass(frozen=True)
class ValidateRequest:
    """What to validate: where, which model and draft, which configurations, and the checks to add."""

    configs: tuple[Config, ...]
    device: str = "cpu"  # 'cpu' or 'cuda:N'
    model: str = "smollm2-135m"
    draft: str = "self:24"
    profile_file: Path | None = None  # default: this device's saved calibration, made now if missing or stale
    acceptance: str | None = None  # alpha or a measured file; default: the paper's rate, else a pilot run
    budget_s: float | None = None  # also check predict's decision at this budget
    transformers: bool = False  # also time transformers' generate (gamma = 0 runs)
    prompt: str = DEFAULT_PROMPT
    length_scale: float = 16.0  # decision check: the paper curve with lengths divided by this
    seed: int = 0

    @property
    def dtype(self) -> str:
        from lattts.calibrate.shapes import CPU_DTYPE
        from lattts.hardware.profiles import DEFAULT_GPU_DTYPE

        return CPU_DTYPE if self.device == "cpu" else DEFAULT_GPU_DTYPE


def _plan_request(request: ValidateRequest, engine, prompt_tokens: int, profile_file: Path, acceptance) -> PlanRequest:
    """What predict would be asked for this model on this profile (plain decoding without a draft)."""
    return PlanRequest(
        model=request.model, draft=request.draft if engine.draft else "none", acceptance=acceptance,
        curve=PAPER_CURVE_NAME, profile_file=str(profile_file), devices="1", prompt_tokens=prompt_tokens,
        dtype=request.dtype, max_branches=DECISION_BRANCHES, max_draft_len=DECISION_DRAFT_LEN if engine.draft else 0)


def _checked_plan(plan_request: PlanRequest, engine) -> Plan:
    """The plan, after checking that the engine runs the shapes it predicts."""
    plan = build_plan(plan_request)
    work = plan.problem.workload
    if work.target.shape != engine.spec.shape or (work.draft and work.draft.shape != engine.draft_spec.shape):
        raise UserError(f"{plan_request.model}: the engine loaded a shape other than the one lattts predicts for "
                        f"that name; pass the model's config.json or GGUF file instead")
    return plan


def _check_memory(plan: Plan, configs) -> None:
    deploy, work = plan.problem.deployment, plan.problem.workload
    too_big = [c for c in configs if float(memory_required_bytes(work, deploy.dtype, c.branches, c.draft_len,
                                                                 c.max_tokens)) > deploy.usable_memory_bytes]
    if too_big:
        raise UserError(f"{len(too_big)} configuration(s) do not fit in {format_bytes(deploy.usable_memory_bytes)} "
                        f"(e.g. {too_big[-1].label()}); drop them from --grid")


def _prior(request: ValidateRequest, engine):
    """The a-priori acceptance: the user's alpha or file, else the paper's rate for the pair, else a pilot run."""
    from lattts.models.registry import published_acceptance
    from lattts.validate.session import pilot_acceptance

    if engine.draft is None:
        return None
    if request.acceptance is not None:
        return request.acceptance
    if engine.draft.layers is None and published_acceptance(engine.spec, engine.draft_spec):
        return None  # the plan takes the paper's rate
    tok = engine.loaded.tokenizer
    spec = [c for c in request.configs if c.draft_len] or [Config(1, DECISION_DRAFT_LEN, 48)]
    longest = min(max(c.max_tokens for c in spec), PILOT_MAX_TOKENS)  # measured at length: acceptance moves with it
    gamma = max(DECISION_DRAFT_LEN, max(c.draft_len for c in spec))  # smaller draft lengths are run-chained from it
    return pilot_acceptance(engine, [tok.encode(tok.chat(p)) for p in PILOT_PROMPTS], longest, gamma)


def validate(request: ValidateRequest, on_run: Callable | None = None,
             on_note: Callable[[str], None] | None = None) -> dict:
    """Run the request; ``on_run(comparison)`` after each live run, ``on_note(text)`` for what the user
    should know while it runs (a calibration made first)."""
    from lattts.calibrate.run import runner_factory
    from lattts.engine.local import load_engine
    from lattts.validate.profile import profile_for
    from lattts.validate.session import Anchor, run_grid

    needs_draft = any(c.draft_len for c in request.configs)
    engine = load_engine(request.model, request.device, request.dtype, request.draft if needs_draft else None)
    tok = engine.loaded.tokenizer
    ids = tok.encode(tok.chat(request.prompt))
    prof, why, prof_file = profile_for(request.profile_file, request.device, request.dtype, "lattts", on_note)
    plan_request = _plan_request(request, engine, len(ids), prof_file, _prior(request, engine))
    plan = _checked_plan(plan_request, engine)
    _check_memory(plan, request.configs)
    work = plan.problem.workload
    anchor = Anchor.start(prof, runner_factory(prof.provenance.get("engine", "lattts"), request.device, prof.dtype))
    session = run_grid(list(request.configs), engine, ids, work, plan.problem.deployment, anchor, request.seed, on_run)
    out = {"model": engine.spec.name, "weights": engine.loaded.weights, "draft": request.draft if engine.draft else None,
           "profile": {"name": prof.name, "source": prof.source, "reason": why},
           "acceptance_prior": work.acceptance.source if work.acceptance else None,
           "acceptance_variation": work.acceptance.variation.source if work.acceptance and work.acceptance.varies else None,
           "latency_spread": plan.problem.spread.source, "prompt_tokens": len(ids),
           "runs": [c.to_json() for c in session.comparisons], "summary": session.summary()}
    if request.transformers and any(c.draft_len == 0 for c in request.configs):
        out["transformers"] = _transformers(request, engine, ids, on_note)
    if request.budget_s:
        out["decision"] = _decision(request, engine, ids, replace(plan_request, acceptance=work.acceptance,
                                                                  length_scale=request.length_scale))
    return out


def _transformers(request: ValidateRequest, engine, ids: list[int], on_note) -> dict:
    """transformers' generate on the same model, predicted with a profile calibrated on transformers."""
    from lattts.calibrate.run import runner_factory
    from lattts.calibrate.transformers_runner import hf_model
    from lattts.validate.independent import run_transformers
    from lattts.validate.profile import profile_for
    from lattts.validate.session import Anchor

    prof, why, prof_file = profile_for(None, request.device, request.dtype, "transformers", on_note)
    loaded = engine.loaded
    weights = str(loaded.hf_folder) if loaded.hf_folder else None  # random weights stay random (seeded)
    hf = hf_model(engine.spec, request.device, request.dtype, weights=weights, seed=request.seed)
    plan = build_plan(replace(_plan_request(request, engine, len(ids), prof_file, None), draft="none",
                              max_draft_len=0))
    anchor = Anchor.start(prof, runner_factory("transformers", request.device, request.dtype))
    pad = loaded.tokenizer.eos_ids[0] if loaded.tokenizer.eos_ids else 0
    out = run_transformers(list(request.configs), hf, ids, pad, plan.problem.workload, plan.problem.deployment,
                           anchor, request.seed)
    return {"profile": {"name": prof.name, "source": prof.source, "reason": why}, **out}


def _decision(request: ValidateRequest, engine, ids: list[int], plan_request: PlanRequest) -> dict:
    """Run what predict chooses at the budget (on the length-scaled paper curve) and its neighbours."""
    from lattts.backend import GenerationRequest
    from lattts.validate.decision import check

    plan = _checked_plan(plan_request, engine)

    def measure(config: Config) -> float:
        run = GenerationRequest.forced(ids, config.branches, config.max_tokens, seed=request.seed,
                                       draft_len=config.draft_len, stop_ids=engine.stop_ids)
        return engine.generate(run).latency_s

    out = check(plan.problem, request.budget_s, measure).to_json()
    out["curve"] = {"name": plan.problem.curve.name, "source": plan.problem.curve.source}
    return out
