"""`lattts roofline`: the paper's Figure 3 view for one model on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import check_output_file, console, handle_errors, print_json
from lattts.cli.parsing import ranged


def register(app: typer.Typer) -> None:
    app.command("roofline")(roofline)


@handle_errors
def roofline(
    model: str = typer.Option("s1.1-32B", "--model", "-m", help="Model name or config.json path."),
    device: Optional[str] = typer.Option(None, "--device", help="Device table key or 'cpu'; default: chosen as `lattts predict` chooses (a detected GPU, else this CPU's calibration if the model fits it, else the H100 SXM)."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Calibrated device profile JSON."),
    context: int = ranged(1024, "--context", allowed=limits.count(0, limits.MAX_TOKENS),
                          help="Cached tokens per sequence (s); with --query at most the model's context."),
    query: int = ranged(1, "--query", allowed=limits.TOKENS,
                        help="New tokens per sequence per pass (1 = decode, gamma+1 = verify)."),
    max_batch: int = ranged(1024, "--max-batch", allowed=limits.count(1, limits.MAX_BATCH),
                            help="Largest batch (powers of two up to it); batches whose weights and KV cache exceed the device's memory are left out."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights/KV dtype; default: the profile's."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write the three-panel figure to this HTML file."),
) -> None:
    """Latency and throughput of one forward pass against batch size, the ridge point, and which op
    groups are memory- or compute-bound (the paper's Figure 3)."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.dtypes import bytes_per_value, canonical_dtype
    from lattts.errors import UserError
    from lattts.models.registry import resolve_model
    from lattts.plan import choose_device
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.batches import pass_memory_bytes, sweep_within_memory
    from lattts.units import format_bytes

    spec = resolve_model(model)
    if context + query > spec.max_position:
        raise UserError(f"--context {context} + --query {query} positions: {spec.name} holds {spec.max_position} "
                        f"(its max_position_embeddings); give at most {spec.max_position} in all")
    dtype = canonical_dtype(dtype) if dtype else None
    choice = choose_device(device, str(profile) if profile else None, dtype,
                           lambda d: float(pass_memory_bytes(spec, d, 1, query, context)))
    prof = choice.profile
    deploy = Deployment.on(prof, dtype)
    dtype = deploy.dtype
    sweep = sweep_within_memory(spec, deploy, max_batch, query, context)
    rows, left_out, usable, knee = sweep.rows, sweep.over_memory, sweep.usable_bytes, sweep.compute_bound_from
    if not rows:
        raise UserError(f"{spec.name} in {dtype} needs {format_bytes(sweep.memory_bytes[1])} (weights + KV of one "
                        f"sequence at s={context}), more than the {format_bytes(usable)} usable on {prof.name}; pick "
                        f"another --device, a smaller --dtype or --context")
    ridge = prof.ridge_flop_per_byte
    excluded = (f"B = {left_out[0]}..{left_out[-1]} left out: weights + KV need {format_bytes(sweep.memory_bytes[left_out[0]])} "
                f"or more, above the {format_bytes(usable)} usable" if left_out else None)
    if json_out:
        print_json({"model": spec.name, "device": {"name": prof.name, "source": prof.source, "reason": choice.reason},
                    "dtype": dtype, "ridge_flop_per_byte": ridge, "linear_compute_bound_from_batch": knee,
                    "usable_memory_bytes": usable, "batches_over_memory": left_out, "rows": rows})
    else:
        from rich.table import Table

        console.print(f"[bold]{spec.name}[/] on {prof.name} ({choice.reason}), {dtype}, q={query}, s={context}", highlight=False)
        console.print(f"  rates from {prof.source}", highlight=False)
        rows_at_ridge = ridge * bytes_per_value(dtype) / 2  # a weight of b bytes does 2 FLOP per row of the batch
        first = f"B={knee}" if knee is not None else f"none up to B={rows[-1]['batch']}"
        console.print(f"  ridge point {ridge:.0f} FLOP/byte: matmuls turn compute-bound at about "
                      f"{rows_at_ridge / query:.0f} sequences per pass (first compute-bound batch here: {first})",
                      highlight=False)
        t = Table()
        for col in ("B", "ms/pass", "tokens/s", "FLOP/byte", "bound", "linear", "attention", "lm_head", "memory"):
            t.add_column(col, justify="right")
        for r in rows:
            g = r["groups"]
            t.add_row(str(r["batch"]), f"{r['time_s'] * 1e3:.3g}", f"{r['tokens_per_s']:.4g}",
                      f"{r['intensity_flop_per_byte']:.3g}", r["bound"], g["linear"]["bound"],
                      g["attention"]["bound"], g["lm_head"]["bound"], format_bytes(r["memory_bytes"]))
        console.print(t)
        console.print(f"  memory: weights + KV cache of B sequences at s+q={context + query} positions, against "
                      f"{format_bytes(usable)} usable on {prof.name}" + (f"; {excluded}" if excluded else ""),
                      highlight=False)
    if html:
        from lattts.report.plots import roofline_figure, save_html

        save_html(roofline_figure(rows, f"{spec.name} on {prof.name}, q={query}, s={context}", ridge), html)
        if not json_out:
            console.print(f"  figure written to {html}")
