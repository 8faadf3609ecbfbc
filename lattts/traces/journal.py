"""The output of ``lattts measure``, kept resumable: a JSONL trace file that only ever grows by whole
batches (all samples of one problem at one budget, one write and an fsync each), plus a
``<file>.run.json`` beside it with the arguments that produced it.

Reading it back keeps the complete batches and drops the rest: a partial last line (a write cut
short) and the rows of any batch with fewer samples than asked for. So a rerun after an
interruption redoes exactly the missing batches and never duplicates a row. Every row carries the
run id (a hash of the arguments that shape the samples); a file from other arguments is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lattts.errors import UserError
from lattts.paths import write_atomic, write_json_atomic


@dataclass(frozen=True)
class Resumed:
    """What an existing output file already holds."""

    done: frozenset[tuple[str, int]]  # (problem_id, max_tokens) of complete batches
    rows: int  # rows kept
    dropped_rows: int  # rows of incomplete batches, removed from the file
    dropped_partial_line: bool  # a last line cut short, removed


def run_file(path: str | Path) -> Path:
    """Where the arguments of the run that wrote ``path`` are kept."""
    path = Path(path)
    return path.with_name(path.name + ".run.json")


def resume(path: str | Path, run_id: str, config: dict, samples: int) -> Resumed:
    """Check that ``path`` (if it exists) was written by this run's arguments and trim it to its
    complete batches of ``samples`` rows. UserError if it holds anything else."""
    path = Path(path)
    if not path.is_file():
        return Resumed(done=frozenset(), rows=0, dropped_rows=0, dropped_partial_line=False)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    partial = lines.pop() != ""  # text after the last newline: a write cut short
    batches: dict[tuple[str, int], list[tuple[str, int]]] = {}  # key -> [(line, sample_id)]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _row(line, f"{path}:{n}")
        if row.get("run_id") != run_id:
            raise UserError(_mismatch(path, row.get("run_id"), config))
        key = (str(row["problem_id"]), int(row["max_tokens"]))
        batches.setdefault(key, []).append((line, int(row["sample_id"])))
    wanted = sorted(range(samples))
    complete = {k: v for k, v in batches.items() if sorted(s for _, s in v) == wanted}
    kept = [line for v in complete.values() for line, _ in v]
    dropped = sum(len(v) for v in batches.values()) - len(kept)
    if dropped or partial:
        # keep the file's order; only whole batches remain, so appending can continue safely
        keep = {line for line in kept}
        write_atomic(path, "".join(line + "\n" for line in lines if line in keep))
    return Resumed(done=frozenset(complete), rows=len(kept), dropped_rows=dropped, dropped_partial_line=partial)


def start(path: str | Path, run_info: dict) -> None:
    """Record the run's arguments beside an output file that holds no rows yet; a file with rows
    keeps the record of the run that wrote them (``resume`` has checked it is this run)."""
    path = Path(path)
    empty = not path.is_file() or path.stat().st_size == 0
    if empty or not run_file(path).is_file():
        write_json_atomic(run_file(path), run_info)


def run_info(path: str | Path) -> dict:
    """The arguments recorded beside ``path`` (empty if there is no readable record)."""
    try:
        return json.loads(run_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def append_batch(path: str | Path, rows: list[dict]) -> None:
    """Append the rows of one batch in one write, then fsync, so the batch is on disk when this returns."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked; the rest follows
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str | Path) -> list[dict]:
    """The rows of an output file (complete lines only)."""
    text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def _row(line: str, where: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        row = None
    if not isinstance(row, dict) or not all(k in row for k in ("problem_id", "sample_id", "max_tokens")):
        raise UserError(f"{where}: not a row written by lattts measure; pass a different --out, or delete "
                        f"{where.rsplit(':', 1)[0]} to start over")
    return row


def _mismatch(path: Path, found: str | None, config: dict) -> str:
    """The message for a file written with other arguments, naming them when the run record says."""
    fix = f"pass a different --out, or delete {path} and {run_file(path).name} to start over"
    if found is None:
        return f"{path} was not written by lattts measure (rows have no run_id); {fix}"
    before = run_info(path).get("config", {})
    changed = [f"{k} {before.get(k)!r} there, {v!r} now" for k, v in config.items() if k in before and before[k] != v]
    detail = f" ({'; '.join(changed)})" if changed else ""
    return f"{path} was written by lattts measure with different arguments{detail}; {fix}"
