"""Read trace files: the lattts format, and raw evaluation outputs turned into it.

``load_traces`` detects the format from the first row:

- lattts rows (``problem_id``, ``sample_id``, ``answer``, ``correct``; see ``format``), in JSONL
  or Parquet (read through pandas);
- Qwen2.5-Math evaluation-harness rows, ``qwen-eval`` (JSONL, one row per problem with ``idx``,
  ``pred`` and ``score``), as written by QwenLM/Qwen2.5-Math's ``evaluation/`` and by the copy of
  it in NovaSky-AI/SkyThought. The files in /work/shared/data/traces are of this kind.

Mapping of a ``qwen-eval`` row to trace rows:

- ``problem_id`` = ``idx``; one trace row per entry of ``score``, ``sample_id`` = its position.
- ``answer`` = ``pred[i]`` stripped of surrounding whitespace; the harness has already extracted
  and normalised it. An empty string means nothing was extracted: null. If ``pred[i]`` is itself a
  list (several answers found in one response), its entries are joined with ", ". A row with one
  score whose ``pred`` is a list of several strings is one sample with a multi-part answer. A bare
  string ``pred`` or boolean ``score`` counts as a list of one.
- ``correct`` = ``score[i]`` (the harness's grading against ``gt``), except that a sample with no
  answer is wrong even where the harness scored it correct (it does when ``gt`` is empty too).
- ``tokens`` ~ len(``code[i]``) / 4, rounded up: an approximate count (``tokens_approximate``),
  since the files keep the response text but not its token count. Four characters per token is
  the usual rule of thumb for English with BPE tokenizers; Qwen tokenizers split digits into
  single tokens, so on digit- and LaTeX-heavy text this likely undercounts.
- ``finished`` = the response contains ``\\boxed`` or ``<|end_of_solution|>`` (it reached a final
  answer rather than being cut off), a heuristic.
- ``max_tokens`` is not recorded in these files: they are single-budget traces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

from lattts.errors import UserError
from lattts.traces.format import TraceRow, Traces, check_traces, lattts_rows

TRACE_SUFFIXES = (".jsonl", ".json", ".parquet")  # what a folder of traces would hold

CHARS_PER_TOKEN = 4.0  # rule-of-thumb estimate used when a file has text but no token counts
FINISH_MARKERS = ("\\boxed", "<|end_of_solution|>")


def load_traces(path: str | Path) -> Traces:
    """Every row of a trace file in the lattts format, whatever format it is stored in."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in TRACE_SUFFIXES and p.is_file())
        if not inside:
            raise UserError(f"{path} is a folder with no trace files in it ({', '.join(TRACE_SUFFIXES)}); give "
                            f"a trace file, e.g. one that `lattts measure --out` wrote")
        more = f" ({len(inside)} there)" if len(inside) > 1 else ""
        raise UserError(f"{path} is a folder: give one trace file in it, e.g. {path / inside[0]}{more}")
    if not path.is_file():
        raise UserError(f"trace file {path} does not exist")
    objects = list(_objects(path))
    if not objects:
        raise UserError(f"{path}: no trace rows (empty file)")
    first = objects[0][1]
    fmt = detect_format(first)
    if fmt is None:
        keys = ", ".join(list(first)[:8]) if isinstance(first, dict) else type(first).__name__
        raise UserError(f"{path}: unknown trace format (first row has {keys}); expected lattts rows "
                        f"(problem_id, sample_id, answer, correct) or Qwen2.5-Math evaluation rows (idx, pred, score)")
    rows = lattts_rows(objects) if fmt == "lattts" else qwen_eval_rows(objects)
    return Traces(rows=check_traces(rows, str(path)), path=str(path), format=fmt)


def detect_format(first: Any) -> str | None:
    """'lattts', 'qwen-eval', or None, from a file's first row."""
    if not isinstance(first, dict):
        return None
    if "problem_id" in first and "sample_id" in first:
        return "lattts"
    if "idx" in first and "pred" in first and "score" in first:
        return "qwen-eval"
    return None


def qwen_eval_rows(objects: list[tuple[str, Any]]) -> list[TraceRow]:
    """Trace rows from Qwen2.5-Math evaluation rows (the mapping is in the module docstring)."""
    rows = []
    for where, obj in objects:
        if not isinstance(obj, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        for key in ("idx", "pred", "score"):
            if key not in obj:
                raise UserError(f"{where}: missing field {key!r} (a Qwen2.5-Math evaluation row needs idx, pred, score)")
        idx = obj["idx"]
        if isinstance(idx, bool) or not isinstance(idx, (int, str)):
            raise UserError(f"{where}: field 'idx' must be an integer or a string, got {idx!r}")
        scores = obj["score"] if isinstance(obj["score"], list) else [obj["score"]]
        preds = obj["pred"] if isinstance(obj["pred"], list) else [obj["pred"]]
        if len(scores) == 1 and len(preds) != 1:
            preds = [preds]  # one sample whose response gave several answers
        if len(preds) != len(scores):
            raise UserError(f"{where}: field 'pred' has {len(preds)} answers but 'score' has {len(scores)}")
        if not scores:
            raise UserError(f"{where}: problem {idx} has no samples (empty 'score')")
        texts = obj.get("code")
        texts = texts if isinstance(texts, list) and len(texts) == len(scores) else None
        for i, (pred, score) in enumerate(zip(preds, scores)):
            if not isinstance(score, bool):
                raise UserError(f"{where}: field 'score' entry {i} must be true or false, got {score!r}")
            answer = _answer(pred, f"{where}: field 'pred' entry {i}")
            text = texts[i] if texts and isinstance(texts[i], str) else None
            rows.append(TraceRow(
                problem_id=str(idx), sample_id=str(i), answer=answer, correct=score and answer is not None,
                tokens=approx_tokens(text) if text is not None else None,
                finished=any(m in text for m in FINISH_MARKERS) if text is not None else None,
                tokens_approximate=text is not None, where=f"{where} sample {i}",
            ))
    return rows


def approx_tokens(text: str) -> int:
    """Approximate token count of ``text``: characters / 4, rounded up (see the module docstring)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _answer(pred: Any, what: str) -> str | None:
    if pred is None:
        return None
    if isinstance(pred, list):
        parts = [_answer(p, what) for p in pred]
        parts = [p for p in parts if p is not None]
        return ", ".join(parts) if parts else None
    if isinstance(pred, (int, float)) and not isinstance(pred, bool):
        pred = str(pred)
    if not isinstance(pred, str):
        raise UserError(f"{what} must be a string, got {pred!r}")
    pred = pred.strip()
    return pred or None


def _objects(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, object) for each row: JSONL lines (blank lines skipped) or Parquet rows."""
    if path.suffix == ".parquet":
        yield from _parquet_objects(path)
        return
    with path.open(encoding="utf-8") as handle:
        try:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{n}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{n}: not valid JSON ({exc.msg}); trace files are JSONL "
                                    f"(one JSON object per line) or Parquet") from None
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a text file; trace files are JSONL or Parquet (.parquet)") from None


def _parquet_objects(path: Path) -> Iterator[tuple[str, Any]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise UserError(f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc})") from None
    for n, record in enumerate(frame.to_dict("records"), 1):
        yield f"{path}: row {n}", {k: _plain(v) for k, v in record.items()}


def _plain(value: Any) -> Any:
    """Python values from what pandas hands back: numpy scalars and arrays, NaN for missing."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
