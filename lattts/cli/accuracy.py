"""`lattts accuracy`: majority-vote accuracy against branches B and length budget L, from traces."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import check_output_file, console, handle_errors, print_json, reject_old_flag
from lattts.cli.parsing import ranged
from lattts.errors import UserError
from lattts.units import parse_int_list

CONFIDENCE = 0.95


def register(app: typer.Typer) -> None:
    app.command("accuracy")(accuracy)


@handle_errors
def accuracy(
    traces: Path = typer.Option(..., "--traces", "-t",
                                help="Trace file: lattts rows (JSONL or Parquet) or Qwen2.5-Math evaluation output (JSONL)."),
    branches: str = typer.Option("1,2,4,8,16,32,64", "--branches",
                                 help=f"Branch counts B for the majority vote (each {limits.BRANCHES.text()})."),
    lengths: Optional[str] = typer.Option(None, "--lengths",
                                          help=f"Length budgets L to report (each {limits.TOKENS.text()}); default: the "
                                               f"measured ones. A single-budget file with token counts is truncated at "
                                               f"each L (a lower bound)."),
    old_budgets: Optional[str] = typer.Option(None, "--budgets", hidden=True),
    resamples: int = ranged(1000, "--resamples", allowed=limits.count(1, limits.MAX_RESAMPLES, "ample for a 95% interval"),
                            help="Bootstrap resamples of the problems for the 95% interval."),
    seed: int = ranged(0, "--seed", allowed=limits.SEED, help="Seed of the bootstrap."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write accuracy against B and against L to this HTML file."),
) -> None:
    """Accuracy of a majority vote over B samples at each length budget L, measured from TRACES, with a
    bootstrap 95% interval over problems and pass@k beside it."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.traces.curve import curve_points, estimate
    from lattts.traces.groups import group_answers
    from lattts.traces.readers import load_traces
    from lattts.traces.truncate import truncate

    reject_old_flag(old_budgets, "--budgets", "--lengths", "token counts are lengths; a budget is seconds")
    b_list = parse_int_list(branches, "--branches", limits.BRANCHES)
    L_list = parse_int_list(lengths, "--lengths", limits.TOKENS) if lengths else None
    data = load_traces(traces)
    truncated = False
    if L_list and (data.lengths is None or len(data.lengths) == 1) and data.has_tokens:
        data, truncated = truncate(data, L_list), True
    elif L_list and data.lengths is None:
        raise UserError(f"--lengths: {traces} is a single-budget file without token counts, so it has no accuracy "
                        f"at other lengths; drop --lengths")
    answers = group_answers(data)
    est = estimate(answers, b_list)
    points = curve_points(est, L_list, CONFIDENCE, resamples, seed)
    out = {
        "traces": str(traces), "format": data.format, "source": data.describe(),
        "problems": len(answers.problems),
        "samples_per_problem": {"min": answers.min_samples, "max": answers.max_samples},
        "lengths": list(answers.lengths) if answers.lengths else None,
        "truncated": truncated,
        "tokens": {"longest": data.longest_tokens, "approximate": data.tokens_approximate},
        "confidence": CONFIDENCE, "resamples": resamples, "seed": seed,
        "curve": [p.to_json() for p in points],
        "notes": _notes(points, answers, data.note),
    }
    if html:
        from lattts.report.plots import accuracy_figure, save_html

        save_html(accuracy_figure(points, f"majority-vote accuracy: {Path(str(traces)).name}"), html)
        out["html"] = str(html)
    if json_out:
        print_json(out)
        return
    _print_table(out, points)


def _notes(points, answers, derivation: str) -> list[str]:
    notes = ["accuracy: mean over problems of the exact probability that the plurality answer of B samples drawn "
             "without replacement is correct (ties split; samples without an answer cast no vote)",
             "pass@k: probability that any of B samples is correct, the upper bound of any vote"]
    if any(p.extrapolated for p in points):
        notes.append(f"extrapolated: B above a problem's samples (fewest {answers.min_samples}) is drawn with "
                     f"replacement from its answers; not a measurement")
    if any(p.interpolated for p in points):
        notes.append("interpolated: L between measured lengths, linear in log2(L)")
    if any(not p.measured for p in points):
        notes.append(f"outside: L outside the measured lengths {list(answers.lengths)}; no value")
    if derivation:
        notes.append(derivation)
    return notes


def _print_table(out: dict, points) -> None:
    from rich.table import Table

    console.print(f"[bold]lattts accuracy[/]: {out['source']}", highlight=False)
    lo, hi = out["samples_per_problem"]["min"], out["samples_per_problem"]["max"]
    samples = f"{lo}" if lo == hi else f"{lo}-{hi}"
    lengths = f"lengths {out['lengths']}" if out["lengths"] else "one budget"
    console.print(f"  {out['problems']} problems, {samples} sample{'s' if hi > 1 else ''} each, {lengths}", highlight=False)
    table = Table(title=f"majority vote, {CONFIDENCE:.0%} bootstrap interval over problems", title_justify="left")
    for col in ("L", "B", "accuracy", f"{CONFIDENCE:.0%} CI", "pass@k", "note"):
        table.add_column(col, justify="left" if col == "note" else "right")
    for p in points:
        note = ", ".join(n for n, on in (("extrapolated", p.extrapolated), ("interpolated", p.interpolated),
                                         ("outside measured lengths", not p.measured)) if on)
        if p.measured:
            table.add_row(str(p.max_tokens or "-"), str(p.branches), f"{p.accuracy:.1%}",
                          f"{p.ci_low:.1%} - {p.ci_high:.1%}", f"{p.pass_at_k:.1%}", note,
                          style="dim" if p.extrapolated else None)
        else:
            table.add_row(str(p.max_tokens), str(p.branches), "-", "-", "-", note)
    console.print(table)
    for note in out["notes"]:
        console.print(f"  {note}", highlight=False)
    if out.get("html"):
        console.print(f"  chart written to {out['html']}")
