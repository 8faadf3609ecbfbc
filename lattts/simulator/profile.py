"""Device profiles: the handful of effective rates the roofline needs.

A profile describes a device, not a model: the same profile predicts any ModelSpec. Two kinds
plug in through the same dataclass: datasheet profiles (peaks times stated efficiencies) and
calibrated ones written by ``lattts calibrate``; ``lattts.hardware.profiles`` makes and reads both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lattts.errors import UserError

PROFILE_SCHEMA = "lattts.profile/1"

USABLE_MEMORY_FRACTION = 0.90  # vLLM's default gpu_memory_utilization: the rest is workspace and activations
ALLREDUCE_LATENCY_S = 10e-6  # assumption: small-message all-reduce latency over NVLink/PCIe (NCCL)


@dataclass(frozen=True)
class DeviceProfile:
    """Effective rates of one device at one dtype. SI units: bytes/s, FLOP/s, seconds, bytes."""

    name: str
    source: str
    kind: str  # 'datasheet' or 'calibrated'
    device_key: str
    dtype: str
    memory_bytes: float
    weight_bw_bytes_per_s: float  # streaming matmul weights when a pass has 2+ token rows
    gemv_bw_bytes_per_s: float  # streaming matmul weights with a single token row (GEMV path)
    act_bw_bytes_per_s: float  # activations: matmul inputs/outputs, norms, residuals
    kv_bw_bytes_per_s: float  # reading and writing the KV cache in attention
    matmul_flops_per_s: float
    attn_flops_per_s: float
    pass_overhead_s: float  # fixed cost of one forward pass (launches, Python, sampling)
    layer_overhead_s: float  # fixed cost per decoder layer per pass
    knee_sharpness: float = math.inf  # p in (mem^p + compute^p)^(1/p) for matmuls; inf = roofline max
    sample_call_s: float = 0.0  # engine's cost of one sampling call (probabilities, draw), outside passes
    sample_s_per_logit: float = 0.0  # and per logit it processes (rows x vocabulary)
    usable_memory_fraction: float = USABLE_MEMORY_FRACTION
    interconnect_bytes_per_s: float | None = None
    allreduce_latency_s: float = ALLREDUCE_LATENCY_S
    provenance: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def usable_memory_bytes(self) -> float:
        return self.memory_bytes * self.usable_memory_fraction

    @property
    def ridge_flop_per_byte(self) -> float:
        """Arithmetic intensity where matmuls turn compute-bound (FLOP per weight byte)."""
        return self.matmul_flops_per_s / self.weight_bw_bytes_per_s

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["knee_sharpness"] = None if math.isinf(self.knee_sharpness) else self.knee_sharpness
        return {"schema": PROFILE_SCHEMA, **body}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "profile") -> "DeviceProfile":
        if not isinstance(data, dict) or data.get("schema") != PROFILE_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise UserError(f"{source} is not a lattts device profile (schema {found!r}, expected {PROFILE_SCHEMA!r}); "
                            f"create one with `lattts calibrate`")
        names = {f.name for f in fields(cls)}
        missing = [n for n in names if n not in data and n not in ("provenance", "knee_sharpness",
                   "usable_memory_fraction", "interconnect_bytes_per_s", "allreduce_latency_s", "sample_call_s",
                   "sample_s_per_logit")]
        if missing:
            raise UserError(f"{source}: profile lacks {', '.join(sorted(missing))}; recalibrate with `lattts calibrate`")
        kwargs = {k: v for k, v in data.items() if k in names}
        if kwargs.get("knee_sharpness") is None:
            kwargs["knee_sharpness"] = math.inf
        for key in ("weight_bw_bytes_per_s", "gemv_bw_bytes_per_s", "act_bw_bytes_per_s", "kv_bw_bytes_per_s",
                    "matmul_flops_per_s", "attn_flops_per_s", "memory_bytes"):
            value = kwargs[key]
            if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise UserError(f"{source}: {key} must be a positive number, got {value!r}; the file is corrupted")
        for key in ("pass_overhead_s", "layer_overhead_s"):
            if not isinstance(kwargs[key], (int, float)) or kwargs[key] < 0:
                raise UserError(f"{source}: {key} must be a non-negative number, got {kwargs[key]!r}")
        return cls(**kwargs)
