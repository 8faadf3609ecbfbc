"""`lattts acceptance`: a measured speculative-decoding acceptance file, summarised."""

from __future__ import annotations

from pathlib import Path

import typer

from lattts.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("acceptance")(acceptance)


@handle_errors
def acceptance(
    file: Path = typer.Argument(..., help="JSONL rows with draft_len and accepted_per_round, or a JSON object with "
                                          "draft_len and accepted_histogram (also under 'acceptance')."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Summarise measured acceptance: alpha (accepted / (accepted + rejections)), tokens per round, histogram.
    `lattts predict --acceptance FILE` uses the same file."""
    from lattts.traces.acceptance import read_acceptance

    m = read_acceptance(file)
    out = m.to_json()
    if json_out:
        print_json(out)
        return
    from rich.table import Table

    console.print(f"[bold]lattts acceptance[/]: {out['source']}", highlight=False)
    console.print(f"  alpha {out['alpha']:.3f} (mean acceptance of draft positions 1..{out['draft_len']}), "
                  f"{out['mean_accepted']:.2f} draft tokens accepted per round, "
                  f"{out['tokens_per_round']:.2f} tokens per round with the target's own", highlight=False)
    t = Table(title="rounds by draft tokens accepted", title_justify="left")
    for col in ("accepted", "rounds", "share", "P(accept this position | previous accepted)"):
        t.add_column(col, justify="right")
    for a, n in enumerate(out["histogram"]):
        cond = f"{out['conditional_acceptance'][a - 1]:.3f}" if a >= 1 else "-"
        t.add_row(str(a), str(n), f"{n / out['rounds']:.1%}", cond)
    console.print(t)
