"""`lattts traces convert`: trace files of any supported format to the lattts trace format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts.cli.common import console, handle_errors, print_json
from lattts import limits
from lattts.units import parse_int_list

traces_app = typer.Typer(no_args_is_help=True, help="Trace files: convert raw evaluation outputs to lattts traces.")


def register(app: typer.Typer) -> None:
    traces_app.command("convert")(convert)
    app.add_typer(traces_app, name="traces")


@handle_errors
def convert(
    source: Path = typer.Argument(..., help="Trace file in any format `lattts accuracy --traces` reads."),
    out: Path = typer.Argument(..., help="Where to write lattts traces: .parquet for Parquet, else JSONL."),
    truncate_at: Optional[str] = typer.Option(None, "--truncate",
                                              help=f"Also cut each sample at these lengths L (each {limits.TOKENS.text()}; needs token counts): "
                                                   "one copy of the rows per L, a lower bound of budget forcing."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
) -> None:
    """Convert SOURCE to the lattts trace format (one row per sample; the response text is dropped)."""
    from lattts.traces.format import write_traces
    from lattts.traces.readers import load_traces
    from lattts.traces.truncate import truncate

    lengths = parse_int_list(truncate_at, "--truncate", limits.TOKENS) if truncate_at else None
    data = load_traces(source)
    if lengths:
        data = truncate(data, lengths)
    write_traces(data.rows, out)
    summary = {"source": data.describe(), "out": str(out), "rows": len(data.rows),
               "problems": len({r.problem_id for r in data.rows}),
               "lengths": list(data.lengths) if data.lengths else None}
    if json_out:
        print_json(summary)
        return
    console.print(f"wrote {summary['rows']} rows ({summary['problems']} problems) to {out} from {summary['source']}",
                  highlight=False)
