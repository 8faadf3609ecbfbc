"""Tables the CLI prints (rich), built from the package's results."""

from __future__ import annotations

from lattts.simulator.accuracy import accuracy_basis
from lattts.units import column_unit, format_duration, format_duration_in

NARROW_COLUMNS = 100  # below this terminal width, tables drop their borders and print_table fits them


def new_table(console, title: str):
    """A rich table: boxed on a wide terminal, borderless on a narrow one (an 80-column window), where
    ``print_table`` fits its columns."""
    from rich.table import Table

    if console.width >= NARROW_COLUMNS:
        return Table(title=title, title_justify="left")
    return Table(title=title, title_justify="left", box=None, padding=(0, 1))


def print_table(console, table) -> None:
    """Print ``table``; a borderless one first gets fixed column widths that fit the console. (Rich's own
    shrinking, at 80 columns, cut 'latency' to 'laten…' and dropped the last column while a wider column
    still had room to wrap.) Each column starts at its widest line; the one with the most room above its
    longest word gives a character at a time until the table fits, so words wrap and none is cut."""
    if table.box is None:
        from rich.cells import cell_len

        texts = [[str(col.header), *map(str, col.cells)] for col in table.columns]  # the cells as added
        widest = [max(cell_len(line) for text in col for line in text.splitlines() or [""]) for col in texts]
        floor = [max([cell_len(word) for text in col for word in text.split()] + [column.min_width or 1])
                 for col, column in zip(texts, table.columns)]
        widths = list(widest)
        room = console.width - 2 * len(widths)  # padding (0, 1) on every column
        while sum(widths) > room:
            i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
            if widths[i] <= floor[i]:
                break  # every column at its longest word: rich wraps what is left
            widths[i] -= 1
        for column, width in zip(table.columns, widths):
            column.width = width
    console.print(table)


LABELS = {"best": "latency-optimal", "baseline": "baseline (B=1, γ=0)", "branch_wise": "branch-wise (γ=0)",
          "sequence_wise": "sequence-wise (B=1)"}


def prediction_tables(console, plan, result, budget_s: float, frontier_rows: int) -> None:
    """What `lattts predict` prints: the inputs and their sources, the answer beside the best of each
    of the paper's strategies (all predicted here), the Pareto frontier around the budget, and notes
    on what the accuracies and the absolute latencies rest on."""
    _inputs(console, plan, result)
    rows = [("best", result.best)] + list(result.baselines.items())
    _answer_table(console, plan, rows, budget_s)
    front = list(result.frontier)
    if front:
        _frontier_table(console, plan, front, result.best, budget_s, frontier_rows)
    shown = [p for _, p in rows if p is not None] + front
    for note in basis_notes(plan, shown):
        console.print(f"  {note}", highlight=False)


def _inputs(console, plan, result) -> None:
    p = plan.problem
    work, deploy = p.workload, p.deployment
    console.print(f"[bold]lattts predict[/]: most accurate configuration within [bold]{format_duration(result.budget_s)}[/]")
    console.print(f"  model     {work.target.name}" + (f", draft {work.draft.name}" if work.draft else ", no draft")
                  + f", {deploy.dtype}")
    console.print(f"  prompt    {work.prompt_tokens} tokens — {plan.prompt_tokens_source}", highlight=False)
    console.print(f"  device    {deploy.devices}x {deploy.profile.name} — {plan.device_reason}; {plan.devices_reason}",
                  highlight=False)
    console.print(f"  latency   roofline on {deploy.profile.source}", highlight=False)
    basis = plan.latency_basis
    if basis and not basis.calibrated:
        text = f"  absolute  {basis.assumes}. Compare rows by their ratios; the absolute times are idealised"
        check = basis.paper_check
        if check:
            text += (f" (the paper's baseline at L={check['max_tokens']} took {check['paper_latency_s']:g} s, Table 1 "
                     f"on hardware it does not name; lattts predicts {check['predicted_latency_s']:.3g} s for it here)")
        console.print(text, highlight=False)
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
    use = plan.curve_use
    console.print(f"  accuracy  {p.curve.name}: {p.curve.source}" + (f"; {use.note}" if use else ""), highlight=False)
    if work.natural_lengths:
        console.print(f"  lengths   natural, {work.natural_lengths.source}", highlight=False)
    console.print(f"  grid      {result.evaluated} configurations, {result.excluded_memory} excluded (exceed device memory)")


STAND_IN_MARK = "†"


def basis_cell(point, curve) -> str:
    """The accuracy's basis as in the JSON: 'fitted' or 'measured', else 'extrap-B' and/or 'interp-L'."""
    b = accuracy_basis(curve, point.branches, point.max_tokens)
    flags = [w for w, on in (("extrap-B", b.extrapolated_b), ("interp-L", b.interpolated_l)) if on]
    return " ".join(flags) or b.basis


def accuracy_cell(plan, point) -> str:
    """The accuracy, marked † when the curve stands in for another model's."""
    stand_in = plan.curve_use is not None and plan.curve_use.stand_in
    return f"{point.accuracy:.1%}" + (STAND_IN_MARK if stand_in else "")


def basis_notes(plan, points) -> list[str]:
    """The legend of the basis column for the points shown, and whose curve the accuracies are."""
    curve, target = plan.problem.curve, plan.problem.workload.target
    bases = [accuracy_basis(curve, p.branches, p.max_tokens) for p in points]
    lo, hi = curve.branch_range
    notes = []
    if plan.curve_use and plan.curve_use.stand_in:
        notes.append(f"{STAND_IN_MARK} stand-in: every accuracy is from the curve of {curve.model} ({curve.name}), not "
                     f"of {target.name}; give {target.name}'s own with --curve (`lattts curves`, or a traces file)")
    if any(b.extrapolated_b for b in bases):
        how = "measured" if curve.kind == "measured" else "fitted"
        notes.append(f"extrap-B: B outside {lo}..{hi}, the branch counts the curve was {how} at; the model's "
                     f"extrapolation, not evidence")
    if any(b.interpolated_l for b in bases):
        notes.append(f"interp-L: L between the curve's lengths {', '.join(map(str, curve.lengths))}, linear in log2(L)")
    return notes


def _unit(points) -> str:
    """One duration unit for a table's time columns (latency, p90): the one its largest value reads in."""
    values = [v for p in points if p is not None for v in (p.latency_s, p.latency_p90_s) if v is not None]
    return column_unit(max(values)) if values else "s"


def _answer_table(console, plan, rows, budget_s: float) -> None:
    unit = _unit([p for _, p in rows])
    title = (f"predicted by lattts within {format_duration(budget_s)}: the answer and the best of each strategy "
             f"the paper compares (lattts' numbers, not the paper's)")
    if plan.curve_use and plan.curve_use.stand_in:
        title += f"; {STAND_IN_MARK} accuracy: stand-in curve of {plan.problem.curve.model}"
    table = new_table(console, title)
    for col in ("strategy", "B", "γ", "L", f"latency ({unit})", f"p90 ({unit})", "P(≤T)", "accuracy", "basis",
                "tok per round"):
        table.add_column(col, justify="left" if col in ("strategy", "basis") else "right",
                         min_width=15 if col == "strategy" else None)
    for key, point in rows:
        if point is None:
            table.add_row(LABELS[key], "-", "-", "-", "none within budget", "-", "-", "-", "-", "-")
            continue
        table.add_row(LABELS[key], str(point.branches), str(point.draft_len), str(point.max_tokens),
                      format_duration_in(point.latency_s, unit, True), format_duration_in(point.latency_p90_s, unit, True),
                      f"{point.p_within_budget:.0%}", accuracy_cell(plan, point), basis_cell(point, plan.problem.curve),
                      f"{point.tokens_per_round:.2f}", style="bold green" if key == "best" else None)
    print_table(console, table)


def frontier_window(front, best, budget_s: float, rows: int) -> range:
    """Which frontier points (ordered by latency) to show: ``rows`` consecutive ones around the answer
    (else around the last within the budget), half of them faster, so the table reaches past the budget."""
    rows = max(1, min(rows, len(front)))
    within = [i for i, p in enumerate(front) if p.latency_s <= budget_s]
    at = next((i for i, p in enumerate(front) if best is not None and p.config == best.config),
              within[-1] if within else 0)
    start = min(max(0, at - rows // 2), len(front) - rows)
    return range(start, start + rows)


def _frontier_table(console, plan, front, best, budget_s: float, rows: int) -> None:
    window = frontier_window(front, best, budget_s, rows)
    shown = [front[i] for i in window]
    hidden = [f"{window.start} faster" if window.start else "", f"{len(front) - window.stop} slower"
              if window.stop < len(front) else ""]
    hidden_text = " and ".join(h for h in hidden if h)
    unit = _unit(shown)
    title = f"Pareto frontier: {len(front)} points" + (
        f", {len(shown)} around the budget and the answer shown ({hidden_text} not shown; --frontier-rows N)"
        if hidden_text else "")
    table = new_table(console, title)
    for col in ("", "B", "γ", "L", f"latency ({unit})", f"p90 ({unit})", "P(≤T)", "accuracy", "basis"):
        table.add_column(col, justify="left" if col in ("", "basis") else "right")
    for n, point in enumerate(shown):
        is_answer = best is not None and point.config == best.config
        within = point.latency_s <= budget_s
        last_within = within and (n + 1 == len(shown) or shown[n + 1].latency_s > budget_s)
        table.add_row("→" if is_answer else "", str(point.branches), str(point.draft_len), str(point.max_tokens),
                      format_duration_in(point.latency_s, unit, True) + (" *" if within else ""),
                      format_duration_in(point.latency_p90_s, unit, True), f"{point.p_within_budget:.0%}",
                      accuracy_cell(plan, point), basis_cell(point, plan.problem.curve),
                      style="bold green" if is_answer else None, end_section=last_within)
    print_table(console, table)
    crossed = table.box is not None and any(p.latency_s <= budget_s for p in shown) and \
        any(p.latency_s > budget_s for p in shown)  # a borderless (narrow) table draws no section line
    console.print("  * within budget (mean latency); → the answer"
                  + (f"; the line marks the budget, {format_duration(budget_s)}" if crossed else ""))
