"""`lattts acceptance`: a measured speculative-decoding acceptance file, summarised (and other tools' logs converted)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import console, handle_errors, print_json
from lattts.cli.parsing import ranged


def register(app: typer.Typer) -> None:
    app.command("acceptance")(acceptance)


@handle_errors
def acceptance(
    file: Path = typer.Argument(..., help="JSONL rows with draft_len and accepted_per_round; per-position logs (acc_len per "
                                          "row, or under acc_<proposer>); a JSON object with draft_len and "
                                          "accepted_histogram; or vLLM's /metrics (one scrape, or before and after)."),
    proposer: Optional[str] = typer.Option(None, "--proposer", help="Per-position logs: which proposer (e.g. eagle for acc_eagle)."),
    logged_draft_len: Optional[int] = ranged(None, "--logged-draft-len", allowed=limits.count(1, limits.MAX_DRAFT_LEN), help="Per-position logs: the draft length they were logged with; default: the largest entry - 1."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write what `predict --acceptance` reads: one proposer's per-position rows, or vLLM counters as a histogram."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Summarise measured acceptance: tokens per round and its basis at each draft length, the histogram,
    how acceptance varies between branches. `lattts predict --acceptance FILE` uses the same file."""
    from lattts.traces.acceptance import read_acceptance, write_acceptance

    m = read_acceptance(file, proposer, logged_draft_len)
    summary = m.to_json()
    if out:
        summary["written"] = str(write_acceptance(m, file, out, proposer))
    if json_out:
        print_json(summary)
        return
    _print(summary)


def _print(out: dict) -> None:
    from rich.table import Table

    console.print(f"[bold]lattts acceptance[/]: {out['source']}", highlight=False)
    console.print(f"  at draft length {out['draft_len']}: {out['mean_accepted']:.2f} draft tokens accepted per round, "
                  f"{out['tokens_per_round']:.2f} tokens per round with the target's own; pooled alpha "
                  f"{out['alpha']:.3f} = accepted / (accepted + rejections) over all rounds (weighted by rounds: "
                  f"position 1, which every round reaches, counts most; not the mean of the rates below)", highlight=False)
    t = Table(title=f"rounds by draft tokens accepted (draft length {out['draft_len']})", title_justify="left")
    for col in ("accepted", "rounds", "share", "P(accept this position | previous accepted)"):
        t.add_column(col, justify="right")
    for a, n in enumerate(out["histogram"]):
        cond = f"{out['conditional_acceptance'][a - 1]:.3f}" if a >= 1 and a <= len(out["conditional_acceptance"]) else "-"
        t.add_row(str(a), str(n), f"{n / out['rounds']:.1%}", cond)
    console.print(t)
    g = Table(title="tokens per round by draft length", title_justify="left")
    for col in ("γ", "tokens/round", "basis"):
        g.add_column(col, justify="right" if col != "basis" else "left")
    for row in out["per_draft_len"]:
        g.add_row(str(row["draft_len"]), f"{row['tokens_per_round']:.3f}", row["basis"])
    console.print(g)
    v = out["variation"]
    console.print(f"  variation  {v['source']}" if v else "  variation  none recorded (no ordered rounds of two or more "
                  "branches): renewal rounds, every round an independent draw", highlight=False)
    if out.get("written"):
        console.print(f"  written    {out['written']} (pass it to predict --acceptance)", highlight=False)
