"""Fit a device profile to measured forward passes, and say how well it predicts.

The profile's parameters are physical rates (bandwidths in bytes/s, FLOP/s, seconds of fixed
overhead) of the simulator's own roofline (``lattts.simulator.roofline``): the fit only chooses
their values, so a profile fitted on some shapes predicts any ModelSpec. Fitting minimises the
log of predicted/measured time (relative error) with a soft-L1 loss, over log-parameters kept
inside physical bounds.

Errors are reported three ways: in-sample; held-out (k-fold over the measured points: each
fold is predicted by a fit that never saw it); and, with two or more shapes, cross-model (each
shape is predicted by a fit on the others).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from lattts.calibrate.identify import Estimate, bootstrap, interval_log_sd, log_sd, standing
from lattts.calibrate.measurements import Measurement
from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.roofline import group_times, pass_work

# (profile field, initial value, lower bound, upper bound, unit)
PARAMETERS = (
    ("weight_bw_bytes_per_s", 20e9, 1e8, 1e14, "bytes/s"),
    ("gemv_bw_bytes_per_s", 20e9, 1e8, 1e14, "bytes/s"),
    ("act_bw_bytes_per_s", 20e9, 1e8, 1e14, "bytes/s"),
    ("kv_bw_bytes_per_s", 20e9, 1e8, 1e14, "bytes/s"),
    ("matmul_flops_per_s", 100e9, 1e9, 1e16, "FLOP/s"),
    ("attn_flops_per_s", 50e9, 1e8, 1e16, "FLOP/s"),
    ("pass_overhead_s", 1e-3, 1e-7, 1.0, "s"),
    ("layer_overhead_s", 1e-4, 1e-8, 0.1, "s"),
    ("knee_sharpness", 2.0, 1.0, 50.0, "p-norm exponent joining memory and compute time"),
)
# a server's work per slot and step (sampling, detokenizing, stop checks) beside its pass: what sets a
# decode step of B sequences apart from a pass of B tokens of one (llama.cpp here: B=5 39.5 ms, q=5 26.0)
SERVER_PARAMETERS = PARAMETERS + (("seq_overhead_s", 1e-3, 1e-7, 0.1, "s"),)


@dataclass(frozen=True)
class ShapeData:
    """Measured points of one shape; ``arrays`` counts their work (once per fit)."""

    spec: ModelSpec
    rows: tuple[Measurement, ...]
    dtype: str

    def arrays(self, base: DeviceProfile):
        """(work of every row, measured seconds); the work depends on the dtype only, not the profile."""
        b = np.array([m.batch for m in self.rows], float)
        q = np.array([m.query_len for m in self.rows], float)
        s = np.array([m.context_len for m in self.rows], float)
        lg = np.array([m.logits for m in self.rows], float)
        work = pass_work(self.spec, Deployment.on(base, self.dtype), b, q, s, lg)
        return work, np.array([m.latency_s for m in self.rows])


def profile_from_vector(base: DeviceProfile, theta: np.ndarray, params=PARAMETERS) -> DeviceProfile:
    values = {name: float(math.exp(v)) for (name, *_), v in zip(params, theta)}
    return replace(base, **values)


def free_parameters(fixed=()) -> tuple:
    """The whole-pass parameters left to fit when ``fixed`` ones come from elsewhere (per-op rows)."""
    return tuple(p for p in PARAMETERS if p[0] not in fixed)


def _predict(profile: DeviceProfile, works) -> list[np.ndarray]:
    """Predicted seconds of every row, per shape: works are (spec, dtype, work) triples."""
    out = []
    for spec, dtype, work in works:
        times = group_times(work, spec, Deployment.on(profile, dtype))
        out.append(sum(t for t, _, _ in times.values()))
    return out


def _pass_residuals(data: list[ShapeData], base: DeviceProfile, params):
    arrays = [d.arrays(base) for d in data]
    works = [(d.spec, d.dtype, work) for d, (work, _) in zip(data, arrays)]
    measured = np.concatenate([latency for _, latency in arrays])

    def residuals(theta):
        pred = np.concatenate(_predict(profile_from_vector(base, theta, params), works))
        return np.log(pred / measured)

    return residuals


def vector_of(profile: DeviceProfile, params=PARAMETERS) -> np.ndarray:
    """The log-parameters ``params`` of ``profile`` (the inverse of ``profile_from_vector``)."""
    return np.log([getattr(profile, name) for name, *_ in params])


def fit_vector(data: list[ShapeData], base: DeviceProfile, limits: dict[str, float] | None = None,
               params=PARAMETERS, x0: np.ndarray | None = None, warm: np.ndarray | None = None) -> np.ndarray:
    """The best log-parameters ``params`` for ``data`` (a few starts, or one from ``x0``). ``warm`` is
    one more start (e.g. the fit on all points, for a fit on a subset of them): it is kept only where
    it reaches a strictly lower cost on ``data`` than the usual starts, so it mends a start that
    diverged and never trades the subset's own optimum for the whole set's."""
    from scipy.optimize import least_squares

    limits = limits or {}
    residuals = _pass_residuals(data, base, params)
    lo = np.log([p[2] for p in params])
    hi = np.log([min(p[3], limits.get(p[0], p[3])) for p in params])
    starts = [x0] if x0 is not None else [
        np.log([p[1] * (scale if p[4] != "s" else 1.0) for p in params]) for scale in (1.0, 0.3, 3.0)]
    if warm is not None:
        starts.append(warm)
    best = None
    for start in starts:  # a few starts: the knee and overhead terms trade off
        result = least_squares(residuals, np.clip(start, lo + 1e-6, hi - 1e-6), bounds=(lo, hi), loss="soft_l1",
                               f_scale=0.05, max_nfev=4000)
        if best is None or result.cost < best.cost:
            best = result
    return best.x


def fit_profile(data: list[ShapeData], base: DeviceProfile, limits: dict[str, float] | None = None,
                params=PARAMETERS, warm: DeviceProfile | None = None) -> DeviceProfile:
    """The profile whose roofline best predicts ``data`` (relative error); non-fitted fields from ``base``.
    ``limits`` caps parameters (e.g. bandwidths at what the machine was measured to stream); ``params``
    are the ones fitted (default all of PARAMETERS); ``warm``, a profile whose values are one more start."""
    x = fit_vector(data, base, limits, params, warm=None if warm is None else vector_of(warm, params))
    return profile_from_vector(base, x, params)


def pass_estimates(data: list[ShapeData], base: DeviceProfile, params, resamples: int,
                   limits: dict | None = None) -> list[Estimate]:
    """Each fitted whole-pass parameter with its bootstrap interval (rows resampled) and standing."""
    theta = fit_vector(data, base, params=params)
    lo, hi = np.log([p[2] for p in params]), np.log([p[3] for p in params])
    at_bound = (theta - lo < 1e-3) | (hi - theta < 1e-3)
    sd = log_sd(_pass_residuals(data, base, params), theta, ~at_bound)
    index = [(i, j) for i, d in enumerate(data) for j in range(len(d.rows))]
    draws = None
    if resamples:
        def refit(rows):
            picked = [replace(d, rows=tuple(d.rows[j] for k, j in (index[r] for r in rows) if k == i))
                      for i, d in enumerate(data)]
            return fit_vector([d for d in picked if d.rows], base, params=params, x0=theta)

        draws = bootstrap(refit, np.arange(len(index)).astype(str), resamples)
        sd = np.fmax(sd, interval_log_sd(draws))
    out = []
    for i, (name, _, _, _, unit) in enumerate(params):
        value = float(math.exp(theta[i]))
        low, high = (None, None) if draws is None else (float(np.exp(np.quantile(draws[:, i], 0.025))),
                                                        float(np.exp(np.quantile(draws[:, i], 0.975))))
        out.append(Estimate(name, value, unit, low, high, float(sd[i]),
                            standing(theta[i], lo[i], hi[i], sd[i], value, (limits or {}).get(name))))
    return out


FACTOR_BOUNDS = (0.25, 4.0)  # a kernel choice moves matmul time by a few times at most; beyond, the fit is wrong


def fit_rows_factor(profile: DeviceProfile, data: list[ShapeData]) -> DeviceProfile:
    """``profile`` with ``matmul_rows_factor`` fitted to ``data``: at each number of token rows per pass,
    the median of the factor on the matmul groups' time that would make each point's predicted pass
    time its measured one (what the physical rates leave to the kernels' choices)."""
    plain = replace(profile, matmul_rows_factor=())
    needed: dict[float, list[float]] = {}
    for d in data:
        work, measured = d.arrays(plain)
        times = group_times(work, d.spec, Deployment.on(plain, d.dtype))
        matmul = times["linear"][0] + times["lm_head"][0]
        rest = sum(t for name, (t, _, _) in times.items() if name not in ("linear", "lm_head"))
        factor = np.clip((measured - rest) / np.maximum(matmul, 1e-12), *FACTOR_BOUNDS)
        for rows, f in zip(np.broadcast_to(work.rows, measured.shape), factor):
            needed.setdefault(float(rows), []).append(float(f))
    table = tuple((rows, float(np.median(fs))) for rows, fs in sorted(needed.items()))
    return replace(profile, matmul_rows_factor=table)


def relative_errors(profile: DeviceProfile, data: list[ShapeData]) -> np.ndarray:
    """|predicted / measured - 1| for every point."""
    arrays = [d.arrays(profile) for d in data]
    pred = np.concatenate(_predict(profile, [(d.spec, d.dtype, work) for d, (work, _) in zip(data, arrays)]))
    meas = np.concatenate([latency for _, latency in arrays])
    return np.abs(pred / meas - 1.0)


def summary(errors: np.ndarray) -> dict:
    if len(errors) == 0:
        return {"median": None, "p90": None, "max": None, "points": 0}
    return {"median": float(np.median(errors)), "p90": float(np.quantile(errors, 0.9)),
            "max": float(errors.max()), "points": int(len(errors))}


def split(data: list[ShapeData], keep) -> list[ShapeData]:
    """The same shapes with only the rows for which keep(shape index, row index) is true."""
    out = []
    for i, d in enumerate(data):
        rows = tuple(r for j, r in enumerate(d.rows) if keep(i, j))
        if rows:
            out.append(replace(d, rows=rows))
    return out


def _fold_fits(data: list[ShapeData], base: DeviceProfile, folds: int, seed: int, limits: dict[str, float] | None,
               params, warm: DeviceProfile | None) -> Iterator[tuple[list[ShapeData], list[ShapeData], DeviceProfile]]:
    """(training points, test points, the profile fitted on the training points) for each of k folds
    over all measured points; ``warm``, if given, is one more start of every fold's fit."""
    index = [(i, j) for i, d in enumerate(data) for j in range(len(d.rows))]
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(index, rng.permutation(len(index)) % folds))
    for k in range(folds):
        train = split(data, lambda i, j: fold_of[(i, j)] != k)
        test = split(data, lambda i, j: fold_of[(i, j)] == k)
        if train and test:
            yield train, test, fit_profile(train, base, limits, params, warm)


def _joined(errors: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(errors) if errors else np.array([])


def heldout_errors(data: list[ShapeData], base: DeviceProfile, folds: int = 5, seed: int = 0,
                   limits: dict[str, float] | None = None, params=PARAMETERS,
                   warm: DeviceProfile | None = None) -> np.ndarray:
    """Errors on points left out of the fit, k-fold over all measured points (``warm``: the fit on all
    points, one more start of each fold's fit)."""
    fits = _fold_fits(data, base, folds, seed, limits, params, warm)
    return _joined([relative_errors(fitted, test) for _, test, fitted in fits])


def heldout_errors_by_rows_factor(data: list[ShapeData], base: DeviceProfile, folds: int = 5, seed: int = 0,
                                  limits: dict[str, float] | None = None,
                                  params=PARAMETERS, warm: DeviceProfile | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out errors without and with the correction by rows (fitted on the training folds too),
    from the same fits of each fold."""
    plain, corrected = [], []
    for train, test, fitted in _fold_fits(data, base, folds, seed, limits, params, warm):
        plain.append(relative_errors(fitted, test))
        corrected.append(relative_errors(fit_rows_factor(fitted, train), test))
    return _joined(plain), _joined(corrected)


def cross_model_errors(data: list[ShapeData], base: DeviceProfile,
                       limits: dict[str, float] | None = None, params=PARAMETERS,
                       warm: DeviceProfile | None = None) -> dict[str, np.ndarray]:
    """For each shape, errors of a fit on the other shapes only (needs two or more shapes)."""
    if len(data) < 2:
        return {}
    return {d.spec.name: relative_errors(fit_profile([o for o in data if o is not d], base, limits, params, warm), [d])
            for d in data}
