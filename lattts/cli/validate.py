"""`lattts validate`: run configurations live and hold every prediction against the measurement."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from lattts.cli.common import console, err_console, handle_errors, print_json

DEFAULT_PROMPT = ("Solve the problem and put the final answer in \\boxed{}. What is the sum of the first "
                  "20 positive integers?")
FRESH_HOURS = 12.0  # a saved profile older than this is recalibrated before validating


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


@handle_errors
def validate(
    gpu: Optional[int] = typer.Option(None, "--gpu", help="Validate on CUDA GPU N."),
    device: Optional[str] = typer.Option(None, "--device", help="'cpu' (the default when no --gpu)."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model to run: smollm2-135m (real weights) or any model name/config (random weights)."),
    draft: str = typer.Option("self:24", "--draft", "-d", help="Draft for gamma > 0: self:N (the target's first N layers) or a model."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Profile to predict with; default: this device's saved calibration (made now if missing or stale)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Configurations: 'quick', 'full', or B=1,2;g=0,2;L=32,128 (a product)."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Also check the decision: run what predict chooses for this budget and its neighbours."),
    acceptance: Optional[str] = typer.Option(None, "--acceptance", help="A-priori acceptance: alpha in [0, 1) or a measured acceptance file; default: the paper's rate for the pair, else a pilot run."),
    quick: bool = typer.Option(False, "--quick", help="12 configurations with short lengths (a few minutes on a small CPU)."),
    transformers_engine: Optional[bool] = typer.Option(None, "--transformers/--no-transformers", help="Also time transformers' generate for gamma=0 (default: on, off with --quick)."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", help="Prompt of every run (chat template applied)."),
    length_scale: float = typer.Option(16.0, "--length-scale", help="Decision check: the paper curve with lengths divided by this (small machines run short lengths)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the runs and of their order."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write predicted-vs-measured figures to this HTML file."),
) -> None:
    """Run a grid of (B, gamma, L) live, predict each run from the calibrated profile (with the a-priori
    and with the measured acceptance), report the errors, the device's drift and which term is off."""
    from lattts.cli.generate import _check_device
    from lattts.engine.load import load, load_draft
    from lattts.errors import UserError
    from lattts.simulator.generation import memory_required_bytes
    from lattts.validate.session import Anchor, pilot_acceptance, run_grid

    if gpu is not None and device is not None:
        raise UserError("give either --gpu N or --device cpu, not both")
    if device not in (None, "cpu"):
        raise UserError(f"--device {device!r}: use --device cpu, or --gpu N")
    dev = f"cuda:{gpu}" if gpu is not None else "cpu"
    _check_device(dev)
    configs = parse_grid(grid or ("quick" if quick else "full"))
    if length_scale <= 0:
        raise UserError(f"--length-scale {length_scale}: must be positive (lengths of the paper's curve are divided by it)")
    if budget:
        from lattts.units import parse_duration_s

        parse_duration_s(budget)  # a budget that does not parse fails before any model is loaded
    dtype = "fp32" if dev == "cpu" else "bf16"
    loaded = load(model, dev, dtype)
    tok = loaded.tokenizer
    target = loaded.model.spec
    ids = tok.encode(tok.chat(prompt))
    needs_draft = any(c.draft_len for c in configs)
    drafter = load_draft(draft, loaded, dev, dtype) if needs_draft else None
    draft_spec = (target.first_layers(drafter.layers) if drafter and drafter.layers else
                  drafter.model.spec if drafter else None)
    prof, why = resolve_profile(profile, dev, dtype, "lattts", quiet=json_out)
    too_big = [c for c in configs if float(memory_required_bytes(target, c.branches, c.draft_len, c.max_tokens, len(ids),
                                                               dtype, draft_spec, bool(drafter and drafter.layers)))
               > prof.usable_memory_bytes]
    if too_big:
        raise UserError(f"{len(too_big)} configuration(s) do not fit in {prof.usable_memory_bytes / 1e9:.1f} GB "
                        f"(e.g. {too_big[-1].label()}); drop them from --grid")
    stop = tuple(tok.eos_ids)
    prior = None
    if drafter:
        from lattts.models.registry import published_acceptance
        from lattts.plan import resolve_acceptance

        pair = None if acceptance is not None or drafter.layers else published_acceptance(target, draft_spec)
        if acceptance is not None or pair:  # the user's alpha or file, else the paper's rate for the pair
            prior = resolve_acceptance(target, draft_spec, acceptance)
        else:
            prior = pilot_acceptance(loaded.model, tok.encode(tok.chat("Write a short story about a lighthouse.")),
                                     drafter, stop)
    anchor = Anchor(prof, dev)
    session = _run_with_progress(configs, loaded.model, ids, drafter, target, draft_spec, prof, prior, anchor, stop,
                                 seed, json_out, run_grid)
    out = {"model": target.name, "weights": loaded.weights, "draft": draft if drafter else None,
           "profile": {"name": prof.name, "source": prof.source, "reason": why},
           "acceptance_prior": prior.source if prior else None, "prompt_tokens": len(ids),
           "runs": [c.to_json() for c in session.comparisons], "summary": session.summary()}
    wants_transformers = transformers_engine if transformers_engine is not None else not quick
    if wants_transformers and any(c.draft_len == 0 for c in configs):  # it runs plain decoding only
        out["transformers"] = _independent(loaded, model, configs, ids, dev, dtype, seed, json_out)
    if budget:
        out["decision"] = _decision(budget, length_scale, target, draft_spec, prof, prior, ids, loaded, drafter, stop,
                                    seed, bool(drafter and drafter.layers))
    if html:
        from lattts.report.plots import save_html, validation_figure

        save_html(validation_figure(out), html)
        out["html"] = str(html)
    if json_out:
        print_json(out)
    else:
        _print(out)


def parse_grid(text: str):
    """'quick', 'full', or 'B=1,2;g=0,2;L=32,128' (every combination)."""
    from lattts.errors import UserError
    from lattts.validate.session import FULL_GRID, QUICK_GRID, Config

    if text in ("quick", "full"):
        return list(QUICK_GRID if text == "quick" else FULL_GRID)
    usage = f"--grid {text!r}: write quick, full, or B=1,2;g=0,2;L=32,128 (every combination is run)"
    parts = {}
    for chunk in text.split(";"):
        key, _, values = chunk.partition("=")
        key = {"gamma": "g"}.get(key.strip().lower(), key.strip().lower())
        try:
            parts[key] = sorted({int(v) for v in values.split(",") if v.strip()})
        except ValueError:
            raise UserError(usage) from None
    if set(parts) != {"b", "g", "l"} or not all(parts.values()):
        raise UserError(usage)
    if min(parts["b"]) < 1 or min(parts["l"]) < 1 or min(parts["g"]) < 0:
        raise UserError(f"--grid {text!r}: B and L must be at least 1, g at least 0")
    return [Config(b, g, L) for b in parts["b"] for g in parts["g"] for L in parts["l"]]


def resolve_profile(path: Optional[Path], device: str, dtype: str, engine: str, quiet: bool):
    """The profile to validate: a file (for this device), else a fresh saved one, else a quick calibration now."""
    from lattts.calibrate import run
    from lattts.errors import UserError
    from lattts.hardware.store import profile_path
    from lattts.simulator.profile import load_profile

    target = run.fingerprint_cpu() if device == "cpu" else run.fingerprint_gpu(int(device.split(":")[1]))
    if path is not None:
        prof = load_profile(path)
        if prof.kind != "calibrated" or prof.device_key != target.key:
            raise UserError(f"profile {path} describes {prof.name} ({prof.device_key}), not this device "
                            f"({target.name}, {target.key}); recalibrate here: lattts calibrate "
                            f"{'--device cpu' if device == 'cpu' else '--gpu ' + device.split(':')[1]}")
        return prof, f"--profile {path}"
    saved = profile_path(target.key, dtype, engine)
    if saved.is_file():
        prof = load_profile(saved)
        created = dt.datetime.fromisoformat(prof.provenance.get("created", "1970-01-01T00:00:00+00:00"))
        age_h = (dt.datetime.now(dt.timezone.utc) - created).total_seconds() / 3600
        if age_h < FRESH_HOURS:
            return prof, f"saved calibration {saved} ({age_h:.1f} h old)"
    if not quiet:
        err_console.print(f"calibrating this device first ({engine} engine, quick): no fresh profile at {saved}")
    result = run.calibrate(target, run.default_shapes(target, dtype), dtype, True, True,
                           run.runner_factory(engine, device, dtype), engine)
    return result.profile, f"calibrated now (quick): {result.profile_file}"


def _run_with_progress(configs, model, ids, drafter, target, draft_spec, prof, prior, anchor, stop, seed, quiet, run_grid):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console, transient=True)
    with progress:
        task = progress.add_task("live runs", total=len(configs))

        def on_run(c):
            progress.update(task, advance=1, description=f"{c.config.label()}: {c.error:+.1%}")

        return run_grid(configs, model, ids, drafter, target, draft_spec, prof, prior, anchor, stop, seed, on_run)


def _independent(loaded, model_name, configs, ids, dev, dtype, seed, quiet) -> dict:
    """transformers' generate on the same model, predicted with a profile calibrated on transformers."""
    from lattts.calibrate.transformers_runner import hf_model
    from lattts.validate.independent import predict_generate, time_generate
    from lattts.validate.session import Anchor, error_stats

    prof, why = resolve_profile(None, dev, dtype, "transformers", quiet)
    weights = str(loaded.hf_folder) if loaded.hf_folder else None  # random weights stay random (seeded)
    hf = hf_model(loaded.model.spec, dev, dtype, weights=weights, seed=seed)
    anchor = Anchor(prof, dev)
    pad = loaded.tokenizer.eos_ids[0] if loaded.tokenizer.eos_ids else 0
    runs = []
    for config in [c for c in configs if c.draft_len == 0]:
        before = anchor.factor()
        measured = time_generate(hf, ids, config, pad, seed)
        factor = (before + anchor.factor()) / 2
        predicted = predict_generate(loaded.model.spec, prof, config, len(ids)) * factor
        runs.append({"branches": config.branches, "max_tokens": config.max_tokens, "predicted_s": predicted,
                     "measured_s": measured, "error": predicted / measured - 1.0, "drift_factor": factor})
    return {"profile": {"name": prof.name, "source": prof.source, "reason": why}, "runs": runs,
            "summary": error_stats([r["error"] for r in runs])}


def _decision(budget, length_scale, target, draft_spec, prof, prior, ids, loaded, drafter, stop, seed, shares):
    from lattts.engine.generate import generate
    from lattts.simulator.accuracy import ScaledCurve, paper_curve
    from lattts.simulator.search import Problem
    from lattts.units import parse_duration_s
    from lattts.validate.decision import check

    budget_s = parse_duration_s(budget)
    problem = Problem(target=target, profile=prof, curve=ScaledCurve(paper_curve(), length_scale),
                      prompt_tokens=len(ids), draft=draft_spec, acceptance=prior, draft_shares_weights=shares,
                      branches=(1, 2, 4, 8, 16), draft_lens=(0, 1, 2, 3, 4) if drafter else (0,))

    def measure(config):
        res = generate(loaded.model, ids, config.branches, config.max_tokens, config.max_tokens, 1.0, 1.0, seed,
                       drafter if config.draft_len else None, config.draft_len, stop)
        return res.latency_s

    report = check(problem, budget_s, measure)
    out = report.to_json()
    out["curve"] = {"name": problem.curve.name, "source": problem.curve.source}
    return out


def _print(out: dict) -> None:
    from rich.table import Table

    from lattts.units import format_duration

    console.print(f"[bold]lattts validate[/]: {out['model']} ({out['weights']})" +
                  (f", draft {out['draft']}" if out["draft"] else ""), highlight=False)
    console.print(f"  profile   {out['profile']['name']}: {out['profile']['source']} — {out['profile']['reason']}", highlight=False)
    if out["acceptance_prior"]:
        console.print(f"  a-priori acceptance: {out['acceptance_prior']}", highlight=False)
    t = Table(title="predicted (a-priori acceptance, drift-corrected) against measured", title_justify="left")
    for col in ("config", "predicted", "measured", "error", "with measured α", "α", "rounds (pred)", "what is off"):
        t.add_column(col, justify="left" if col in ("config", "what is off") else "right")
    for r in out["runs"]:
        cfg = f"B={r['branches']} γ={r['draft_len']} L={r['max_tokens']}"
        alpha = f"{r['acceptance_rate']:.2f}" if r["acceptance_rate"] is not None else "-"
        t.add_row(cfg, format_duration(r["predicted_s"]), format_duration(r["measured_s"]), f"{r['error']:+.1%}",
                  f"{r['error_with_measured_acceptance']:+.1%}", alpha, f"{r['rounds']} ({r['predicted_rounds']:.1f})",
                  r["culprit"] or "")
    console.print(t)
    s = out["summary"]
    console.print(f"  {s['runs']} runs: median |error| {s['median_abs_error']:.1%}, p90 {s['p90_abs_error']:.1%}, "
                  f"bias {s['bias']:+.1%}; with measured acceptance: median {s['with_measured_acceptance']['median_abs_error']:.1%}, "
                  f"p90 {s['with_measured_acceptance']['p90_abs_error']:.1%}; without drift correction: median "
                  f"{s['without_drift_correction']['median_abs_error']:.1%}")
    d = s.get("drift")
    if d:
        note = " [bold yellow](larger than the median error: read the errors with that in mind)[/]" if s["drift_exceeds_error"] else ""
        console.print(f"  device drift (anchor pass vs calibration): {d['start']:.2f}x at start, {d['end']:.2f}x at end, "
                      f"range {d['min']:.2f}-{d['max']:.2f}x{note}")
    tr = out.get("transformers")
    if tr:
        ts = tr["summary"]
        console.print(f"  transformers generate (gamma=0, {ts['runs']} runs, profile {tr['profile']['source']}): "
                      f"median |error| {ts['median_abs_error']:.1%}, p90 {ts['p90_abs_error']:.1%}, bias {ts['bias']:+.1%}",
                      highlight=False)
    dec = out.get("decision")
    if dec:
        c = dec["chosen"]
        verdict = "is the best of its neighbours" if dec["chosen_is_best"] else "is NOT the best of its neighbours"
        console.print(f"  decision at {format_duration(dec['budget_s'])} ({dec['curve']['name']}): chose B={c['branches']} "
                      f"γ={c['draft_len']} L={c['max_tokens']} (measured {format_duration(c['measured_s'])}), which {verdict}"
                      + (f"; best measured: B={dec['measured_best']['branches']} γ={dec['measured_best']['draft_len']} "
                         f"L={dec['measured_best']['max_tokens']}" if dec["measured_best"] and not dec["chosen_is_best"] else ""),
                      highlight=False)
