"""The lattts trace format: one row per sampled answer, validated, in JSONL or Parquet.

Fields of a row (JSON types):

- ``problem_id`` (string or integer, required): which problem; integers are read as strings.
- ``sample_id`` (string or integer, required): which sample of that problem (unique per problem
  and budget).
- ``answer`` (string or null, required): the extracted, normalised answer; null when no answer
  was extracted (the sample then casts no vote).
- ``correct`` (true/false, required): whether ``answer`` was graded correct (false when null).
- ``max_tokens`` (integer >= 1, optional): the length budget L the sample was generated under.
  Either every row has it (a multi-budget file) or none does (a single-budget file).
- ``tokens`` (integer >= 0, optional): how many tokens the sample generated.
- ``finished`` (true/false, optional): whether the sample reached an answer within its budget.
- ``tokens_approximate`` (true/false, optional): ``tokens`` is an estimate, not a tokenizer count.

Other fields are ignored, so a file can carry the response text or anything else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lattts.errors import UserError
from lattts.paths import write_atomic

REQUIRED = ("problem_id", "sample_id", "answer", "correct")
OPTIONAL = ("max_tokens", "tokens", "finished", "tokens_approximate")


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One sampled answer to one problem."""

    problem_id: str
    sample_id: str
    answer: str | None
    correct: bool
    max_tokens: int | None = None
    tokens: int | None = None
    finished: bool | None = None
    tokens_approximate: bool = False
    where: str = field(default="", compare=False)  # "file:line", for messages

    def to_json(self) -> dict:
        out: dict[str, Any] = {"problem_id": self.problem_id, "sample_id": self.sample_id,
                               "answer": self.answer, "correct": self.correct}
        for key in ("max_tokens", "tokens", "finished"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.tokens_approximate:
            out["tokens_approximate"] = True
        return out


@dataclass(frozen=True)
class Traces:
    """The rows of one trace file, with where they came from."""

    rows: tuple[TraceRow, ...]
    path: str
    format: str  # 'lattts' or the raw format it was read from, e.g. 'qwen-eval'
    note: str = ""  # how rows were derived, e.g. truncation

    @property
    def lengths(self) -> tuple[int, ...] | None:
        """The length budgets L measured, ascending; None for a single-budget file (no max_tokens)."""
        if self.rows[0].max_tokens is None:
            return None
        return tuple(sorted({r.max_tokens for r in self.rows}))

    @property
    def has_tokens(self) -> bool:
        return all(r.tokens is not None for r in self.rows)

    @property
    def tokens_approximate(self) -> bool:
        return any(r.tokens_approximate for r in self.rows)

    @property
    def longest_tokens(self) -> int | None:
        """The longest sample in tokens (None without token counts)."""
        return max(r.tokens for r in self.rows) if self.has_tokens else None

    def describe(self) -> str:
        """One line: the file, its format and how the rows were derived."""
        text = f"{self.path} ({self.format} format)"
        if self.tokens_approximate:
            text += ", token counts approximate"
        return text + (f", {self.note}" if self.note else "")


def parse_row(obj: Any, where: str) -> TraceRow:
    """A validated TraceRow from one JSON object; UserError names ``where`` and the field."""
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object with {', '.join(REQUIRED)}, got {type(obj).__name__}")
    for key in REQUIRED:
        if key not in obj:
            raise UserError(f"{where}: missing field {key!r} (a trace row needs {', '.join(REQUIRED)})")
    answer = obj["answer"]
    if answer is not None and not isinstance(answer, str):
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer = str(answer)
        else:
            raise UserError(f"{where}: field 'answer' must be a string or null, got {answer!r}")
    correct = _bool(obj["correct"], "correct", where, required=True)
    if answer is None and correct:
        raise UserError(f"{where}: field 'correct' is true but 'answer' is null (no answer cannot be correct)")
    return TraceRow(
        problem_id=_ident(obj["problem_id"], "problem_id", where),
        sample_id=_ident(obj["sample_id"], "sample_id", where),
        answer=answer, correct=correct,
        max_tokens=_int(obj.get("max_tokens"), "max_tokens", where, minimum=1),
        tokens=_int(obj.get("tokens"), "tokens", where, minimum=0),
        finished=_bool(obj.get("finished"), "finished", where),
        tokens_approximate=bool(_bool(obj.get("tokens_approximate"), "tokens_approximate", where)),
        where=where,
    )


def check_traces(rows: Iterable[TraceRow], path: str) -> tuple[TraceRow, ...]:
    """The rows, after checks across rows: not empty, max_tokens on all or none, no duplicates."""
    rows = tuple(rows)
    if not rows:
        raise UserError(f"{path}: no trace rows")
    with_length = [r.max_tokens is not None for r in rows]
    if any(with_length) and not all(with_length):
        odd = rows[with_length.index(not with_length[0])]
        raise UserError(f"{odd.where}: field 'max_tokens' must be on every row or on none "
                        f"({rows[0].where} {'has' if with_length[0] else 'lacks'} it)")
    seen: dict[tuple, TraceRow] = {}
    for r in rows:
        key = (r.problem_id, r.sample_id, r.max_tokens)
        if key in seen:
            raise UserError(f"{r.where}: duplicate sample {r.sample_id!r} of problem {r.problem_id!r}"
                            + (f" at max_tokens {r.max_tokens}" if r.max_tokens else "")
                            + f" (also at {seen[key].where})")
        seen[key] = r
    return rows


def lattts_rows(objects: Iterable[tuple[str, Any]]) -> list[TraceRow]:
    """Rows of the lattts format from (where, object) pairs."""
    return [parse_row(obj, where) for where, obj in objects]


def write_traces(rows: Iterable[TraceRow], path: str | Path) -> Path:
    """Write rows in the lattts format: Parquet if the name ends in .parquet, else JSONL."""
    path = Path(path)
    records = [r.to_json() for r in rows]
    if path.suffix == ".parquet":
        import pandas as pd

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pd.DataFrame.from_records(records).to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic, as write_atomic is for text
        return path
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _ident(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise UserError(f"{where}: field {key!r} must be a non-empty string or an integer, got {value!r}")
    return str(value)


def _bool(value: Any, key: str, where: str, required: bool = False) -> bool | None:
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise UserError(f"{where}: field {key!r} must be true or false, got {value!r}")
    return value


def _int(value: Any, key: str, where: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # Parquet stores an integer column with gaps as floats
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where}: field {key!r} must be an integer, got {value!r}")
    if value < minimum:
        raise UserError(f"{where}: field {key!r} must be at least {minimum}, got {value}")
    return value
