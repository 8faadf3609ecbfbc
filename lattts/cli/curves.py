"""`lattts curves`: the accuracy curves lattts knows by name, fitted and measured."""

from __future__ import annotations

import typer

from lattts.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("curves")(curves)


@handle_errors
def curves(json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table.")) -> None:
    """List accuracy curves usable with `lattts predict --curve NAME`: kind, source, lengths, branch range."""
    from lattts.simulator.accuracy import BUILTIN_CURVES
    from lattts.traces.curve import EMBEDDED, embedded_curve

    rows = []
    for name, make in BUILTIN_CURVES.items():
        c = make()
        rows.append({"name": name, "kind": c.kind, "source": c.source,
                     "lengths": list(c.lengths) if c.lengths else None,
                     "branches": {"min": 1, "max": None}})  # a fitted model answers any B
    for name in EMBEDDED:
        c = embedded_curve(name)
        rows.append({"name": name, "kind": c.kind, "source": c.source,
                     "lengths": list(c.lengths) if c.lengths else None, "single_length_from_tokens": c.full_tokens,
                     "branches": {"min": 1, "max": c.max_branches}, "problems": len(c.answers.problems)})
    if json_out:
        print_json({"curves": rows})
        return
    from rich.table import Table

    t = Table(title="accuracy curves (lattts predict --curve NAME, or --curve TRACES_FILE)", title_justify="left")
    for col in ("name", "kind", "lengths L", "B"):
        t.add_column(col)
    for r in rows:
        lengths = (", ".join(map(str, r["lengths"])) if r["lengths"] else
                   f"one (L >= {r['single_length_from_tokens']})" if r.get("single_length_from_tokens") else "one")
        top = r["branches"]["max"]
        t.add_row(r["name"], r["kind"], lengths, f"1..{top}" if top else "any")
    console.print(t)
    for r in rows:
        console.print(f"  {r['name']}: {r['source']}", highlight=False)
