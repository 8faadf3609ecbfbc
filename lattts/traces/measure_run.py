"""A whole ``lattts measure`` run: resume the trace file, load the engine, check that every batch
fits before the first sample, measure the missing batches (each appended as it completes), and
summarise the file per length L."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lattts.traces import journal
from lattts.traces.benchmark import Benchmark, BenchmarkProblem
from lattts.traces.measure import (ANSWER_SUFFIX, ANSWER_TOKENS, INSTRUCTION, MeasureConfig, check_fits, load_engine,
                                   measure_batch, prompt_ids, summarise_lengths)


@dataclass(frozen=True)
class MeasurePlan:
    """What a run will do: the batches (problem, L) still missing from the file, and what resuming found."""

    config: MeasureConfig
    benchmark: Benchmark
    problems: tuple[BenchmarkProblem, ...]
    lengths: tuple[int, ...]
    out: Path
    resumed: journal.Resumed
    todo: tuple[tuple[BenchmarkProblem, int], ...]

    @property
    def total(self) -> int:
        return len(self.problems) * len(self.lengths)


def plan_measure(config: MeasureConfig, bench: Benchmark, problems, lengths, out: Path) -> MeasurePlan:
    """Check ``out`` against this run's arguments, trim it to whole batches, and list what is missing."""
    resumed = journal.resume(out, config.run_id, config.to_json(), config.samples)
    todo = tuple((p, L) for p in problems for L in lengths if (p.id, L) not in resumed.done)
    return MeasurePlan(config, bench, tuple(problems), tuple(lengths), Path(out), resumed, todo)


def check_memory(plan: MeasurePlan) -> None:
    """Refuse, before lattts' engine loads anything, a run whose largest batch cannot fit this machine's
    memory: N samples of the longest prompt, L tokens and the answer forcing after them."""
    config = plan.config
    if config.server or not plan.todo:
        return
    from lattts.engine.memory import check_fits, engine_memory_bytes, live_workload, prompt_tokens_at_most

    prompt = max(prompt_tokens_at_most(f"{p.problem}\n\n{INSTRUCTION}") for p, _ in plan.todo)
    longest = max(L for _, L in plan.todo) + len(ANSWER_SUFFIX.encode("utf-8")) + ANSWER_TOKENS
    work = live_workload(config.model, config.draft, prompt)
    need = engine_memory_bytes(work, config.dtype, config.samples, config.draft_len, longest, config.device)
    check_fits(need, f"{work.target.name} in {config.dtype}, {config.samples} samples of up to {longest} tokens",
               "lower --samples or --lengths, or use a smaller model", config.device)


def run_batches(plan: MeasurePlan, on_batch: Callable[[BenchmarkProblem, int], None] | None = None,
                on_loaded: Callable[[object], None] | None = None) -> str:
    """Measure the missing batches, appending each as it completes; the weights' description.

    Call ``check_memory(plan)`` first (the CLI does, before its progress bar). ``on_loaded(engine)`` runs once the engine is loaded and every batch checked; ``on_batch(p, L)``
    after each batch is written."""
    from lattts import __version__

    engine = load_engine(plan.config)
    ids = {}
    for p, L in plan.todo:  # every check before the first sample, so a bad length fails fast
        ids.setdefault(p.id, prompt_ids(engine, p))
        check_fits(engine, plan.config, p, ids[p.id], L)
    journal.start(plan.out, {"run_id": plan.config.run_id, "config": plan.config.to_json(),
                             "benchmark": plan.benchmark.path, "weights": engine.weights, "lattts": __version__})
    if on_loaded:
        on_loaded(engine)
    for p, L in plan.todo:
        journal.append_batch(plan.out, measure_batch(engine, plan.config, p, ids[p.id], L))
        if on_batch:
            on_batch(p, L)
    return engine.weights


def measure_report(plan: MeasurePlan, weights: str | None, wall_s: float) -> dict:
    """The JSON of ``lattts measure``: what the file holds for these problems and lengths, per L."""
    selected = {p.id for p in plan.problems}
    rows = [r for r in journal.read_rows(plan.out) if r["max_tokens"] in plan.lengths and r["problem_id"] in selected]
    notes = ["accuracy: B = 1, the mean over problems of the share of correct samples; "
             "`lattts accuracy --traces OUT` gives majority votes",
             "latency: mean per batched call of N samples x L tokens; forcing: the extra call that forces "
             "an answer from samples without one"]
    resumed = plan.resumed
    if resumed.dropped_rows or resumed.dropped_partial_line:
        notes.append(f"resumed: dropped {resumed.dropped_rows} rows of incomplete batches"
                     + (" and a partial last line" if resumed.dropped_partial_line else "") + ", measured again")
    measured = len(plan.todo)
    return {
        "out": str(plan.out), "run_id": plan.config.run_id, "config": plan.config.to_json(),
        "benchmark": plan.benchmark.path, "weights": weights, "problems": len(plan.problems),
        "lengths": list(plan.lengths), "batches": {"measured": measured, "already_in_file": plan.total - measured},
        "rows": len(rows), "wall_s": wall_s,
        "per_length": [s.to_json() for s in summarise_lengths(rows)] if rows else [], "notes": notes,
    }
