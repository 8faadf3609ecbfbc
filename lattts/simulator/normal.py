"""The standard normal CDF and quantile as numpy array functions (the simulator does not import scipy).

``cdf`` uses the complementary error function of W. J. Cody's rational form as given by Numerical
Recipes (``erfc`` by Chebyshev fit, fractional error < 1.2e-7); ``ppf`` is P. J. Acklam's rational
approximation (relative error < 1.2e-9) refined by one Halley step. Both are far below what a
latency prediction can resolve.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_ERFC_COEF = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
              1.48851587, -0.82215223, 0.17087277)


def _erfc(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.zeros_like(t)
    for c in reversed(_ERFC_COEF):
        poly = poly * t + c
    ans = t * np.exp(-z * z + poly)
    return np.where(x >= 0, ans, 2.0 - ans)


def cdf(x) -> np.ndarray:
    """Phi(x), elementwise."""
    return 0.5 * _erfc(-np.asarray(x, float) / math.sqrt(2.0))


_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


def ppf(p) -> np.ndarray:
    """Phi^-1(p) for p in (0, 1), elementwise (clipped to 1e-15 from the ends)."""
    p = np.clip(np.asarray(p, float), 1e-15, 1 - 1e-15)
    q = np.minimum(p, 1 - p)
    low = q < 0.02425
    r = np.sqrt(-2.0 * np.log(np.where(low, q, 0.5)))
    tail = (((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]) / \
           ((((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + 1)
    u = q - 0.5
    s = u * u
    mid = (((((_A[0] * s + _A[1]) * s + _A[2]) * s + _A[3]) * s + _A[4]) * s + _A[5]) * u / \
          (((((_B[0] * s + _B[1]) * s + _B[2]) * s + _B[3]) * s + _B[4]) * s + 1)
    x = np.where(low, tail, mid)  # quantile of q <= 0.5 (negative)
    x = np.where(p > 0.5, -x, x)
    e = cdf(x) - p  # one Halley step
    d = e * math.sqrt(2 * math.pi) * np.exp(x * x / 2)
    return x - d / (1 + x * d / 2)


@lru_cache(maxsize=8)
def equal_mass_nodes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """k equal-probability bins of N(0, 1), each as its conditional mean: (nodes, weights 1/k).
    Quantiles of a mixture over them move smoothly (Gauss-Hermite nodes make them jump)."""
    edges = ppf(np.linspace(0.0, 1.0, k + 1)[1:-1])
    pdf = np.concatenate([[0.0], np.exp(-0.5 * edges ** 2) / math.sqrt(2 * math.pi), [0.0]])
    return (pdf[:-1] - pdf[1:]) * k, np.full(k, 1.0 / k)


@lru_cache(maxsize=8)
def hermite_nodes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for E f(Z), Z ~ N(0, 1) (probabilists' form)."""
    x, w = np.polynomial.hermite_e.hermegauss(k)
    return x, w / w.sum()
