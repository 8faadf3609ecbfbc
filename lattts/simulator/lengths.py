"""Natural output lengths: how long the batch runs when branches stop on their own.

Without budget forcing each branch stops at its own length X (capped at L) and a lock-step batch
waits for its longest branch: E[max_{b<=B} min(X_b, L)], with X drawn from an empirical sample of
lengths (e.g. the ``tokens`` column of traces). Exact for the empirical distribution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lattts.errors import UserError


@dataclass(frozen=True)
class LengthDistribution:
    samples: tuple[int, ...]
    source: str

    def expected_longest(self, branches, cap) -> np.ndarray:
        """E[max of B i.i.d. min(X, cap)]: sum over t < cap of 1 - F(t)^B, F the empirical CDF."""
        B, L = np.broadcast_arrays(np.asarray(branches, float), np.asarray(cap, float))
        values, counts = np.unique(np.asarray(self.samples, float), return_counts=True)
        cdf = np.cumsum(counts) / counts.sum()  # F(t) = cdf[i] for values[i] <= t < values[i+1]
        edges = np.append(values, np.inf)
        out = np.minimum(values[0], L)  # F(t) = 0 below the shortest sample: every t counts
        for i in range(len(values)):
            lo, hi = edges[i], edges[i + 1]
            width = np.clip(np.minimum(hi, L) - lo, 0.0, None)
            out = out + width * (1.0 - cdf[i] ** B)
        return out

    @classmethod
    def from_file(cls, path: Path) -> "LengthDistribution":
        """One integer per line, or lattts traces (JSONL or Parquet) with a 'tokens' field."""
        if not path.is_file():
            raise UserError(f"length file {path} does not exist")
        if path.suffix == ".parquet":
            from lattts.traces.readers import load_traces

            lengths = [r.tokens for r in load_traces(path).rows if r.tokens]
            if not lengths:
                raise UserError(f"{path}: no row has a 'tokens' count")
            return cls(samples=tuple(lengths), source=f"lengths from {path} ({len(lengths)} samples)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a text file; give one token count per line, JSONL traces, or .parquet traces") from None
        samples = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
                value = value.get("tokens") if isinstance(value, dict) else value
                if value is None:
                    continue
                samples.append(int(value))
            except (ValueError, TypeError, AttributeError):
                raise UserError(f"{path}:{n}: expected a token count or a JSON row with 'tokens', got {line[:60]!r}") from None
            if samples[-1] < 1:
                raise UserError(f"{path}:{n}: a length must be at least 1 token")
        if not samples:
            raise UserError(f"{path}: no token counts found (need a 'tokens' field or one integer per line)")
        return cls(samples=tuple(samples), source=f"lengths from {path} ({len(samples)} samples)")
