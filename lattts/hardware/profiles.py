"""Device profiles from the outside world: a datasheet row times stated efficiencies, or a
calibrated profile read from its JSON file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lattts.errors import UserError
from lattts.hardware.devices import DeviceSpec
from lattts.simulator.profile import DeviceProfile

# Stated default efficiencies of datasheet profiles, each with its reason (lattts/data/README.md,
# "reference measurements").
BANDWIDTH_EFFICIENCY = 0.90  # ~3.0 TB/s device-to-device copy measured on an H100 SXM against 3.35 datasheet
MATMUL_EFFICIENCY = 0.80  # ~798 of 989 TFLOP/s measured for a bf16 8192^3 matmul on an H100 SXM
ATTENTION_EFFICIENCY = 0.50  # assumption: fused attention kernels reach about half of matmul peak
PASS_OVERHEAD_S = 0.5e-3  # assumption: launch, sampling and scheduling per forward pass in a serving engine
CPU_USABLE_MEMORY_FRACTION = 0.80  # host RAM is shared with the OS, Python and the tokenizer: a lattts assumption
DEFAULT_GPU_DTYPE = "bf16"  # what GPU profiles and calibrations assume when no --dtype is given


def datasheet_profile(device: DeviceSpec, dtype: str = DEFAULT_GPU_DTYPE) -> DeviceProfile:
    """Datasheet peaks times the stated default efficiencies (see the constants above)."""
    peak = device.flops_for(dtype)
    if device.mem_bw_bytes_per_s is None or peak is None or device.memory_bytes is None:
        raise UserError(f"{device.name}: bandwidth and FLOP/s are unknown until calibrated; "
                        f"run `lattts calibrate --device cpu` (or pick a GPU with --device)")
    bw = device.mem_bw_bytes_per_s * BANDWIDTH_EFFICIENCY
    return DeviceProfile(
        name=device.name, kind="datasheet", device_key=device.key, dtype=dtype,
        source=f"{device.source.split(':')[0]} x lattts default efficiencies ({BANDWIDTH_EFFICIENCY:.0%} bandwidth, "
               f"{MATMUL_EFFICIENCY:.0%} matmul, {ATTENTION_EFFICIENCY:.0%} attention)",
        memory_bytes=device.memory_bytes, weight_bw_bytes_per_s=bw, gemv_bw_bytes_per_s=bw,
        act_bw_bytes_per_s=bw, kv_bw_bytes_per_s=bw, matmul_flops_per_s=peak * MATMUL_EFFICIENCY,
        attn_flops_per_s=peak * ATTENTION_EFFICIENCY, pass_overhead_s=PASS_OVERHEAD_S, layer_overhead_s=0.0,
        interconnect_bytes_per_s=device.interconnect_bytes_per_s,
        provenance={"device_key": device.key, "datasheet": device.source},
    )


def load_profile(path: str | Path) -> DeviceProfile:
    """Read a profile JSON; a missing, corrupted or foreign file raises a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"profile file {path} does not exist; create it with `lattts calibrate --out {path}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"profile file {path} is corrupted (not valid JSON: {exc}); recalibrate with `lattts calibrate`") from None
    profile = DeviceProfile.from_json(data, source=str(path))
    return replace(profile, source=f"calibration file {path}")
