"""`lattts calibrate`: time real forward passes on this device and fit a profile of it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lattts.calibrate.shapes import CPU_SHAPES, GPU_SHAPES, default_dtype, default_shapes
from lattts.cli.common import console, err_console, handle_errors, print_json, torch_device


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


@handle_errors
def calibrate(
    gpu: Optional[int] = typer.Option(None, "--gpu", help="Calibrate CUDA GPU N (found through NVML)."),
    device: Optional[str] = typer.Option(None, "--device", help="'cpu' to calibrate this machine's CPU."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help=f"Shapes to time (repeat the flag); default on a CPU: {', '.join(CPU_SHAPES)}; on a GPU: {', '.join(GPU_SHAPES)}."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="fp32 (CPU default) or bf16/fp16 (GPU default bf16)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer points and repeats: about a minute on a small CPU."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the profile here instead of the per-user profile store."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Resume an interrupted calibration with the same arguments, or start over."),
    engine: str = typer.Option("lattts", "--engine", help="Whose forward pass to time: lattts (the engine generate uses) or transformers."),
    from_csv: Optional[Path] = typer.Option(None, "--from-csv", help="Fit from your own timings (columns batch, query_len, context_len, latency_s) of one --model."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write measured-against-fitted figures to this HTML file."),
) -> None:
    """Time forward passes over batch, query length and context, fit a device profile (bandwidths,
    FLOP/s, overheads) that predicts any model, and report its in-sample, held-out and cross-model error."""
    from lattts.calibrate import run
    from lattts.dtypes import canonical_dtype
    from lattts.errors import UserError
    from lattts.models.registry import resolve_model

    dev = torch_device(gpu, device)
    if engine not in ("lattts", "transformers"):
        raise UserError(f"--engine {engine!r}: use lattts or transformers")
    target = run.fingerprint_gpu(gpu) if dev != "cpu" else run.fingerprint_cpu()
    dtype = canonical_dtype(dtype) if dtype else default_dtype(target)
    shapes = tuple(resolve_model(m) for m in model) if model else tuple(default_shapes(target, dtype))
    if len({s.name for s in shapes}) != len(shapes):
        raise UserError("--model lists the same shape twice")
    request = run.CalibrationRequest(target=target, shapes=shapes, dtype=dtype, quick=quick, resume=resume,
                                     engine=engine, out=out)
    if from_csv is not None:
        if len(shapes) != 1 or not model:
            raise UserError("--from-csv needs exactly one --model: the shape the timings were taken on")
        result = run.calibrate_from_csv(from_csv, request)
    else:
        result = _sweep(request)
    if html:
        from lattts.report.plots import calibration_figure, save_html

        save_html(calibration_figure(result.data, result.profile), html)
    _report(result, json_out, html)


def _sweep(request):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from lattts.calibrate import run

    def cost(p) -> float:  # rough seconds of a point, for the time-left estimate
        return 0.02 + 1e-4 * p.rows * (1 + p.context / 2048)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn(), console=err_console, transient=True)
    state = {}

    def on_start(grid, shapes_, done):
        todo = [(s.name, p) for s in shapes_ for p in grid if (s.name, *p.key) not in done]
        state["cost"] = {k: cost(p) for k, p in todo}
        state["task"] = progress.add_task(f"timing {request.target.name}", total=sum(state["cost"].values()) or 1)
        if done:
            err_console.print(f"resuming: {len(done)} points already measured")

    def on_point(spec, point, seconds):
        progress.update(state["task"], advance=state["cost"].get((spec.name, point), 0.0),
                        description=f"{spec.name} B={point.batch} q={point.query} s={point.context}")

    with progress:
        make_runner = run.runner_factory(request.engine, request.target.device, request.dtype)
        return run.calibrate(request, make_runner, on_point, on_start)


def _report(result, json_out: bool, html: Path | None) -> None:
    from lattts.calibrate.fit import PARAMETERS

    p = result.profile
    params = {name: {"value": getattr(p, name), "unit": unit} for name, *_, unit in PARAMETERS}
    if json_out:
        print_json({
            "profile": str(result.profile_file), "measurements": str(result.measurements_file),
            "device": p.name, "device_key": p.device_key, "dtype": p.dtype,
            "heldout_error": result.errors["heldout"], "in_sample_error": result.errors["in_sample"],
            "cross_model_error": result.errors.get("cross_model"), "parameters": params,
            "drift": p.provenance.get("drift"), "machine": p.provenance.get("machine"), "sweep": result.sweep,
            "html": str(html) if html else None,
        })
        return
    from rich.table import Table

    from lattts.units import format_rate

    console.print(f"[bold]profile[/] of {p.name} ({p.dtype}) written to {result.profile_file}", highlight=False)
    console.print(f"  measurements: {result.measurements_file}", highlight=False)
    machine = p.provenance.get("machine") or {}
    t = Table(title="fitted parameters, beside what this machine streams and computes", title_justify="left")
    for col in ("parameter", "fitted", "machine (measured now)"):
        t.add_column(col, justify="right" if col != "parameter" else "left")
    for name, entry in params.items():
        value, unit = entry["value"], entry["unit"]
        text = (format_rate(value, "B") if unit == "bytes/s" else format_rate(value, "FLOP") if unit == "FLOP/s"
                else f"{value * 1e3:.3g} ms" if unit == "s" else f"{value:.3g}")
        ref = ""
        if machine and unit == "bytes/s":
            ref = f"read {format_rate(machine['read_bytes_per_s'], 'B')}"
        elif machine and unit == "FLOP/s":
            ref = f"matmul {format_rate(machine['matmul_flops_per_s'], 'FLOP')}"
        t.add_row(name, text, ref)
    if p.sample_call_s or p.sample_s_per_logit:
        t.add_row("sample_call_s", f"{p.sample_call_s * 1e3:.3g} ms", "engine sampling, outside passes")
        t.add_row("sample_s_per_logit", f"{p.sample_s_per_logit * 1e9:.3g} ns", "")
    console.print(t)
    e = Table(title="how well it predicts forward-pass time (|predicted/measured - 1|)", title_justify="left")
    for col in ("check", "median", "p90", "max", "points"):
        e.add_column(col, justify="right" if col != "check" else "left")
    labels = {"in_sample": "in-sample", "heldout": "held-out (5-fold)", "cross_model": "cross-model (leave one shape out)"}
    for key, label in labels.items():
        s = result.errors.get(key)
        if s:
            e.add_row(label, f"{s['median']:.1%}", f"{s['p90']:.1%}", f"{s['max']:.1%}", str(s["points"]))
    console.print(e)
    drift = p.provenance.get("drift") or {}
    if drift.get("paired"):
        console.print(f"  device drift during the sweep: anchor pass {drift['anchor_min_s'] * 1e3:.1f}-"
                      f"{drift['anchor_max_s'] * 1e3:.1f} ms (divided out by pairing)")
    if html:
        console.print(f"  figures written to {html}")
