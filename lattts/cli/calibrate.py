"""`lattts calibrate`: time real forward passes on this device and fit a profile of it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from lattts.calibrate.shapes import CPU_SHAPES, GPU_SHAPES, default_dtype, default_shapes
from lattts import limits
from lattts.cli.common import check_output_file, err_console, handle_errors, torch_device
from lattts.cli.parsing import ranged


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


@handle_errors
def calibrate(
    gpu: Optional[int] = ranged(None, "--gpu", allowed=limits.GPU_INDEX, help="Calibrate CUDA GPU N (found through NVML)."),
    device: Optional[str] = typer.Option(None, "--device", help="'cpu' to calibrate this machine's CPU; with --from-csv, the device table key the timings were taken on (its datasheet bounds the fit and fills what the rows do not price)."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help=f"Shapes to time (repeat the flag); default on a CPU: {', '.join(CPU_SHAPES)}; on a GPU: {', '.join(GPU_SHAPES)}."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="fp32 (CPU default) or bf16/fp16 (GPU default bf16)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer points and repeats: about a minute on a small CPU."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the profile here instead of the per-user profile store."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Resume an interrupted calibration with the same arguments, or start over."),
    engine: Optional[str] = typer.Option(None, "--engine", help="Whose forward pass to time: lattts (default; the engine generate uses) or transformers; with --server, the engine expected there (llama.cpp, vllm, sglang)."),
    server: Optional[str] = typer.Option(None, "--server", help="Calibrate the model a serving engine serves at this URL (e.g. from `lattts serve`)."),
    from_csv: Optional[List[Path]] = typer.Option(None, "--from-csv", help="Fit timings files instead of timing (repeat the flag): lattts' format (batch, query_len, context_len, latency_s; optional shape, group, devices) or Vidur's per-op and all-reduce CSVs."),
    bootstrap: int = ranged(100, "--bootstrap", allowed=limits.count(0, limits.MAX_REFITS, "each refit is a whole fit"), help="With --from-csv: refits on resampled series behind each parameter's 95% interval."),
    keep_unidentified: bool = typer.Option(False, "--keep-unidentified", help="With --from-csv: write a fit whose rows do not pin every parameter, flagged, instead of refusing it."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write measured-against-fitted figures to this HTML file."),
) -> None:
    """Time forward passes over batch, query length and context, fit a device profile (bandwidths,
    FLOP/s, overheads) that predicts any model, and report its in-sample, held-out and cross-model error."""
    check_output_file(html)  # before any work: a bad --html path costs nothing
    from lattts.cli.calibrate_report import report, report_csv_fit

    if from_csv:
        from lattts.calibrate import from_csv as csv_fit

        request = csv_fit.request_for(list(from_csv), list(model or ()), device, dtype, bootstrap, keep_unidentified)
        fit = csv_fit.fit_files(request)
        profile = csv_fit.save(fit, request, out, "lattts calibrate --from-csv " + " ".join(p.name for p in from_csv))
        report_csv_fit(fit, profile, json_out, html)
        return
    if server:
        result = _server(server, engine, model, quick, resume, out)
    else:
        result = _sweep(_engine_request(gpu, device, model, dtype, quick, resume, engine or "lattts", out))
    if html:
        from lattts.report.plots import calibration_figure, save_html

        save_html(calibration_figure(result.data, result.profile), html)
    report(result, json_out, html)


def _engine_request(gpu, device, model, dtype, quick, resume, engine, out):
    from lattts.calibrate import run
    from lattts.dtypes import canonical_dtype
    from lattts.errors import UserError
    from lattts.models.registry import resolve_model

    dev = torch_device(gpu, device)
    if engine not in ("lattts", "transformers"):
        raise UserError(f"--engine {engine!r}: use lattts or transformers (or --server URL for a serving engine)")
    target = run.fingerprint_gpu(gpu) if dev != "cpu" else run.fingerprint_cpu()
    dtype = canonical_dtype(dtype) if dtype else default_dtype(target)
    shapes = tuple(resolve_model(m) for m in model) if model else tuple(default_shapes(target, dtype))
    if len({s.name for s in shapes}) != len(shapes):
        raise UserError("--model lists the same shape twice")
    return run.CalibrationRequest(target=target, shapes=shapes, dtype=dtype, quick=quick, resume=resume,
                                  engine=engine, out=out)


def _server(url, engine, model, quick, resume, out):
    from lattts.calibrate.server import calibrate_server
    from lattts.errors import UserError
    from lattts.serving.connect import connect, served_spec

    if model and len(model) > 1:
        raise UserError("--server calibrates the one model the server serves: give at most one --model")
    backend = connect(url, engine)
    spec = served_spec(backend, model[0] if model else None)
    with _progress(backend.name) as (on_point, on_start):
        return calibrate_server(backend, spec, quick, resume, out, (on_point, on_start))


def _sweep(request):
    from lattts.calibrate import run

    run.check_memory(request)
    with _progress(request.target.name) as (on_point, on_start):
        make_runner = run.runner_factory(request.engine, request.target.device, request.dtype)
        return run.calibrate(request, make_runner, on_point, on_start)


@contextmanager
def _progress(what: str):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    def cost(p) -> float:  # rough seconds of a point, for the time-left estimate
        return 0.02 + 1e-4 * p.rows * (1 + p.context / 2048)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn(), console=err_console, transient=True)
    state = {}

    def on_start(grid, shapes_, done):
        todo = [(s.name, p) for s in shapes_ for p in grid if (s.name, *p.key) not in done]
        state["cost"] = {k: cost(p) for k, p in todo}
        state["task"] = progress.add_task(f"timing {what}", total=sum(state["cost"].values()) or 1)
        if done:
            err_console.print(f"resuming: {len(done)} points already measured")

    def on_point(spec, point, seconds):
        progress.update(state["task"], advance=state["cost"].get((spec.name, point), 0.0),
                        description=f"{spec.name} B={point.batch} q={point.query} s={point.context}")

    with progress:
        yield on_point, on_start
