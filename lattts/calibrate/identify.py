"""Is a fitted parameter pinned by the data, and how tightly? Two answers for every fit.

- ``log_sd``: the standard deviation of log(parameter) from the Jacobian of the weighted log-residuals,
  sigma^2 (J^T J)^-1, with sigma the residuals' robust scatter (at least 1%, the timer's noise). Above
  ``UNIDENTIFIED_LOG_SD`` (a factor of 1.35) the rows do not tell the parameter from the others: one
  shape of whole passes, for example, cannot tell a per-pass from a per-layer cost, nor weight streaming
  from either, since all three are the same constant in every row.
- ``bootstrap``: a 95% interval from refits on resampled clusters (whole measured series where there are
  enough of them, else rows), which also carries shape-to-shape movement the Jacobian does not see. The
  Jacobian alone is optimistic when residuals are not independent noise (cuBLAS tile steps run along N):
  one matmul shape alone gets a Jacobian log-sd of 0.09 for its fixed time, but a bootstrap interval of
  1e-8 to 5e-5 s. The standing uses the larger of the two, the interval's width read as 3.92 log-sd.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

UNIDENTIFIED_LOG_SD = 0.3  # log-sd above which a parameter is reported as not identified (x/÷ 1.35)
NOISE_FLOOR = 0.01  # relative scatter assumed at least: Vidur's 1 us tick on 100 us kernels, timer jitter
AT_BOUND = 1e-3  # within this (log) of a search bound, a parameter sits at the bound


@dataclass(frozen=True)
class Estimate:
    """One fitted parameter: value and unit, bootstrap 95% interval, Jacobian log-sd and its standing."""

    name: str
    value: float
    unit: str
    low: float | None
    high: float | None
    log_sd: float  # the larger of the Jacobian's and the bootstrap interval's (width / 3.92)
    status: str  # 'identified', 'unidentified', 'at its lower bound', 'at its upper bound', or a physical limit

    @property
    def ok(self) -> bool:
        """Meaningful as printed: identified, or at its lower bound (the rows show no such cost)."""
        return self.status in ("identified", "at its lower bound")

    def to_json(self) -> dict:
        return {"value": self.value, "unit": self.unit, "interval_95": [self.low, self.high],
                "log_sd": self.log_sd, "status": self.status}


def log_sd(residuals: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, free: np.ndarray) -> np.ndarray:
    """sd of each log-parameter (inf where the rows cannot pin it; nan where not free)."""
    theta = np.asarray(theta, dtype=float)
    r0 = residuals(theta)
    sigma = max(1.4826 * float(np.median(np.abs(r0 - np.median(r0)))), NOISE_FLOOR)
    index = np.flatnonzero(free)
    jac = np.empty((len(r0), len(index)))
    for col, i in enumerate(index):
        step = np.zeros_like(theta)
        step[i] = 1e-4
        jac[:, col] = (residuals(theta + step) - residuals(theta - step)) / 2e-4
    out = np.full(len(theta), np.nan)
    if len(index):
        vals, vecs = np.linalg.eigh(jac.T @ jac)
        vals = np.maximum(vals, 1e-12 * max(vals.max(), 1e-12))  # a flat direction: variance ~ 1e12
        out[index] = sigma * np.sqrt((vecs ** 2 / vals).sum(axis=1))
    return out


def bootstrap(refit: Callable[[np.ndarray], np.ndarray], clusters: np.ndarray, resamples: int,
              seed: int = 0) -> np.ndarray:
    """Log-parameters of ``resamples`` refits, each on clusters drawn with replacement (rows of one cluster together)."""
    labels, inverse = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        pick = rng.integers(0, len(labels), len(labels))
        out.append(refit(np.concatenate([members[k] for k in pick])))
    return np.array(out)


def interval_log_sd(draws: np.ndarray) -> np.ndarray:
    """The log-sd a 95% interval of bootstrap draws (log-parameters, one column each) stands for."""
    return (np.quantile(draws, 0.975, axis=0) - np.quantile(draws, 0.025, axis=0)) / 3.92


def clusters_for(series: np.ndarray, minimum: int = 10) -> np.ndarray:
    """Resample whole series when there are enough of them, else single rows."""
    return series if len(np.unique(series)) >= minimum else np.arange(len(series)).astype(str)


def standing(theta: float, lo: float, hi: float, sd: float, value: float, limit: tuple[float, str] | None) -> str:
    """The status of one parameter (see Estimate.status)."""
    if limit is not None and value > limit[0]:
        return f"above {limit[1]}"
    if theta - lo < AT_BOUND:
        return "at its lower bound"
    if hi - theta < AT_BOUND:
        return "at its upper bound"
    return "unidentified" if not sd <= UNIDENTIFIED_LOG_SD else "identified"
