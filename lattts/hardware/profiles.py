"""Device profiles from the outside world: the measured GPU profiles lattts ships (fitted to Vidur's
kernel timings), a datasheet row times efficiencies, or a calibrated profile read from its JSON file.

``device_profile`` is what a prediction uses for a table row: the row's own measured profile (H100 SXM,
A100 SXM 80GB); else the row's datasheet figures times the efficiencies of its generation's measured
profile (H200 and H100 PCIe from the H100, A100 40GB from the A100); else times the mean efficiencies of
the measured profiles. ``datasheet_profile`` (datasheet times the stated defaults below) is what the
kernel data do not cover (attention, per-pass overhead) and what lattts predicted before them.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lattts.errors import UserError
from lattts.hardware.devices import DeviceSpec, find_device
from lattts.simulator.profile import AllReduceCost, DeviceProfile

# Stated default efficiencies of datasheet profiles, each with its reason (lattts/data/README.md,
# "reference measurements").
BANDWIDTH_EFFICIENCY = 0.90  # ~3.0 TB/s device-to-device copy measured on an H100 SXM against 3.35 datasheet
MATMUL_EFFICIENCY = 0.80  # ~798 of 989 TFLOP/s measured for a bf16 8192^3 matmul on an H100 SXM
ATTENTION_EFFICIENCY = 0.50  # assumption: fused attention kernels reach about half of matmul peak
PASS_OVERHEAD_S = 0.5e-3  # assumption: launch, sampling and scheduling per forward pass in a serving engine
CPU_USABLE_MEMORY_FRACTION = 0.80  # host RAM is shared with the OS, Python and the tokenizer: a lattts assumption
DEFAULT_GPU_DTYPE = "bf16"  # what GPU profiles and calibrations assume when no --dtype is given

MEASURED = ("h100-sxm", "a100-sxm-80gb")  # rows with a profile fitted to kernel timings, lattts/data/profiles/
HBM_FIELDS = ("weight_bw_bytes_per_s", "gemv_bw_bytes_per_s", "act_bw_bytes_per_s", "kv_bw_bytes_per_s",
              "elementwise_bw_bytes_per_s", "row_bw_bytes_per_s")  # scale with the datasheet memory bandwidth
FLOP_FIELDS = ("matmul_flops_per_s", "attn_flops_per_s")  # scale with the datasheet peak of the dtype


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


@lru_cache(maxsize=None)
def measured_profile(key: str) -> DeviceProfile | None:
    """The shipped profile of table row ``key`` fitted to kernel timings (lattts/data/profiles/), or None."""
    if key not in MEASURED:
        return None
    path = resources.files("lattts").joinpath("data", "profiles", f"{key}.json")
    return DeviceProfile.from_json(json.loads(path.read_text(encoding="utf-8")), source=f"lattts/data/profiles/{key}.json")


def scaled_profile(measured: DeviceProfile, target: DeviceSpec, dtype: str) -> DeviceProfile:
    """``measured``'s efficiencies on ``target``'s datasheet: rates scale with memory bandwidth, the dtype's
    peak and the interconnect; fixed times (per kernel, per pass, all-reduce latency) and the knee stay."""
    origin = find_device(measured.device_key)
    peak, origin_peak = target.flops_for(dtype), origin.flops_for(measured.dtype)
    if target.mem_bw_bytes_per_s is None or peak is None or target.memory_bytes is None:
        raise UserError(f"{target.name}: bandwidth and FLOP/s are unknown until calibrated; "
                        f"run `lattts calibrate --device cpu` (or pick a GPU with --device)")
    hbm = target.mem_bw_bytes_per_s / origin.mem_bw_bytes_per_s
    link = (target.interconnect_bytes_per_s or origin.interconnect_bytes_per_s) / origin.interconnect_bytes_per_s
    values = {k: getattr(measured, k) * hbm for k in HBM_FIELDS if getattr(measured, k) is not None}
    values.update({k: getattr(measured, k) * peak / origin_peak for k in FLOP_FIELDS})
    return replace(measured, name=target.name, device_key=target.key, dtype=dtype, memory_bytes=target.memory_bytes,
                   interconnect_bytes_per_s=measured.interconnect_bytes_per_s * link,
                   allreduce_by_devices=tuple(replace(c, bus_bytes_per_s=c.bus_bytes_per_s * link)
                                              for c in measured.allreduce_by_devices), **values)


def _geometric_mean(profiles: list[DeviceProfile]) -> DeviceProfile:
    """Field by field geometric mean of profiles of one device (all-reduce per-count entries both share)."""
    first, values = profiles[0], {}
    for f in fields(DeviceProfile):
        vals = [getattr(p, f.name) for p in profiles]
        if f.name != "memory_bytes" and all(isinstance(v, float) and v > 0 and math.isfinite(v) for v in vals):
            values[f.name] = math.exp(sum(math.log(v) for v in vals) / len(vals))
    counts = set.intersection(*({c.devices for c in p.allreduce_by_devices} for p in profiles))
    values["allreduce_by_devices"] = tuple(
        AllReduceCost(n, *(math.exp(sum(math.log(getattr(p.allreduce(n), a)) for p in profiles) / len(profiles))
                           for a in ("latency_s", "bus_bytes_per_s"))) for n in sorted(counts))
    return replace(first, **values)


def device_profile(device: DeviceSpec, dtype: str = DEFAULT_GPU_DTYPE) -> DeviceProfile:
    """The profile a prediction on table row ``device`` uses (see the module docstring), its source saying which."""
    if device.kind != "gpu":
        return datasheet_profile(device, dtype)
    own = measured_profile(device.key)
    if own is not None:
        return scaled_profile(own, device, dtype)  # the dtype's peak, the same row
    origin = measured_profile(device.efficiencies_from) if device.efficiencies_from else None
    datasheet = device.source.split(":")[0]
    if origin is not None:
        return replace(scaled_profile(origin, device, dtype), kind="datasheet",
                       source=f"{datasheet} x the efficiencies of the {origin.name} profile ({origin.source})",
                       provenance={"datasheet": device.source, "efficiencies_from": origin.device_key})
    mean = _geometric_mean([scaled_profile(measured_profile(k), device, dtype) for k in MEASURED])
    names = " and ".join(measured_profile(k).name for k in MEASURED)
    return replace(mean, kind="datasheet", provenance={"datasheet": device.source, "efficiencies_from": list(MEASURED)},
                   source=f"{datasheet} x the mean efficiencies of the {names} profiles fitted to Vidur kernel timings "
                          f"(no timings of this GPU's generation)")


def profile_basis(profile: DeviceProfile) -> str:
    """A few words on what a table row's profile rests on: measured, or datasheet times whose efficiencies."""
    origin = profile.provenance.get("efficiencies_from")
    if profile.kind == "measured":
        return f"measured: fitted to Vidur kernel timings ({profile.provenance.get('data', '').split(',')[0]})"
    if isinstance(origin, str):
        return f"datasheet x the {measured_profile(origin).name} efficiencies (measured)"
    if origin:
        return "datasheet x the mean of the measured " + " and ".join(measured_profile(k).name for k in origin) + " efficiencies"
    return f"datasheet x lattts default efficiencies ({BANDWIDTH_EFFICIENCY:.0%} bandwidth, {MATMUL_EFFICIENCY:.0%} matmul)"


def absolute_assumptions(profile: DeviceProfile) -> str | None:
    """What absolute latencies priced on ``profile`` assume when no calibration on the device stands
    behind them: its basis and effective rates against the datasheet's. None for a calibrated profile."""
    from lattts.units import format_duration, format_rate

    if profile.kind == "calibrated":
        return None
    try:
        spec = find_device(profile.device_key)
    except UserError:
        spec = None
    bw = spec.mem_bw_bytes_per_s if spec else None
    peak = spec.flops_for(profile.dtype) if spec else None
    rates = [f"weights streamed at {format_rate(profile.weight_bw_bytes_per_s, 'B')}"
             + (f" ({profile.weight_bw_bytes_per_s / bw:.0%} of the datasheet's {format_rate(bw, 'B')})" if bw else ""),
             f"matmuls at {format_rate(profile.matmul_flops_per_s, 'FLOP')}"
             + (f" ({profile.matmul_flops_per_s / peak:.0%} of {profile.dtype} peak)" if peak else "")]
    if peak:
        rates.append(f"attention at {profile.attn_flops_per_s / peak:.0%} of peak")
    rates.append(f"{format_duration(profile.pass_overhead_s)} fixed per pass")
    return (f"{profile.name} profile, {profile_basis(profile)}: {', '.join(rates)}; an ideal engine at these rates "
            f"(no scheduler, queueing, tokenizer or network time), not calibrated end to end on this hardware")


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
