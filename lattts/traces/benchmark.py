"""Benchmark problems from JSONL in the MATH-500 / AIME format: one object per line with ``problem``
and ``answer``. The problem's id is its ``unique_id`` (MATH-500), else its ``id`` (AIME), else
its position among the file's rows (0-based)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lattts.errors import UserError

ID_FIELDS = ("unique_id", "id")


@dataclass(frozen=True)
class BenchmarkProblem:
    """One benchmark problem with its reference answer (LaTeX, as the file gives it)."""

    id: str
    problem: str
    answer: str
    where: str  # "file:line", for messages


@dataclass(frozen=True)
class Benchmark:
    problems: tuple[BenchmarkProblem, ...]
    path: str
    sha256: str  # of the file's bytes: what a measurement's identity keys on


def load_benchmark(path: str | Path) -> Benchmark:
    """Every problem in ``path``, checked: UserError names the line of a row that is not JSON, lacks
    ``problem`` or ``answer``, or repeats an id."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"benchmark file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; a benchmark is JSONL with problem and answer on each line") from None
    problems: list[BenchmarkProblem] = []
    seen: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        problem = _problem(line, f"{path}:{n}", len(problems))
        if problem.id in seen:
            raise UserError(f"{problem.where}: problem id {problem.id!r} repeats {seen[problem.id]}; ids must be unique")
        seen[problem.id] = problem.where
        problems.append(problem)
    if not problems:
        raise UserError(f"{path}: no problems (empty file)")
    return Benchmark(problems=tuple(problems), path=str(path), sha256=hashlib.sha256(data).hexdigest())


def _problem(line: str, where: str, index: int) -> BenchmarkProblem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc.msg}); a benchmark is JSONL, one problem per line") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with problem and answer, got {type(row).__name__}")
    for key in ("problem", "answer"):
        if key not in row:
            raise UserError(f"{where}: missing field {key!r} (a benchmark row needs problem and answer)")
    text, answer = row["problem"], row["answer"]
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: field 'problem' must be non-empty text, got {text!r}")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)  # AIME answers are integers in some copies
    if not isinstance(answer, str) or not answer.strip():
        raise UserError(f"{where}: field 'answer' must be a non-empty string or number, got {answer!r}")
    ident = next((row[k] for k in ID_FIELDS if k in row), index)
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or ident == "":
        raise UserError(f"{where}: problem id {ident!r} must be a non-empty string or an integer")
    return BenchmarkProblem(id=str(ident), problem=text, answer=answer.strip(), where=where)
