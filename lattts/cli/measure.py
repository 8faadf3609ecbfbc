"""`lattts measure`: sample a benchmark with the live engine under budget forcing, grade the answers,
and append trace rows, resumably; then summarise accuracy and latency per budget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from lattts.cli.common import console, err_console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("measure")(measure)


@handle_errors
def measure(
    model: str = typer.Option(..., "--model", "-m", help="smollm2-135m (real weights), a GGUF file, a safetensors folder, or any model name/config.json (random weights)."),
    benchmark: Path = typer.Option(..., "--benchmark", "-b", help="JSONL with problem and answer per line (MATH-500, AIME); id from unique_id, id, or the row's position."),
    samples: int = typer.Option(..., "--samples", "-n", help="Samples per problem: the branches of one batched call."),
    budgets: str = typer.Option(..., "--budgets", "-L", help="Length budgets L in tokens, comma-separated; each sample reasons for exactly L tokens."),
    draft: Optional[str] = typer.Option(None, "--draft", "-d", help="Draft model, or self:N (the target's first N layers); rows then record accepted_per_round."),
    draft_len: int = typer.Option(0, "--draft-len", "-g", help="Draft tokens proposed per round (gamma); needs --draft."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first K problems of the benchmark."),
    out: Path = typer.Option(Path("traces.jsonl"), "--out", "-o", help="Trace file to append to; a rerun with the same arguments resumes it."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", help="Sampling temperature of the reasoning tokens (0 = greedy: all samples alike)."),
    seed: int = typer.Option(0, "--seed", help="Run seed; each problem and budget gets its own seed derived from it."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda:N."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16 or fp16 (use fp32 on CPU)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary object instead of a table."),
) -> None:
    """Measure accuracy(L) and latency live: N samples per problem at each budget L, graded with
    math-verify, appended to a trace file that `lattts accuracy`, `lattts acceptance` and
    `lattts predict` read."""
    from lattts.cli.generate import _check_device
    from lattts.errors import UserError
    from lattts.traces import journal
    from lattts.traces.benchmark import load_benchmark
    from lattts.traces.measure import MeasureConfig
    from lattts.units import parse_int_list

    if samples < 1:
        raise UserError(f"--samples {samples}: need at least one sample per problem")
    budget_list = sorted(set(parse_int_list(budgets, "--budgets")))
    if not budget_list:
        raise UserError("--budgets: give at least one length budget, e.g. 256,512")
    if draft_len and not draft:
        raise UserError(f"--draft-len {draft_len} needs a draft: pass --draft MODEL or --draft self:N")
    if draft and draft_len < 1:
        raise UserError(f"--draft {draft} needs --draft-len G >= 1 (draft tokens per round)")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: need at least one problem")
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: must be >= 0")
    _check_device(device)
    bench = load_benchmark(benchmark)
    problems = bench.problems[:limit] if limit else bench.problems
    config = MeasureConfig(model=model, benchmark_sha256=bench.sha256, samples=samples, temperature=temperature,
                           seed=seed, draft=draft, draft_len=draft_len, device=device, dtype=dtype)
    resumed = journal.resume(out, config.run_id, config.to_json(), samples)
    todo = [(p, L) for p in problems for L in budget_list if (p.id, L) not in resumed.done]
    start = time.perf_counter()
    if todo:
        weights = _run(config, bench, todo, len(problems) * len(budget_list), out)
    else:
        weights = journal.run_info(out).get("weights")  # nothing to measure: the model is not loaded
    selected = {p.id for p in problems}
    rows = [r for r in journal.read_rows(out) if r["max_tokens"] in budget_list and r["problem_id"] in selected]
    report = _report(config, bench, out, problems, budget_list, rows, resumed, len(todo), weights,
                     time.perf_counter() - start)
    if json_out:
        print_json(report)
    else:
        _print(report)


def _run(config, bench, todo, total: int, out: Path) -> str:
    """Measure the missing batches, appending each as it completes; returns the weights' description."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from lattts import __version__
    from lattts.traces import journal
    from lattts.traces.measure import check_fits, load_engine, measure_batch, prompt_ids

    engine = load_engine(config)
    ids = {}
    for p, L in todo:  # every check before the first sample, so a bad budget fails fast
        ids.setdefault(p.id, prompt_ids(engine, p))
        check_fits(engine, config, p, ids[p.id], L)
    journal.start(out, {"run_id": config.run_id, "config": config.to_json(), "benchmark": bench.path,
                        "weights": engine.loaded.weights, "lattts": __version__})
    if not engine.loaded.real_text:
        err_console.print(f"[yellow]{engine.loaded.weights}: answers are meaningless; latencies are real[/]")
    # progress in tokens per branch, so the time left weighs a long budget more than a short one
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[batches]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    done = total - len(todo)
    index = {pid: i for i, pid in enumerate(dict.fromkeys(p.id for p, _ in todo), 1)}
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("measuring", total=sum(L for _, L in todo), batches=f"{done}/{total} batches")
        for p, L in todo:
            progress.update(task, description=f"problem {index[p.id]}/{len(index)} L={L}")
            journal.append_batch(out, measure_batch(engine, config, p, ids[p.id], L))
            done += 1
            progress.update(task, advance=L, batches=f"{done}/{total} batches")
    return engine.loaded.weights


def _report(config, bench, out, problems, budgets, rows, resumed, measured: int, weights, wall_s: float) -> dict:
    from lattts.traces.measure import summarise

    notes = ["accuracy: B = 1, the mean over problems of the share of correct samples; "
             "`lattts accuracy --traces OUT` gives majority votes",
             "latency: mean per batched call of N samples x L tokens; forcing: the extra call that forces "
             "an answer from samples without one"]
    if resumed.dropped_rows or resumed.dropped_partial_line:
        notes.append(f"resumed: dropped {resumed.dropped_rows} rows of incomplete batches"
                     + (" and a partial last line" if resumed.dropped_partial_line else "") + ", measured again")
    return {
        "out": str(out), "run_id": config.run_id, "config": config.to_json(), "benchmark": bench.path,
        "weights": weights, "problems": len(problems), "budgets": budgets,
        "batches": {"measured": measured, "already_in_file": len(problems) * len(budgets) - measured},
        "rows": len(rows), "wall_s": wall_s,
        "per_budget": [s.to_json() for s in summarise(rows)] if rows else [], "notes": notes,
    }


def _print(report: dict) -> None:
    from rich.table import Table

    from lattts.units import format_duration

    b = report["batches"]
    console.print(f"[bold]lattts measure[/]: {report['out']} ({report['rows']} rows; {b['measured']} batches measured "
                  f"in {format_duration(report['wall_s'])}, {b['already_in_file']} already there)", highlight=False)
    with_draft = any(s["alpha"] is not None for s in report["per_budget"])
    t = Table(title=f"{report['problems']} problems x {report['config']['samples']} samples", title_justify="left")
    cols = ["L", "accuracy (B=1)", "answered", "within L", "latency / call", "forcing / call"]
    for col in cols + (["acceptance alpha"] if with_draft else []):
        t.add_column(col, justify="right")
    for s in report["per_budget"]:
        cells = [str(s["max_tokens"]), f"{s['accuracy']:.1%}", f"{s['answered']:.0%}", f"{s['finished']:.0%}",
                 format_duration(s["latency_s"]), format_duration(s["forcing_s"])]
        if with_draft:
            cells.append("-" if s["alpha"] is None else f"{s['alpha']:.3f}")
        t.add_row(*cells)
    console.print(t)
    for note in report["notes"]:
        console.print(f"  {note}", highlight=False)
