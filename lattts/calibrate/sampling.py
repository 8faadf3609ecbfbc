"""What the engine spends outside forward passes: turning logits into tokens.

Timed on the device with the engine's own ``probabilities`` and ``sample`` (temperature 1, top-p
1), over a few row counts at the model's vocabulary, and fitted as a fixed cost per call plus a
cost per logit. The simulator charges it per sampling call of the engine's schedule.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

ROWS = (1, 4, 16, 64, 256)


def time_sampling(vocab: int, device: str = "cpu", repeats: int = 9, engine: str = "lattts") -> list[tuple[int, float]]:
    """(rows, median seconds) of one sampling call for each row count."""
    import torch

    from lattts.engine.sampling import probabilities, sample
    from lattts.engine.timing import clock_for

    clock = clock_for(device)
    out = []
    for rows in ROWS:
        logits = torch.randn(rows, vocab, device=device)
        u = torch.rand(rows, device=device)

        def call():
            if engine == "transformers":  # its sampler: softmax and multinomial
                torch.multinomial(torch.softmax(logits / 1.0, dim=-1), 1)
            else:
                sample(probabilities(logits, 1.0, 1.0), u)

        call()
        times = []
        for _ in range(repeats):
            start = clock.now()
            call()
            times.append(clock.now() - start)
        out.append((rows, statistics.median(times)))
    return out


def fit_sampling(points: list[tuple[int, float]], vocab: int) -> tuple[float, float]:
    """(seconds per call, seconds per logit) by non-negative least squares on t = a + b * rows * vocab."""
    from scipy.optimize import nnls

    logits = np.array([rows * vocab for rows, _ in points], float)
    y = np.array([t for _, t in points])
    x = np.column_stack([np.ones_like(logits), logits / logits.max()])  # columns of comparable size
    (a, b), _ = nnls(x, y)
    return float(a), float(b / logits.max())
