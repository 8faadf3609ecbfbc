"""Fit the parameters of one op group to its rows (``oprows``): only the parameters that group prices.

- linear: a fixed time per matmul kernel, one streaming rate for weights and matmul activations (a
  separate single-row rate is not needed on the GPUs measured: bias -0.5% at N 1-16 without one), the
  tensor-core rate and the knee joining memory and compute time;
- elementwise: a fixed time per kernel, the streaming rate and the per-row rate;
- comm: all-reduce latency and bus bandwidth, once for every device count of the node together (the
  profile's pair) and once per device count (``allreduce_by_devices``).

Relative error (log of predicted/measured) with a soft-L1 loss, each (series, token band) cell weighted
alike, over log-parameters inside wide physical bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lattts.calibrate.identify import Estimate, bootstrap, clusters_for, interval_log_sd, log_sd, standing
from lattts.calibrate.oprows import OpRows, predict
from lattts.simulator.profile import AllReduceCost, DeviceProfile

# (profile field, initial value, lower bound, upper bound, unit)
PARAMETERS = {
    "linear": (("matmul_kernel_s", 3e-6, 1e-8, 1e-3, "s"), ("weight_bw_bytes_per_s", 1e12, 1e9, 1e14, "bytes/s"),
               ("matmul_flops_per_s", 1e14, 1e10, 1e16, "FLOP/s"), ("knee_sharpness", 1.5, 1.0, 20.0, "-")),
    "elementwise": (("elementwise_kernel_s", 1e-6, 1e-9, 1e-4, "s"),
                    ("elementwise_bw_bytes_per_s", 5e11, 1e9, 1e14, "bytes/s"),
                    ("row_bw_bytes_per_s", 1e10, 1e7, 1e13, "bytes/s")),
    "comm": (("allreduce_latency_s", 2e-5, 1e-7, 1e-2, "s"), ("interconnect_bytes_per_s", 1e11, 1e8, 1e13, "bytes/s")),
}
TIED = {"weight_bw_bytes_per_s": ("gemv_bw_bytes_per_s", "act_bw_bytes_per_s")}  # fitted as one rate


@dataclass(frozen=True)
class Block:
    """One set of parameters fitted to ``data``; ``devices`` set for a per-device-count all-reduce fit."""

    label: str
    data: OpRows
    theta: np.ndarray  # log-parameters, in PARAMETERS[data.group] order
    devices: int | None = None

    @property
    def params(self) -> tuple:
        return PARAMETERS[self.data.group]

    def apply(self, profile: DeviceProfile, theta: np.ndarray | None = None) -> DeviceProfile:
        """``profile`` with this block's values (or ``theta``'s) in place."""
        values = {name: float(np.exp(v)) for (name, *_), v in zip(self.params, self.theta if theta is None else theta)}
        if self.devices is not None:
            cost = AllReduceCost(self.devices, values["allreduce_latency_s"], values["interconnect_bytes_per_s"])
            others = tuple(c for c in profile.allreduce_by_devices if c.devices != self.devices)
            return replace(profile, allreduce_by_devices=tuple(sorted(others + (cost,), key=lambda c: c.devices)))
        for name, tied in TIED.items():
            if name in values:
                values.update({t: values[name] for t in tied})
        return replace(profile, **values)


def _weights(data: OpRows) -> np.ndarray:
    _, inverse, counts = np.unique(data.cells, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return np.sqrt(w / w.mean())


def _residuals(block: Block, base: DeviceProfile):
    weights, measured = _weights(block.data), block.data.time_s

    def residuals(theta):
        return weights * np.log(predict(block.apply(base, theta), block.data) / measured)

    return residuals


def fit_block(label: str, data: OpRows, base: DeviceProfile, devices: int | None = None,
              x0: np.ndarray | None = None) -> Block:
    """The best log-parameters for ``data`` (a few starts, or one from ``x0``)."""
    from scipy.optimize import least_squares

    params = PARAMETERS[data.group]
    lo, hi = np.log([p[2] for p in params]), np.log([p[3] for p in params])
    init = np.log([p[1] for p in params])
    starts = [x0] if x0 is not None else [init, init + np.log(0.3), init + np.log(3.0)]
    residuals = _residuals(Block(label, data, init, devices), base)
    best = None
    for start in starts:
        result = least_squares(residuals, np.clip(start, lo + 1e-6, hi - 1e-6), bounds=(lo, hi), loss="soft_l1",
                               f_scale=0.05, max_nfev=2000)
        if best is None or result.cost < best.cost:
            best = result
    return Block(label, data, best.x, devices)


def fit_group(data: OpRows, base: DeviceProfile) -> tuple[DeviceProfile, list[Block]]:
    """``base`` with the group's parameters fitted; the blocks that fitted them."""
    if data.group != "comm":
        block = fit_block(data.group, data, base)
        return block.apply(base), [block]
    pooled = fit_block("comm", data, replace(base, allreduce_by_devices=()))
    profile, blocks = pooled.apply(replace(base, allreduce_by_devices=())), [pooled]
    for n in np.unique(data.devices).astype(int):
        block = fit_block(f"comm n={n}", data.take(data.devices == n), profile, devices=int(n))
        profile = block.apply(profile)
        blocks.append(block)
    return profile, blocks


def estimates(block: Block, base: DeviceProfile, resamples: int, limits: dict | None = None) -> list[Estimate]:
    """Each parameter of ``block`` with its bootstrap interval, Jacobian log-sd and standing."""
    params, limits = block.params, limits or {}
    if block.data.group == "comm" and block.devices is None:  # the node-wide pair prices every count alone
        base = replace(base, allreduce_by_devices=())
    lo, hi = np.log([p[2] for p in params]), np.log([p[3] for p in params])
    at_bound = (block.theta - lo < 1e-3) | (hi - block.theta < 1e-3)
    sd = log_sd(_residuals(block, base), block.theta, ~at_bound)
    draws = None
    if resamples:
        clusters = clusters_for(block.data.series)
        draws = bootstrap(lambda idx: fit_block(block.label, block.data.take(idx), base, block.devices,
                                                x0=block.theta).theta, clusters, resamples)
        sd = np.fmax(sd, interval_log_sd(draws))
    out = []
    for i, (name, _, _, _, unit) in enumerate(params):
        value = float(np.exp(block.theta[i]))
        low, high = (None, None) if draws is None else (float(np.exp(np.quantile(draws[:, i], 0.025))),
                                                        float(np.exp(np.quantile(draws[:, i], 0.975))))
        label = name if block.devices is None else f"{name} (n={block.devices})"
        status = standing(block.theta[i], lo[i], hi[i], sd[i], value, limits.get(name))
        out.append(Estimate(label, value, unit, low, high, float(sd[i]), status))
    return out


def heldout(data: OpRows, base: DeviceProfile, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, str]:
    """Predictions of every row by a fit that never saw it: leave one source (model) out when there are two
    or more, else k-fold over series (rows when there are few)."""
    sources = np.unique(data.source)
    if len(sources) >= 2:
        keys, how = data.source, "leave one model out"
    else:
        clusters = clusters_for(data.series)
        labels, inverse = np.unique(clusters, return_inverse=True)
        keys = (np.random.default_rng(seed).permutation(len(labels)) % folds)[inverse].astype(str)
        how = f"{folds}-fold"
    pred = np.full(len(data), np.nan)
    for key in np.unique(keys):
        test = keys == key
        if test.all():
            continue
        profile, _ = fit_group(data.take(~test), base)
        pred[test] = predict(profile, data.take(test))
    return pred, how
