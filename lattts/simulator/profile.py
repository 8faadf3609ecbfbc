"""Device profiles: the handful of effective rates the roofline needs.

A profile describes a device, not a model: the same profile predicts any ModelSpec. Three kinds
plug in through the same dataclass: measured profiles (fitted to published kernel timings, shipped
with lattts), datasheet profiles (peaks times efficiencies) and calibrated ones written by
``lattts calibrate``; ``lattts.hardware.profiles`` makes and reads them.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from lattts.errors import UserError

PROFILE_SCHEMA = "lattts.profile/1"

USABLE_MEMORY_FRACTION = 0.90  # vLLM's default gpu_memory_utilization: the rest is workspace and activations
ALLREDUCE_LATENCY_S = 10e-6  # assumption: small-message all-reduce latency over NVLink/PCIe (NCCL)
# Kernels per decoder layer of a serving engine (vLLM, and Vidur's profiles of it): fused QKV, O, fused
# gate+up and down matmuls; input and post-attention RMSNorm, RoPE, SiLU*mul and two residual adds.
MATMUL_KERNELS_PER_LAYER = 4
ELEMENTWISE_KERNELS_PER_LAYER = 6


@dataclass(frozen=True)
class AllReduceCost:
    """All-reduce over ``devices`` devices: latency_s + 2(n-1)/n x bytes / bus_bytes_per_s per call (ring form)."""

    devices: int
    latency_s: float
    bus_bytes_per_s: float


@dataclass(frozen=True)
class DeviceProfile:
    """Effective rates of one device at one dtype. SI units: bytes/s, FLOP/s, seconds, bytes."""

    name: str
    source: str
    kind: str  # 'measured', 'datasheet' or 'calibrated'
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
    request_overhead_s: float = 0.0  # a serving engine's fixed cost per request beside its passes (HTTP, slot set-up)
    seq_overhead_s: float = 0.0  # fixed cost per sequence per pass (a server's per-slot work: sampling, bookkeeping)
    usable_memory_fraction: float = USABLE_MEMORY_FRACTION
    interconnect_bytes_per_s: float | None = None  # all-reduce bus bandwidth of the ring form (bytes/s)
    allreduce_latency_s: float = ALLREDUCE_LATENCY_S
    # Per-device-count all-reduce costs where they differ from the two fields above (the path changes with n).
    allreduce_by_devices: tuple[AllReduceCost, ...] = ()
    # Fixed GPU time per kernel, whatever its size (pipeline ramp-up and tail, prologue, epilogue); 0 on a
    # profile whose per-layer fixed cost is layer_overhead_s (CPU calibrations).
    matmul_kernel_s: float = 0.0
    matmul_kernels_per_layer: int = MATMUL_KERNELS_PER_LAYER
    elementwise_kernel_s: float = 0.0
    elementwise_kernels_per_layer: int = ELEMENTWISE_KERNELS_PER_LAYER
    elementwise_bw_bytes_per_s: float | None = None  # norms, RoPE, activation, residual adds; None: act_bw
    # One token row per thread block: until the GPU fills, an element-wise kernel takes a row's bytes over
    # this rate, whatever the number of rows. None: no such floor.
    row_bw_bytes_per_s: float | None = None
    # Measured over modelled matmul time by token rows per pass, ((rows, factor), ...): the kernel a
    # library picks changes with the rows (llama.cpp's CPU matmuls: one kernel per row up to a few rows,
    # a tiled GEMM above), which no smooth rate follows. Fitted from a calibration's own points,
    # interpolated in log2(rows), held constant past the measured rows; empty: no correction.
    matmul_rows_factor: tuple[tuple[float, float], ...] = ()
    provenance: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def usable_memory_bytes(self) -> float:
        return self.memory_bytes * self.usable_memory_fraction

    @property
    def elementwise_bw(self) -> float:
        """Element-wise kernels' streaming rate (bytes/s): its own field, else the activation rate."""
        return self.elementwise_bw_bytes_per_s or self.act_bw_bytes_per_s

    def allreduce(self, devices: int) -> AllReduceCost:
        """The all-reduce cost over ``devices`` devices: a per-count entry if one exists, else the profile's pair."""
        for cost in self.allreduce_by_devices:
            if cost.devices == devices:
                return cost
        link = self.interconnect_bytes_per_s or self.act_bw_bytes_per_s
        return AllReduceCost(devices, self.allreduce_latency_s, link)

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
        """A profile from its JSON; fields added since a file was written take their defaults."""
        if not isinstance(data, dict) or data.get("schema") != PROFILE_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise UserError(f"{source} is not a lattts device profile (schema {found!r}, expected {PROFILE_SCHEMA!r}); "
                            f"create one with `lattts calibrate`")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = [n for n in required if n not in data]
        if missing:
            raise UserError(f"{source}: profile lacks {', '.join(sorted(missing))}; recalibrate with `lattts calibrate`")
        kwargs = {k: v for k, v in data.items() if k in names}
        if kwargs.get("knee_sharpness") is None:
            kwargs["knee_sharpness"] = math.inf
        for key in ("weight_bw_bytes_per_s", "gemv_bw_bytes_per_s", "act_bw_bytes_per_s", "kv_bw_bytes_per_s",
                    "matmul_flops_per_s", "attn_flops_per_s", "memory_bytes"):
            _check(kwargs[key], source, key, positive=True)
        for key in ("pass_overhead_s", "layer_overhead_s", "matmul_kernel_s", "elementwise_kernel_s",
                    "sample_call_s", "sample_s_per_logit", "request_overhead_s", "seq_overhead_s"):
            _check(kwargs.get(key, 0.0), source, key, positive=False)
        for key in ("elementwise_bw_bytes_per_s", "row_bw_bytes_per_s"):
            if kwargs.get(key) is not None:
                _check(kwargs[key], source, key, positive=True)
        try:
            kwargs["allreduce_by_devices"] = tuple(AllReduceCost(int(c["devices"]), float(c["latency_s"]),
                                                                 float(c["bus_bytes_per_s"]))
                                                   for c in kwargs.get("allreduce_by_devices") or ())
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{source}: allreduce_by_devices must list devices, latency_s and bus_bytes_per_s; "
                            f"the file is corrupted") from None
        try:
            kwargs["matmul_rows_factor"] = tuple((float(r), float(f)) for r, f in kwargs.get("matmul_rows_factor") or ())
        except (TypeError, ValueError):
            raise UserError(f"{source}: matmul_rows_factor must list (rows, factor) pairs; the file is corrupted") from None
        if any(r < 1 or not f > 0 for r, f in kwargs["matmul_rows_factor"]):
            raise UserError(f"{source}: matmul_rows_factor needs rows >= 1 and positive factors; the file is corrupted")
        return cls(**kwargs)


def _check(value, source: str, key: str, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        kind = "a positive" if positive else "a non-negative"
        raise UserError(f"{source}: {key} must be {kind} number, got {value!r}; the file is corrupted")
