"""Tables the CLI prints (rich), built from the package's results."""

from __future__ import annotations

from lattts.units import format_duration

LABELS = {"best": "latency-optimal", "baseline": "baseline (B=1, γ=0)", "branch_wise": "branch-wise (γ=0)",
          "sequence_wise": "sequence-wise (B=1)"}


def prediction_tables(console, plan, result, budget_s: float, frontier_rows: int) -> None:
    """What `lattts predict` prints: the inputs and their sources, the answer beside the paper's
    strategies, and the Pareto frontier."""
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
