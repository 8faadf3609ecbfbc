"""`lattts predict`: the latency-optimal (B, gamma, L) within a wall-clock budget."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts.cli.common import console, handle_errors, print_json
from lattts.plan import PROMPT_TOKENS_ASSUMED, PlanRequest
from lattts.units import format_duration, parse_duration_s, parse_int_list

D = PlanRequest()  # the defaults, stated once on the request
LABELS = {"best": "latency-optimal", "baseline": "baseline (B=1, γ=0)", "branch_wise": "branch-wise (γ=0)",
          "sequence_wise": "sequence-wise (B=1)"}


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


@handle_errors
def predict(
    budget: str = typer.Option(..., "--budget", "-b", help="Wall-clock budget: 500ms, 10s, 1m, 1.5min."),
    model: str = typer.Option(D.model, "--model", "-m", help="Target model: a name (`lattts models`) or a config.json path."),
    draft: str = typer.Option(D.draft, "--draft", "-d", help="Draft model, 'self:N' (first N target layers), or 'none'."),
    acceptance: Optional[str] = typer.Option(D.acceptance, "--acceptance", "-a",
                                             help="Acceptance rate alpha, or a measured acceptance file; default: the paper's rate for the pair."),
    curve: str = typer.Option(D.curve, "--curve", "-c", help="Accuracy curve: a name (`lattts curves`) or a traces file."),
    device: Optional[str] = typer.Option(D.device, "--device", help="Device table key (`lattts hardware`) or 'cpu'; default: detected."),
    profile: Optional[Path] = typer.Option(D.profile_file, "--profile", help="Calibrated device profile JSON (from `lattts calibrate`)."),
    devices: str = typer.Option(D.devices, "--devices", help="Tensor-parallel device count, or 'auto' (fewest that hold the weights)."),
    prompt_tokens: Optional[int] = typer.Option(D.prompt_tokens, "--prompt-tokens",
                                                help=f"Prompt length in tokens; default: {PROMPT_TOKENS_ASSUMED} "
                                                     f"(a MATH-500 problem in a chat template, rounded up)."),
    dtype: Optional[str] = typer.Option(D.dtype, "--dtype", help="Weights/KV dtype (bf16, fp16, fp32, fp8); default: the profile's."),
    max_branches: int = typer.Option(D.max_branches, "--max-branches", help="Largest B searched (powers of two up to it)."),
    max_draft_len: int = typer.Option(D.max_draft_len, "--max-draft-len", help="Largest draft length gamma searched."),
    lengths: Optional[str] = typer.Option(None, "--lengths", help="Length budgets L to search, e.g. 1024,2048; default: the curve's, 4 per octave."),
    natural_lengths: Optional[Path] = typer.Option(D.natural_lengths, "--natural-lengths",
                                                   help="Token counts (one per line, or traces with 'tokens'): branches stop on their own instead of budget forcing."),
    confidence: Optional[float] = typer.Option(None, "--confidence", help="Choose by P(latency <= budget) >= this (e.g. 0.9: the 90th percentile within budget) instead of the mean."),
    frontier_rows: int = typer.Option(8, "--frontier-rows", help="Frontier points shown in the table."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an interactive frontier chart to this HTML file."),
) -> None:
    """Predict the most accurate configuration that answers within BUDGET, with the paper's baselines."""
    from lattts.plan import build_plan, prediction_json
    from lattts.simulator.search import run_prediction

    budget_s = parse_duration_s(budget)
    request = PlanRequest(
        model=model, draft=draft, acceptance=acceptance, curve=curve, device=device,
        profile_file=str(profile) if profile else None, devices=devices, prompt_tokens=prompt_tokens, dtype=dtype,
        max_branches=max_branches, max_draft_len=max_draft_len,
        lengths=tuple(parse_int_list(lengths, "--lengths")) if lengths else (),
        natural_lengths=str(natural_lengths) if natural_lengths else None)
    plan = build_plan(request)
    grid, result = run_prediction(plan.problem, budget_s, confidence)
    if html:
        from lattts.report.plots import frontier_figure, save_html

        p = plan.problem
        title = f"{p.workload.target.name} on {p.deployment.devices}x {p.deployment.profile.name}: budget {format_duration(budget_s)}"
        save_html(frontier_figure(grid, result, title, budget_s), html)
    if json_out:
        out = prediction_json(plan, result)
        if html:
            out["html"] = str(html)
        print_json(out)
        return
    _print_tables(plan, result, budget_s, frontier_rows, html)


def _print_tables(plan, result, budget_s: float, frontier_rows: int, html: Path | None) -> None:
    from rich.table import Table

    p = plan.problem
    work, deploy = p.workload, p.deployment
    console.print(f"[bold]lattts predict[/]: most accurate configuration within [bold]{format_duration(budget_s)}[/]")
    console.print(f"  model     {work.target.name}" + (f", draft {work.draft.name}" if work.draft else ", no draft")
                  + f", {deploy.dtype}")
    console.print(f"  prompt    {work.prompt_tokens} tokens — {plan.prompt_tokens_source}", highlight=False)
    console.print(f"  device    {deploy.devices}x {deploy.profile.name} — {plan.device_reason}; {plan.devices_reason}",
                  highlight=False)
    console.print(f"  latency   roofline on {deploy.profile.source}", highlight=False)
    if work.acceptance:
        console.print(f"  accept    alpha {work.acceptance.alpha:.3f} from {work.acceptance.source}", highlight=False)
        if work.acceptance.extrapolates(max(p.draft_lens)):
            measured = len(work.acceptance.conditional)
            console.print(f"            measured up to draft position {measured}; positions beyond reuse its rate "
                          f"(extrapolated up to γ={max(p.draft_lens)})", highlight=False)
    if work.acceptance and work.acceptance.draft_len is not None:  # measured: say where each gamma's rates come from
        bases: dict[str, list[str]] = {}
        for g in (g for g in p.draft_lens if g):
            bases.setdefault(work.acceptance.basis(g), []).append(str(g))
        console.print("            γ " + "; ".join(f"{b}: {','.join(gs)}" for b, gs in bases.items()), highlight=False)
    console.print(f"  spread    {p.spread.source}; " + ("chosen by mean latency" if result.confidence is None else
                  f"chosen by P(within budget) >= {result.confidence:.0%}"), highlight=False)
    console.print(f"  accuracy  {p.curve.name}: {p.curve.source}", highlight=False)
    if work.natural_lengths:
        console.print(f"  lengths   natural, {work.natural_lengths.source}", highlight=False)
    console.print(f"  grid      {result.evaluated} configurations, {result.excluded_memory} excluded (exceed device memory)")

    table = Table(title="answer and the paper's strategies at this budget", title_justify="left")
    for col in ("strategy", "B", "γ", "L", "latency", "p90", "P(≤T)", "accuracy", "tok/round"):
        table.add_column(col, justify="right" if col != "strategy" else "left", min_width=15 if col == "strategy" else None)
    rows = [("best", result.best)] + list(result.baselines.items())
    for key, point in rows:
        if point is None:
            table.add_row(LABELS[key], "-", "-", "-", "none within budget", "-", "-", "-", "-")
            continue
        style = "bold green" if key == "best" else None
        table.add_row(LABELS[key], str(point.branches), str(point.draft_len), str(point.max_tokens),
                      format_duration(point.latency_s), format_duration(point.latency_p90_s),
                      f"{point.p_within_budget:.0%}", f"{point.accuracy:.1%}", f"{point.tokens_per_round:.2f}",
                      style=style)
    console.print(table)

    front = list(result.frontier)
    if front:
        step = max(1, len(front) // max(frontier_rows, 1))
        shown = front[::step][:frontier_rows]
        ftable = Table(title=f"Pareto frontier ({len(front)} points; {len(shown)} shown)", title_justify="left")
        for col in ("B", "γ", "L", "latency", "p90", "P(≤T)", "accuracy"):
            ftable.add_column(col, justify="right")
        for point in shown:
            mark = " *" if point.latency_s <= budget_s else ""
            ftable.add_row(str(point.branches), str(point.draft_len), str(point.max_tokens),
                           format_duration(point.latency_s) + mark, format_duration(point.latency_p90_s),
                           f"{point.p_within_budget:.0%}", f"{point.accuracy:.1%}")
        console.print(ftable)
        console.print("  * within budget")
    if html:
        console.print(f"  chart written to {html}")
