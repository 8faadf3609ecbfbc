"""`lattts roofline`: the paper's Figure 3 view for one model on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts.cli.common import check_output_file, console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("roofline")(roofline)


@handle_errors
def roofline(
    model: str = typer.Option("s1.1-32B", "--model", "-m", help="Model name or config.json path."),
    device: Optional[str] = typer.Option(None, "--device", help="Device table key or 'cpu'; default: detected."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Calibrated device profile JSON."),
    context: int = typer.Option(1024, "--context", help="Cached tokens per sequence (s)."),
    query: int = typer.Option(1, "--query", help="New tokens per sequence per pass (1 = decode, gamma+1 = verify)."),
    max_batch: int = typer.Option(1024, "--max-batch", help="Largest batch (powers of two up to it)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights/KV dtype; default: the profile's."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write the three-panel figure to this HTML file."),
) -> None:
    """Latency and throughput of one forward pass against batch size, the ridge point, and which op
    groups are memory- or compute-bound (the paper's Figure 3)."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.dtypes import bytes_per_value, canonical_dtype
    from lattts.errors import UserError
    from lattts.hardware.choose import choose_profile
    from lattts.models.registry import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import batch_sweep

    if context < 0 or query < 1 or max_batch < 1:
        raise UserError("--context must be >= 0, --query and --max-batch >= 1")
    spec = resolve_model(model)
    dtype = canonical_dtype(dtype) if dtype else None
    choice = choose_profile(device, str(profile) if profile else None, dtype)
    prof = choice.profile
    deploy = Deployment.on(prof, dtype)
    dtype = deploy.dtype
    batches = [2 ** i for i in range(0, max_batch.bit_length()) if 2 ** i <= max_batch]
    rows = [r.to_json() for r in batch_sweep(spec, deploy, batches, query, context)]
    ridge = prof.ridge_flop_per_byte
    knee = next((r["batch"] for r in rows if r["groups"]["linear"]["bound"] == "compute"), None)
    if json_out:
        print_json({"model": spec.name, "device": {"name": prof.name, "source": prof.source, "reason": choice.reason},
                    "dtype": dtype, "ridge_flop_per_byte": ridge, "linear_compute_bound_from_batch": knee, "rows": rows})
    else:
        from rich.table import Table

        console.print(f"[bold]{spec.name}[/] on {prof.name} ({choice.reason}), {dtype}, q={query}, s={context}", highlight=False)
        console.print(f"  rates from {prof.source}", highlight=False)
        rows_at_ridge = ridge * bytes_per_value(dtype) / 2  # a weight of b bytes does 2 FLOP per row of the batch
        console.print(f"  ridge point {ridge:.0f} FLOP/byte: matmuls turn compute-bound at about "
                      f"{rows_at_ridge / query:.0f} sequences per pass (first compute-bound batch here: {knee})")
        t = Table()
        for col in ("B", "ms/pass", "tokens/s", "FLOP/byte", "bound", "linear", "attention", "lm_head"):
            t.add_column(col, justify="right")
        for r in rows:
            g = r["groups"]
            t.add_row(str(r["batch"]), f"{r['time_s'] * 1e3:.3g}", f"{r['tokens_per_s']:.4g}",
                      f"{r['intensity_flop_per_byte']:.3g}", r["bound"], g["linear"]["bound"],
                      g["attention"]["bound"], g["lm_head"]["bound"])
        console.print(t)
    if html:
        from lattts.report.plots import roofline_figure, save_html

        save_html(roofline_figure(rows, f"{spec.name} on {prof.name}, q={query}, s={context}", ridge), html)
        if not json_out:
            console.print(f"  figure written to {html}")
