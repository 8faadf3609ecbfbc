"""Natural output lengths: how long the batch runs when branches stop on their own.

Without budget forcing each branch stops at its own length X (capped at L) and a lock-step batch
waits for its longest branch: E[max_{b<=B} min(X_b, L)], with X drawn from an empirical sample of
lengths (e.g. the ``tokens`` column of traces; ``lattts.traces.lengths`` reads them from files).
Exact for the empirical distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LengthDistribution:
    """An empirical sample of output lengths (tokens) and where it comes from."""

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
