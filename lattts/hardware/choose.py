"""Which device profile a prediction uses, and why.

Order: an explicit ``--profile FILE``; an explicit ``--device``; else a saved calibration of the
detected GPU, the detected GPU's table row, a saved calibration of this CPU (when the model fits in
its memory), and finally the H100 SXM. A table row's profile is ``hardware.profiles.device_profile``:
measured (fitted to Vidur's kernel timings) for the H100 SXM and A100 SXM 80GB, datasheet times a
measured generation's efficiencies for the rest. The reason is printed with the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lattts.errors import UserError
from lattts.hardware.cpu import CpuInfo, detect_cpu
from lattts.hardware.devices import find_device, match_nvml_name
from lattts.hardware.nvml import GpuInfo, NvmlUnavailable, query_gpus
from lattts.hardware.store import gpu_device_key, saved_profiles
from lattts.hardware.profiles import DEFAULT_GPU_DTYPE, device_profile, load_profile
from lattts.simulator.profile import DeviceProfile

FALLBACK_DEVICE = "h100-sxm"


@dataclass(frozen=True)
class Detection:
    gpus: tuple[GpuInfo, ...]
    nvml_error: str | None
    cpu: CpuInfo = field(default_factory=detect_cpu)


def detect(nvml: Any = None) -> Detection:
    try:
        return Detection(gpus=tuple(query_gpus(nvml)), nvml_error=None)
    except NvmlUnavailable as exc:
        return Detection(gpus=(), nvml_error=str(exc))


@dataclass(frozen=True)
class DeviceChoice:
    profile: DeviceProfile
    reason: str


def _saved(device_key: str) -> DeviceProfile | None:
    for path in saved_profiles(device_key):
        try:
            return load_profile(path)
        except UserError:
            continue  # a corrupted saved profile is skipped here; `lattts hardware` reports it
    return None


def choose_profile(device: str | None = None, profile_file: str | None = None, dtype: str | None = None,
                   fits: Callable[[DeviceProfile], bool] = lambda p: True,
                   detection: Detection | None = None) -> DeviceChoice:
    """The profile to predict with and a one-line reason."""
    gpu_dtype = dtype or DEFAULT_GPU_DTYPE
    if profile_file:
        return DeviceChoice(load_profile(profile_file), f"--profile {profile_file}")
    if device:
        spec = find_device(device)
        if spec.kind == "cpu":
            cpu = (detection or detect()).cpu
            saved = _saved(cpu.key)
            if saved is None:
                raise UserError(f"this CPU ({cpu.model}) has no calibration yet: its bandwidth and FLOP/s are "
                                f"unknown until measured; run `lattts calibrate --device cpu`")
            return DeviceChoice(saved, f"--device cpu: saved calibration of {cpu.model}")
        return DeviceChoice(device_profile(spec, gpu_dtype), f"--device {device}")

    detection = detection or detect()
    fallback = find_device(FALLBACK_DEVICE)
    if detection.gpus:
        gpu = detection.gpus[0]
        saved = _saved(gpu_device_key(gpu.name))
        if saved is not None:
            return DeviceChoice(saved, f"saved calibration of detected GPU 0 ({gpu.name})")
        row = match_nvml_name(gpu.name)
        if row is not None:
            return DeviceChoice(device_profile(row, gpu_dtype),
                                f"detected GPU 0 ({gpu.name}), not calibrated yet (`lattts calibrate --gpu 0` measures it)")
        return DeviceChoice(device_profile(fallback, gpu_dtype),
                            f"detected GPU 0 ({gpu.name}) is not in the device table and not calibrated; "
                            f"showing {fallback.name} instead (`lattts calibrate --gpu 0` measures yours)")
    why = f"no GPU detected ({detection.nvml_error})" if detection.nvml_error else "no GPU detected"
    saved = _saved(detection.cpu.key)
    if saved is not None:
        if fits(saved):
            return DeviceChoice(saved, f"{why}; saved calibration of this CPU ({detection.cpu.model})")
        why += f"; this CPU's calibration cannot hold the model in {saved.usable_memory_bytes / 1e9:.1f} GB"
    return DeviceChoice(device_profile(fallback, gpu_dtype), f"{why}; using the {fallback.name} profile")
