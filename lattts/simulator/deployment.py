"""Where a model runs: a device profile, the number format of its weights and KV cache, and how
many devices share it (tensor parallelism). One value passed through the simulator, so no function
re-resolves a dtype or a device count of its own."""

from __future__ import annotations

from dataclasses import dataclass

from lattts.dtypes import bytes_per_value, canonical_dtype
from lattts.simulator.profile import DeviceProfile


@dataclass(frozen=True)
class Deployment:
    """A device profile, a canonical dtype ('bf16', 'fp32', ...) and a tensor-parallel device count."""

    profile: DeviceProfile
    dtype: str
    devices: int = 1

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
