"""Timings of single op groups, the unit the simulator prices: matmul kernels ('linear'), element-wise
kernels ('elementwise') and all-reduces ('comm'), each row with its work counted the simulator's way.

Rows come from Vidur's per-op profiles (``vidur.py``) or from lattts' own timings CSV with a ``group``
column (``from_measurements``). ``predict`` prices them with the simulator's own group functions
(``lattts.simulator.roofline``), so what is fitted is what predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.roofline import allreduce_time, elementwise_time, linear_time, pass_work

GROUPS = ("linear", "elementwise", "comm")
REGIMES = ((16, "N 1-16"), (63, "N 17-63"), (256, "N 64-256"), (1023, "N 257-1023"), (np.inf, "N >= 1024"))


def regime(tokens) -> np.ndarray:
    """The token-count band of each row: decode (1-16), verify passes (64-256), prefill (>= 1024), between."""
    tokens = np.asarray(tokens, dtype=float)
    out = np.empty(tokens.shape, dtype=object)
    for top, name in reversed(REGIMES):
        out[tokens <= top] = name
    return out.astype(str)


@dataclass(frozen=True)
class OpRows:
    """Measured rows of one op group, as arrays of equal length.

    linear: ``kernels`` matmul kernels moving ``nbytes`` of weights and ``act_bytes`` of activations
    and doing ``flops``, on ``rows`` token rows. elementwise: ``kernels`` kernels moving ``nbytes`` over
    ``rows`` token rows. comm: ``kernels`` all-reduce calls moving ``nbytes`` in all over ``devices``.
    ``source`` names where a row came from (model or shape), ``op`` the kernel or group, ``series``
    the rows measured as one curve (resampled together by the bootstrap).
    """

    group: str
    time_s: np.ndarray
    kernels: np.ndarray
    nbytes: np.ndarray
    rows: np.ndarray
    devices: np.ndarray
    source: np.ndarray
    op: np.ndarray
    act_bytes: np.ndarray | None = None
    flops: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time_s)

    def take(self, index) -> "OpRows":
        """The rows at ``index`` (a boolean mask or integer positions)."""
        pick = (lambda a: None if a is None else np.asarray(a)[index])
        return OpRows(self.group, *(pick(getattr(self, f)) for f in
                                    ("time_s", "kernels", "nbytes", "rows", "devices", "source", "op",
                                     "act_bytes", "flops")))

    @property
    def series(self) -> np.ndarray:
        return np.char.add(np.char.add(self.source, "|tp"), self.devices.astype(int).astype(str)) + "|" + self.op

    @property
    def cells(self) -> np.ndarray:
        """Series by token band: the fit weighs each cell alike, so 5 decode rows count as much as 150 prefill rows."""
        return self.series + "|" + (regime(self.rows) if self.group != "comm" else self.nbytes.astype(str))


def concat(parts: list[OpRows]) -> OpRows:
    """One OpRows from several of the same group."""
    first = parts[0]
    joined = {f: (None if getattr(first, f) is None else np.concatenate([getattr(p, f) for p in parts]))
              for f in ("time_s", "kernels", "nbytes", "rows", "devices", "source", "op", "act_bytes", "flops")}
    return OpRows(first.group, **joined)


def predict(profile: DeviceProfile, data: OpRows) -> np.ndarray:
    """Predicted seconds of every row, by the simulator's group functions."""
    if data.group == "linear":
        return linear_time(profile, data.kernels, data.nbytes, data.act_bytes, data.flops, data.rows)[0]
    if data.group == "elementwise":
        return elementwise_time(profile, data.kernels, data.nbytes, data.rows)
    out = np.empty(len(data))
    for n in np.unique(data.devices):
        at = data.devices == n
        out[at] = allreduce_time(profile, int(n), data.kernels[at], data.nbytes[at])
    return out


def from_pass_groups(spec: ModelSpec, deploy: Deployment, group: str, batch, query, context, time_s) -> OpRows:
    """Rows that time one group of whole passes of ``spec`` (lattts' CSV with a ``group`` column)."""
    b, q, s = (np.asarray(x, dtype=float) for x in (batch, query, context))
    work = pass_work(spec, deploy, b, q, s)
    profile, L, n = deploy.profile, spec.n_layers, np.full(b.shape, float(deploy.devices))
    label = np.full(b.shape, spec.name)
    if group == "linear":
        kernels = np.full(b.shape, L * profile.matmul_kernels_per_layer + (1.0 if spec.fusion_params else 0.0))
        return OpRows("linear", np.asarray(time_s, float), kernels, np.full(b.shape, work.linear_weight_bytes),
                      work.rows, n, label, np.full(b.shape, "linear"), work.linear_act_bytes, work.linear_flops)
    if group == "elementwise":
        kernels = np.full(b.shape, L * profile.elementwise_kernels_per_layer + 1.0)
        return OpRows("elementwise", np.asarray(time_s, float), kernels, work.elementwise_bytes, work.rows, n, label,
                      np.full(b.shape, "elementwise"))
    return OpRows("comm", np.asarray(time_s, float), np.full(b.shape, 2.0 * L), work.comm_bytes, work.rows, n, label,
                  np.full(b.shape, "comm"))
