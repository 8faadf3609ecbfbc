"""What a validation runs on: lattts' own engine, or the servers a user runs. Either way the rest of
validation gets the same things: a ``Generator``, the shapes it runs, the prompt as token ids, the
profile that predicts it, an anchor that tracks the machine's speed, and the draft lengths it can run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lattts.errors import UserError
from lattts.models.spec import ModelSpec
from lattts.simulator.profile import DeviceProfile

# The pilot's prompts: questions of the kind validated (the default prompt is a MATH-style problem),
# never the one validated. Acceptance moves with the kind of text: on llama.cpp with a self:24 draft of
# SmolLM2 at gamma 4, three prose prompts gave alpha 0.214 and these three 0.260, where the validated
# runs measured 0.28-0.31.
PILOT_PROMPTS = tuple("Solve the problem and put the final answer in \\boxed{}. " + q for q in (
    "What is 15% of 240?", "A rectangle has a perimeter of 30 and a length of 9. What is its area?",
    "How many positive divisors does 36 have?"))


@dataclass
class Subject:
    engine: object  # a Generator: LocalEngine or ServerPool
    target: ModelSpec
    draft: ModelSpec | None
    model_ref: str  # how build_plan names the target (a catalogue name, config.json or GGUF path)
    draft_ref: str  # how it names the draft ('none' without one)
    dtype: str  # the plan's dtype: the engine's compute dtype, or a server's KV cache dtype
    prompt: list[int]
    pilot_prompts: list[list[int]]  # token ids of PILOT_PROMPTS (pilot acceptance runs)
    profile: DeviceProfile
    profile_reason: str
    profile_file: Path
    anchor: object  # validate.session.Anchor
    gammas: tuple[int, ...] | None  # draft lengths it can run; None: any
    describe: dict = field(default_factory=dict)  # model, weights, draft, backend: for the report
    published_pairs: bool = True  # the paper's acceptance applies (rejection sampling, as the paper ran)


def local_subject(request, on_note: Callable[[str], None] | None) -> Subject:
    """lattts' engine on this machine, predicted by this device's calibration (made now if stale)."""
    from lattts.calibrate.run import runner_factory
    from lattts.engine.local import load_engine
    from lattts.validate.profile import profile_for
    from lattts.validate.session import Anchor

    needs_draft = any(c.draft_len for c in request.configs)
    engine = load_engine(request.model, request.device, request.dtype, request.draft if needs_draft else None)
    tok = engine.loaded.tokenizer
    prof, why, prof_file = profile_for(request.profile_file, request.device, request.dtype, "lattts", on_note)
    anchor = Anchor.start(prof, runner_factory(prof.provenance.get("engine", "lattts"), request.device, prof.dtype))
    return Subject(
        engine=engine, target=engine.spec, draft=engine.draft_spec, model_ref=request.model,
        draft_ref=request.draft if engine.draft else "none", dtype=request.dtype,
        prompt=tok.encode(tok.chat(request.prompt)), pilot_prompts=[tok.encode(tok.chat(p)) for p in PILOT_PROMPTS],
        profile=prof, profile_reason=why, profile_file=prof_file, anchor=anchor, gammas=None,
        describe={"model": engine.spec.name, "weights": engine.loaded.weights,
                  "draft": request.draft if engine.draft else None, "backend": "lattts engine"},
        published_pairs=engine.draft is not None and engine.draft.layers is None)


def server_subject(request, on_note: Callable[[str], None] | None) -> Subject:
    """The servers at ``request.servers`` (one per draft length), predicted by the profile calibrated
    through the one without a draft (made now, quick, if there is none fresh)."""
    from lattts.calibrate.server import SERVER_KV_DTYPE
    from lattts.models.registry import resolve_draft
    from lattts.serving.connect import connect, served_spec
    from lattts.serving.pool import ServerPool
    from lattts.validate.session import Anchor

    pool = ServerPool([connect(url, request.engine) for url in request.servers])
    target = served_spec(pool.first(), request.model if request.model_given else None)
    gammas = tuple(g for g in pool.gammas if any(c.draft_len == g for c in request.configs))
    draft = resolve_draft(request.draft, target) if any(gammas) else None
    prof, why, prof_file = _server_profile(request, pool, target, on_note)
    anchor = Anchor()  # factors of 1 without a plain server to re-time
    if pool.plain is not None:
        from lattts.serving.timing import ServerPassRunner

        runner = ServerPassRunner(pool.plain)
        anchor = Anchor.start(prof, lambda _: runner)
    elif on_note:
        on_note("no server without a draft: the machine's drift is not tracked during the runs")
    first = pool.first()
    return Subject(
        engine=pool, target=target, draft=draft, model_ref=request.model if request.model_given else first.info.model,
        draft_ref=request.draft if draft else "none", dtype=SERVER_KV_DTYPE,
        prompt=first.tokenize(request.prompt), pilot_prompts=[first.tokenize(p) for p in PILOT_PROMPTS], profile=prof,
        profile_reason=why, profile_file=prof_file, anchor=anchor, gammas=pool.gammas,
        describe={"model": target.name, "weights": target.weight_format.source if target.weight_format else "as served",
                  "draft": request.draft if draft else None, "backend": pool.name,
                  "servers": [b.info.to_json() for b in pool.by_gamma.values()]},
        published_pairs=False)


def _server_profile(request, pool, target: ModelSpec, on_note) -> tuple[DeviceProfile, str, Path]:
    """A given profile, the saved calibration of this server's engine if fresh, else a quick one now."""
    from lattts.calibrate.server import SERVER_KV_DTYPE, calibrate_server, server_target
    from lattts.hardware.profiles import load_profile
    from lattts.hardware.store import profile_path
    from lattts.validate.profile import FRESH_HOURS, age_hours

    if request.profile_file is not None:
        return load_profile(request.profile_file), f"--profile {request.profile_file}", Path(request.profile_file)
    plain = pool.plain
    if plain is None:
        raise UserError("validating servers needs one launched without a draft (to calibrate and to re-time the "
                        "machine), or --profile FILE from `lattts calibrate --server`")
    saved = profile_path(server_target(plain).key, SERVER_KV_DTYPE, plain.engine)
    if saved.is_file():
        prof = load_profile(saved)
        if age_hours(prof) < FRESH_HOURS and (prof.provenance.get("server") or {}).get("model") == plain.info.model:
            return prof, f"saved calibration {saved} ({age_hours(prof):.1f} h old)", saved
    if on_note:
        on_note(f"calibrating {plain.name} first (quick): no fresh profile of it at {saved}")
    result = calibrate_server(plain, target, quick=True)
    return result.profile, f"calibrated now (quick): {result.profile_file}", result.profile_file
