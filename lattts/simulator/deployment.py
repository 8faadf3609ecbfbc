"""Where a model runs: a device profile, the number format of its weights and KV cache, how many
devices share it (tensor parallelism), and how fast the device runs now against its profile. One
value passed through the simulator, so no function re-resolves a dtype or a device count of its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattts.dtypes import bytes_per_value, canonical_dtype
from lattts.simulator.profile import DeviceProfile


@dataclass(frozen=True)
class DeviceSpeed:
    """Time of the device's passes now over their time in its profile (1.0: as calibrated), per kind.

    A pass of one token row runs a vector kernel (on a CPU, bound by memory latency), a pass of more
    rows a blocked matmul; another tenant of the host can slow one kind and not the other (through
    llama.cpp's server on a 2-core Intel VM, runs of B = 4 and 8 varied by cv 0.9% alone and 2.3-2.5%
    divided by a one-row anchor: ``benchmarks/bench_anchor_rows.py``). Work outside passes (sampling, a
    request's HTTP) is serial too, and moves with the one-row kind. Validation sets it from its anchors."""

    one_row: float = 1.0
    rows: float = 1.0

    def at(self, rows):
        """The factor for passes of ``rows`` token rows (array)."""
        return np.where(np.asarray(rows) <= 1.0, self.one_row, self.rows)


AS_PROFILED = DeviceSpeed()


@dataclass(frozen=True)
class Deployment:
    """A device profile, a canonical dtype ('bf16', 'fp32', ...), a tensor-parallel device count, and
    the device's current speed against the profile (``DeviceSpeed``; as profiled unless validation
    measured it)."""

    profile: DeviceProfile
    dtype: str
    devices: int = 1
    speed: DeviceSpeed = AS_PROFILED

    @classmethod
    def on(cls, profile: DeviceProfile, dtype: str | None = None, devices: int = 1) -> "Deployment":
        """A deployment on ``profile`` in ``dtype`` (default: the profile's own)."""
        return cls(profile=profile, dtype=canonical_dtype(dtype or profile.dtype), devices=int(devices))

    @property
    def bytes_per_value(self) -> int:
        return bytes_per_value(self.dtype)

    @property
    def usable_memory_bytes(self) -> float:
        """Memory for weights and KV cache over all devices (bytes)."""
        return self.profile.usable_memory_bytes * self.devices
