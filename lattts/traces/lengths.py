"""Output lengths from files, for ``predict --natural-lengths``: one token count per line, or lattts
traces (JSONL or Parquet) whose rows carry ``tokens``."""

from __future__ import annotations

import json
from pathlib import Path

from lattts.errors import UserError
from lattts.simulator.lengths import LengthDistribution


def load_lengths(path: str | Path) -> LengthDistribution:
    """The lengths in ``path``; a UserError names the file and line of anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"length file {path} does not exist")
    if path.suffix == ".parquet":
        from lattts.traces.readers import load_traces

        lengths = [r.tokens for r in load_traces(path).rows if r.tokens]
        if not lengths:
            raise UserError(f"{path}: no row has a 'tokens' count")
        return LengthDistribution(samples=tuple(lengths), source=f"lengths from {path} ({len(lengths)} samples)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; give one token count per line, JSONL traces, or .parquet traces") from None
    samples = [n for n in (_length(line, f"{path}:{i}") for i, line in enumerate(text.splitlines(), 1)) if n is not None]
    if not samples:
        raise UserError(f"{path}: no token counts found (need a 'tokens' field or one integer per line)")
    return LengthDistribution(samples=tuple(samples), source=f"lengths from {path} ({len(samples)} samples)")


def _length(line: str, where: str) -> int | None:
    """The token count on one line (a bare integer or a JSON row's 'tokens'); None for a blank line or a
    row without one."""
    line = line.strip()
    if not line:
        return None
    try:
        value = json.loads(line)
        value = value.get("tokens") if isinstance(value, dict) else value
        if value is None:
            return None
        n = int(value)
    except (ValueError, TypeError, AttributeError):
        raise UserError(f"{where}: expected a token count or a JSON row with 'tokens', got {line[:60]!r}") from None
    if n < 1:
        raise UserError(f"{where}: a length must be at least 1 token")
    return n
