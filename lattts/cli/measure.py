"""`lattts measure`: sample a benchmark with the live engine under budget forcing, grade the answers,
and append trace rows, resumably; then summarise accuracy and latency per length L."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import console, err_console, handle_errors, print_json, reject_old_flag
from lattts.cli.parsing import ranged


def register(app: typer.Typer) -> None:
    app.command("measure")(measure)


@handle_errors
def measure(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="smollm2-135m (real weights), a GGUF file, a safetensors folder, or any model name/config.json (random weights); with --server, default the served model."),
    server: Optional[str] = typer.Option(None, "--server", help="Sample through a serving engine at this URL (llama.cpp, vLLM, SGLang) instead of lattts' engine."),
    benchmark: Path = typer.Option(..., "--benchmark", "-b", help="JSONL with problem and answer per line (MATH-500, AIME); id from unique_id, id, or the row's position."),
    samples: int = ranged(..., "--samples", "-n", allowed=limits.LIVE_BRANCHES, help="Samples per problem: the branches of one batched call."),
    lengths: Optional[str] = typer.Option(None, "--lengths", "-L", help=f"Lengths L in tokens, comma-separated (each {limits.TOKENS.text()}); each sample reasons for exactly L tokens."),
    old_budgets: Optional[str] = typer.Option(None, "--budgets", hidden=True),
    draft: Optional[str] = typer.Option(None, "--draft", "-d", help="Draft model, or self:N (the target's first N layers); rows then record accepted_per_round."),
    draft_len: Optional[int] = ranged(None, "--draft-len", "-g", allowed=limits.DRAFT_LEN, help="Draft tokens proposed per round (gamma); needs --draft; with --server, default the server's."),
    limit: Optional[int] = ranged(None, "--limit", allowed=limits.count(1, limits.MAX_PROBLEMS), help="Only the first K problems of the benchmark."),
    out: Path = typer.Option(Path("traces.jsonl"), "--out", "-o", help="Trace file to append to; a rerun with the same arguments resumes it."),
    temperature: float = ranged(0.7, "--temperature", "-t", allowed=limits.TEMPERATURE, help="Sampling temperature of the reasoning tokens (0 = greedy: all samples alike)."),
    seed: int = ranged(0, "--seed", allowed=limits.SEED, help="Run seed; each problem and budget gets its own seed derived from it."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda:N."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16 or fp16 (use fp32 on CPU)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary object instead of a table."),
) -> None:
    """Measure accuracy(L) and latency live: N samples per problem at each length L, graded with
    math-verify, appended to a trace file that `lattts accuracy`, `lattts acceptance` and
    `lattts predict` read."""
    from lattts.engine.device import check_device
    from lattts.errors import UserError
    from lattts.traces import journal
    from lattts.traces.benchmark import load_benchmark
    from lattts.traces.measure import MeasureConfig
    from lattts.traces.measure_run import check_memory, measure_report, plan_measure
    from lattts.units import parse_int_list

    reject_old_flag(old_budgets, "--budgets", "--lengths", "token counts are lengths; a budget is seconds")
    if lengths is None:
        raise UserError("--lengths is required: the lengths L in tokens to measure, e.g. --lengths 256,512")
    length_list = parse_int_list(lengths, "--lengths", limits.TOKENS)
    if server:
        model, draft, draft_len = _served(server, model, draft, draft_len)
    elif model is None:
        raise UserError("--model is required (or --server URL to sample through a serving engine)")
    draft_len = draft_len or 0
    if draft_len and not draft:
        raise UserError(f"--draft-len {draft_len} needs a draft: pass --draft MODEL or --draft self:N")
    if draft and draft_len < 1:
        raise UserError(f"--draft {draft} needs --draft-len G >= 1 (draft tokens per round)")
    check_device(device)
    bench = load_benchmark(benchmark)
    config = MeasureConfig(model=model, benchmark_sha256=bench.sha256, samples=samples, temperature=temperature,
                           seed=seed, draft=draft, draft_len=draft_len, device=device, dtype=dtype, server=server)
    plan = plan_measure(config, bench, bench.problems[:limit] if limit else bench.problems, length_list, out)
    check_memory(plan)
    start = time.perf_counter()
    # nothing to measure: the model is not loaded
    weights = _run(plan) if plan.todo else journal.run_info(out).get("weights")
    report = measure_report(plan, weights, time.perf_counter() - start)
    if json_out:
        print_json(report)
    else:
        _print(report)


def _served(url: str, model, draft, draft_len):
    """(model, draft label, draft length) of the server at ``url``; a named model must be the served one."""
    from lattts.serving.connect import connect, served_spec

    backend = connect(url)
    served_spec(backend, model)  # refuses a --model the server does not serve
    info = backend.info
    if draft_len is not None and draft_len != info.draft_len:
        from lattts.errors import UserError

        raise UserError(f"--draft-len {draft_len}: the server at {url} drafts {info.draft_len} tokens per round "
                        f"(a launch setting); drop --draft-len or launch a server with it")
    return model or info.model, (draft or info.draft) if info.draft_len else None, info.draft_len


def _run(plan) -> str:
    """Measure the missing batches with a progress bar in tokens per branch (a long L weighs more)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from lattts.traces.measure_run import run_batches

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[batches]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    index = {pid: i for i, pid in enumerate(dict.fromkeys(p.id for p, _ in plan.todo), 1)}
    done = [plan.total - len(plan.todo)]
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("measuring", total=sum(L for _, L in plan.todo),
                                 batches=f"{done[0]}/{plan.total} batches")

        def loaded(engine) -> None:
            if not engine.real_text:
                err_console.print(f"[yellow]{engine.weights}: answers are meaningless; latencies are real[/]")

        def batch(p, L) -> None:
            done[0] += 1
            progress.update(task, advance=L, batches=f"{done[0]}/{plan.total} batches",
                            description=f"problem {index[p.id]}/{len(index)} L={L}")

        return run_batches(plan, on_batch=batch, on_loaded=loaded)


def _print(report: dict) -> None:
    from rich.table import Table

    from lattts.units import format_duration

    b = report["batches"]
    console.print(f"[bold]lattts measure[/]: {report['out']} ({report['rows']} rows; {b['measured']} batches measured "
                  f"in {format_duration(report['wall_s'])}, {b['already_in_file']} already there)", highlight=False)
    with_draft = any(s["alpha"] is not None for s in report["per_length"])
    t = Table(title=f"{report['problems']} problems x {report['config']['samples']} samples", title_justify="left")
    cols = ["L", "accuracy (B=1)", "answered", "within L", "latency / call", "forcing / call"]
    for col in cols + (["acceptance alpha"] if with_draft else []):
        t.add_column(col, justify="right")
    for s in report["per_length"]:
        cells = [str(s["max_tokens"]), f"{s['accuracy']:.1%}", f"{s['answered']:.0%}", f"{s['finished']:.0%}",
                 format_duration(s["latency_s"]), format_duration(s["forcing_s"])]
        if with_draft:
            cells.append("-" if s["alpha"] is None else f"{s['alpha']:.3f}")
        t.add_row(*cells)
    console.print(t)
    for note in report["notes"]:
        console.print(f"  {note}", highlight=False)
