"""`lattts curves`: the accuracy curves lattts knows by name, fitted and measured."""

from __future__ import annotations

import typer

from lattts.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("curves")(curves)


@handle_errors
def curves(json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table.")) -> None:
    """List accuracy curves usable with `lattts predict --curve NAME`: model, kind, source, lengths, branch range."""
    from lattts.simulator.accuracy import BUILTIN_CURVES
    from lattts.traces.curve import EMBEDDED, embedded_curve

    rows = []
    for name, make in BUILTIN_CURVES.items():
        c = make()
        lo, hi = c.branch_range
        rows.append({"name": name, "model": c.model, "kind": c.kind, "source": c.source,
                     "lengths": list(c.lengths) if c.lengths else None,
                     "branches": {"min": lo, "max": hi}, "larger_branches": "extrapolated (the fitted model's; marked)"})
    for name in EMBEDDED:
        c = embedded_curve(name)
        lo, hi = c.branch_range
        rows.append({"name": name, "model": c.model, "kind": c.kind, "source": c.source,
                     "lengths": list(c.lengths) if c.lengths else None, "single_length_from_tokens": c.full_tokens,
                     "branches": {"min": lo, "max": hi}, "larger_branches": "not answered",
                     "problems": len(c.answers.problems)})
    if json_out:
        print_json({"curves": rows})
        return
    from rich.table import Table

    t = Table(title="accuracy curves (lattts predict --curve NAME, or --curve TRACES_FILE)", title_justify="left")
    for col in ("name", "model", "kind", "lengths L", "B measured or fitted", "larger B"):
        t.add_column(col)
    for r in rows:
        lengths = (", ".join(map(str, r["lengths"])) if r["lengths"] else
                   f"one (L >= {r['single_length_from_tokens']})" if r.get("single_length_from_tokens") else "one")
        b = r["branches"]
        t.add_row(r["name"], r["model"] or "not recorded", r["kind"], lengths, f"{b['min']}..{b['max']}",
                  r["larger_branches"].split(" (")[0])
    console.print(t)
    for r in rows:
        console.print(f"  {r['name']}: {r['source']}", highlight=False)
