"""`lattts predict`: the latency-optimal (B, gamma, L) within a wall-clock budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import check_output_file, console, err_console, handle_errors, print_json
from lattts.cli.parsing import ranged
from lattts.plan import DEFAULT_CURVE, PROMPT_TOKENS_ASSUMED, PlanRequest
from lattts.report.tables import prediction_tables
from lattts.units import format_duration, parse_duration_s, parse_int_list

D = PlanRequest()  # the defaults, stated once on the request


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


@handle_errors
def predict(
    budget: str = typer.Option(..., "--budget", "-b", help="Wall-clock budget: 500ms, 10s, 1m, 1.5min (> 0, finite)."),
    model: str = typer.Option(D.model, "--model", "-m", help="Target model: a name (`lattts models`) or a config.json path."),
    draft: str = typer.Option(D.draft, "--draft", "-d", help="Draft model, 'self:N' (first N target layers), or 'none'."),
    acceptance: Optional[str] = typer.Option(D.acceptance, "--acceptance", "-a",
                                             help="Acceptance rate alpha in [0, 1), or a measured acceptance file; default: the paper's rate for the pair."),
    curve: Optional[str] = typer.Option(D.curve, "--curve", "-c",
                                        help=f"Accuracy curve: a name (`lattts curves`) or a traces file; default: "
                                             f"{DEFAULT_CURVE}, which stands in (marked) for any other model."),
    device: Optional[str] = typer.Option(D.device, "--device", help="Device table key (`lattts hardware`) or 'cpu'; default: detected."),
    profile: Optional[Path] = typer.Option(D.profile_file, "--profile", help="Calibrated device profile JSON (from `lattts calibrate`)."),
    devices: str = typer.Option(D.devices, "--devices", help=f"Tensor-parallel device count ({', '.join(map(str, limits.TP_CHOICES))}), or 'auto' (fewest that hold the weights)."),
    prompt_tokens: Optional[int] = ranged(D.prompt_tokens, "--prompt-tokens", allowed=limits.TOKENS,
                                          help=f"Prompt length in tokens; default: {PROMPT_TOKENS_ASSUMED} "
                                               f"(a MATH-500 problem in a chat template, rounded up)."),
    dtype: Optional[str] = typer.Option(D.dtype, "--dtype", help="Weights/KV dtype (bf16, fp16, fp32, fp8); default: the profile's."),
    max_branches: int = ranged(D.max_branches, "--max-branches", allowed=limits.BRANCHES,
                               help="Largest B searched (powers of two up to it)."),
    max_draft_len: int = ranged(D.max_draft_len, "--max-draft-len", allowed=limits.DRAFT_LEN,
                                help="Largest draft length gamma searched."),
    lengths: Optional[str] = typer.Option(None, "--lengths", help=f"Length budgets L to search, e.g. 1024,2048 (each {limits.TOKENS.text()}); default: the curve's, 4 per octave."),
    natural_lengths: Optional[Path] = typer.Option(D.natural_lengths, "--natural-lengths",
                                                   help="Token counts (one per line, or traces with 'tokens'): branches stop on their own instead of budget forcing."),
    confidence: Optional[float] = ranged(None, "--confidence", allowed=limits.real(0, 1, True, True, "a probability strictly between 0 and 1, e.g. 0.9"),
                                         help="Choose by P(latency <= budget) >= this (e.g. 0.9: the 90th percentile within budget) instead of the mean."),
    frontier_rows: int = ranged(8, "--frontier-rows", allowed=limits.count(1, limits.MAX_FRONTIER_ROWS),
                                help="Frontier points shown in the table, around the budget and the answer."),
    emit: Optional[str] = typer.Option(None, "--emit", help="Also print how to launch and call a serving engine for the answer: llama.cpp, vllm or sglang."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an interactive frontier chart to this HTML file."),
) -> None:
    """Predict the most accurate configuration that answers within BUDGET, with the paper's baselines."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.plan import build_plan, prediction_json
    from lattts.simulator.search import run_prediction

    budget_s = parse_duration_s(budget)
    request = PlanRequest(
        model=model, draft=draft, acceptance=acceptance, curve=curve, device=device,
        profile_file=str(profile) if profile else None, devices=devices, prompt_tokens=prompt_tokens, dtype=dtype,
        max_branches=max_branches, max_draft_len=max_draft_len,
        lengths=tuple(parse_int_list(lengths, "--lengths", limits.TOKENS)) if lengths else (),
        natural_lengths=str(natural_lengths) if natural_lengths else None)
    if emit is not None:
        from lattts.serving.emit import EMIT_ENGINES

        if emit not in EMIT_ENGINES:
            from lattts.errors import UserError

            raise UserError(f"--emit {emit!r}: use one of {', '.join(EMIT_ENGINES)}")
    plan = build_plan(request)
    if plan.curve_use.stand_in and not plan.curve_use.chosen:
        err_console.print(f"[yellow]warning:[/] accuracy {plan.curve_use.note}", highlight=False, soft_wrap=True)
    grid, result = run_prediction(plan.problem, budget_s, confidence)
    emitted = _emit(emit, plan, result.best) if emit else None
    if html:
        from lattts.report.plots import frontier_figure, save_html

        p = plan.problem
        title = f"{p.workload.target.name} on {p.deployment.devices}x {p.deployment.profile.name}: budget {format_duration(budget_s)}"
        if plan.curve_use.stand_in:
            title += f" (accuracy: stand-in curve of {p.curve.model})"
        save_html(frontier_figure(grid, result, title, budget_s), html)
    if json_out:
        out = prediction_json(plan, result)
        if html:
            out["html"] = str(html)
        if emitted:
            out["emit"] = emitted.to_json()
        print_json(out)
        return
    prediction_tables(console, plan, result, budget_s, frontier_rows)
    if html:
        console.print(f"  chart written to {html}")
    if emitted:
        console.print(f"[bold]{emitted.engine}[/] for B={result.best.branches} γ={result.best.draft_len} "
                      f"L={result.best.max_tokens}:\n  launch   {emitted.launch}\n  request  {emitted.endpoint} "
                      f"{json.dumps(emitted.request)}", highlight=False, markup=True, soft_wrap=True)
        for note in emitted.notes:
            console.print(f"  note     {note}", highlight=False)


def _emit(engine: str, plan, best):
    from lattts.serving.emit import emit

    p = plan.problem
    return emit(engine, p.workload, p.deployment.devices, best.branches, best.draft_len, best.max_tokens)
