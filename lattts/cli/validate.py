"""`lattts validate`: run configurations live and hold every prediction against the measurement."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lattts import limits
from lattts.cli.common import (check_output_file, console, err_console, handle_errors, print_json, progress_bar,
                               torch_device)
from lattts.cli.parsing import ranged
from lattts.validate.run import DEFAULT_PROMPT, ValidateRequest

D = ValidateRequest(configs=())  # the defaults, stated once on the request


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


@handle_errors
def validate(
    gpu: Optional[int] = ranged(None, "--gpu", allowed=limits.GPU_INDEX, help="Validate on CUDA GPU N."),
    device: Optional[str] = typer.Option(None, "--device", help="'cpu' (the default when no --gpu)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=f"Model to run: smollm2-135m (real weights) or any model name/config (random weights); default {D.model}, or with --server the model the servers serve."),
    draft: str = typer.Option(D.draft, "--draft", "-d", help="Draft for gamma > 0: self:N (the target's first N layers) or a model."),
    server: Optional[List[str]] = typer.Option(None, "--server", help="Validate serving engines instead of lattts' engine: one URL per draft length (repeat the flag; e.g. from `lattts serve`)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="With --server: the engine expected there (llama.cpp, vllm, sglang)."),
    profile: Optional[Path] = typer.Option(D.profile_file, "--profile", help="Profile to predict with; default: this device's saved calibration (made now if missing or stale)."),
    grid: Optional[str] = typer.Option(None, "--grid", help=f"Configurations: 'quick', 'full', or B=1,2;g=0,2;L=32,128 (a product; B {limits.LIVE_BRANCHES.text()}, g {limits.DRAFT_LEN.text()}, L {limits.TOKENS.text()})."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Also check the decision: run what predict chooses for this budget (> 0, finite) and its neighbours."),
    confidence: Optional[float] = ranged(D.confidence, "--confidence", allowed=limits.real(0, 1, True, True, "a probability strictly between 0 and 1, e.g. 0.9"),
                                         help="With --budget: choose the decision as predict --confidence does (P(within budget) >= this) instead of by mean latency."),
    acceptance: Optional[str] = typer.Option(D.acceptance, "--acceptance", help="A-priori acceptance: alpha in [0, 1) or a measured acceptance file; default: the paper's rate for the pair, else a pilot run."),
    quick: bool = typer.Option(False, "--quick", help="12 configurations with short lengths (a few minutes on a small CPU)."),
    transformers_engine: Optional[bool] = typer.Option(None, "--transformers/--no-transformers", help="Also time transformers' generate for gamma=0 (default: on, off with --quick)."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", help="Prompt of every run (chat template applied; not empty)."),
    length_scale: float = ranged(D.length_scale, "--length-scale", allowed=limits.real(0, limits.MAX_LENGTH_SCALE, low_open=True), help="Decision check: the paper curve with lengths divided by this (small machines run short lengths)."),
    seed: int = ranged(D.seed, "--seed", allowed=limits.SEED, help="Seed of the runs and of their order."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write predicted-vs-measured figures to this HTML file."),
) -> None:
    """Run a grid of (B, gamma, L) live, predict each run from the calibrated profile (with the a-priori
    and with the measured acceptance), report the errors, the device's drift and which term is off."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.engine.device import check_device
    from lattts.units import parse_duration_s
    from lattts.validate.grid import parse_grid
    from lattts.validate.run import check_request, validate as run

    dev = torch_device(gpu, device)
    check_device(dev)
    configs = tuple(parse_grid(grid or ("quick" if quick else "full"), servers=bool(server)))
    request = ValidateRequest(configs=configs, device=dev, model=model or D.model, model_given=model is not None,
                              draft=draft, servers=tuple(server or ()), engine=engine, profile_file=profile,
                              acceptance=acceptance, budget_s=parse_duration_s(budget) if budget else None,
                              confidence=confidence,
                              transformers=transformers_engine if transformers_engine is not None else not quick,
                              prompt=prompt, length_scale=length_scale, seed=seed)
    check_request(request)  # before the progress bar: a refusal is one line
    with progress_bar() as progress:
        task = progress.add_task("live runs", total=len(configs))
        out = run(request, on_run=lambda c: progress.update(task, advance=1, description=f"{c.config.label()}: {c.error:+.1%}"),
                  on_note=None if json_out else err_console.print)
    if html:
        from lattts.report.plots import save_html, validation_figure

        save_html(validation_figure(out), html)
        out["html"] = str(html)
    if json_out:
        print_json(out)
    else:
        _print(out)


def _print(out: dict) -> None:
    from rich.table import Table

    from lattts.units import format_duration

    console.print(f"[bold]lattts validate[/]: {out['model']} ({out['weights']})" +
                  (f", draft {out['draft']}" if out["draft"] else ""), highlight=False)
    console.print(f"  profile   {out['profile']['name']}: {out['profile']['source']} — {out['profile']['reason']}", highlight=False)
    if out["acceptance_prior"]:
        console.print(f"  a-priori acceptance: {out['acceptance_prior']}", highlight=False)
    if out.get("acceptance_along_length"):
        console.print(f"  each run at its own length: {out['acceptance_along_length']}", highlight=False)
    if out.get("acceptance_variation"):
        console.print(f"  its variation: {out['acceptance_variation']}", highlight=False)
    t = Table(title="predicted (a-priori acceptance, drift-corrected) against measured", title_justify="left")
    for col in ("config", "predicted", "measured", "error", "with measured α", "α", "rounds (pred)", "what is off"):
        t.add_column(col, justify="left" if col in ("config", "what is off") else "right")
    for r in out["runs"]:
        cfg = _label(r)
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
    cov = s.get("coverage_p90")
    if cov and cov["runs"]:
        console.print(f"  coverage: {cov['within']} of {cov['runs']} runs ({cov['fraction']:.0%}) finished within their "
                      f"predicted 90th percentile (a calibrated distribution puts about 90% there)")
    if s.get("drift"):
        note = " [bold yellow](larger than the median error: read the errors with that in mind)[/]" if s["drift_exceeds_error"] else ""
        each = "; ".join(f"{kind} {d['start']:.2f}x at start, {d['end']:.2f}x at end, range {d['min']:.2f}-{d['max']:.2f}x"
                         for kind, d in (("one-row pass", s["drift"]), ("many-row pass", s.get("drift_rows"))) if d)
        console.print(f"  device drift (anchor passes vs calibration): {each}{note}")
    tr = out.get("transformers")
    if tr:
        ts = tr["summary"]
        console.print(f"  transformers generate (gamma=0, {ts['runs']} runs, profile {tr['profile']['source']}): "
                      f"median |error| {ts['median_abs_error']:.1%}, p90 {ts['p90_abs_error']:.1%}, bias {ts['bias']:+.1%}",
                      highlight=False)
    dec = out.get("decision")
    if dec:
        _print_decision(dec)


def _label(d: dict) -> str:
    return f"B={d['branches']} γ={d['draft_len']} L={d['max_tokens']}"


def _print_decision(dec: dict) -> None:
    from lattts.units import format_duration
    from lattts.validate.decision import NEAR_BEST

    c, best = dec["chosen"], dec["measured_best"]
    if not dec["chosen_meets_budget"]:
        verdict = "[bold red]missed the budget[/]"
    elif dec["chosen_is_best"]:
        verdict = "the best of its neighbours"
    elif dec["chosen_near_best"]:
        verdict = f"within {NEAR_BEST:.0%} of the best's accuracy"
    else:
        verdict = "[bold yellow]NOT the best of its neighbours[/]"
    console.print(f"  decision at {format_duration(dec['budget_s'])} ({dec['curve']['name']}, by {dec['chosen_by']}): "
                  f"{_label(c)}, predicted {format_duration(c['predicted_s'])} (at the drift while it ran, "
                  f"{c['drift']:.2f}x: {format_duration(c['predicted_at_drift_s'])}), measured "
                  f"{format_duration(c['measured_s'])}: {verdict}"
                  + (f"; best measured: {_label(best)} in {format_duration(best['measured_s'])}"
                     if best and not dec["chosen_is_best"] else ""), highlight=False)
