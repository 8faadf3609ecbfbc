"""The accelerator table: datasheet peaks per device, each row with its source."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from lattts.errors import UserError, suggest

GIB = 1024 ** 3


@dataclass(frozen=True)
class DeviceSpec:
    """Datasheet figures of one device; None where the datasheet has no number (the host CPU)."""

    key: str
    name: str
    kind: str  # 'gpu' or 'cpu'
    peak_flops: dict  # dtype -> FLOP/s (dense, no sparsity)
    mem_bw_bytes_per_s: float | None
    memory_bytes: float | None
    interconnect_bytes_per_s: float | None
    nvml_match: str
    aliases: tuple[str, ...]
    source: str
    efficiencies_from: str = ""  # the measured row whose efficiencies this one takes (same generation); '' none

    def flops_for(self, dtype: str) -> float | None:
        """Peak FLOP/s for a dtype ('bf16', 'fp16', 'fp32'); fp8 is not tabulated and falls back to bf16."""
        return self.peak_flops.get(dtype) or (self.peak_flops.get("bf16") if dtype == "fp8" else None)

    def matches_nvml_name(self, nvml_name: str) -> bool:
        return bool(self.nvml_match) and re.search(self.nvml_match, nvml_name, re.IGNORECASE) is not None


def _num(text: str, scale: float) -> float | None:
    return float(text) * scale if text.strip() else None


@lru_cache(maxsize=1)
def device_table() -> tuple[DeviceSpec, ...]:
    path = resources.files("lattts").joinpath("data", "devices.csv")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = []
    for r in rows:
        flops = {d: _num(r[f"{d}_tflops"], 1e12) for d in ("bf16", "fp16", "fp32")}
        table.append(DeviceSpec(
            key=r["key"], name=r["name"], kind=r["kind"],
            peak_flops={k: v for k, v in flops.items() if v is not None},
            mem_bw_bytes_per_s=_num(r["mem_bw_gb_s"], 1e9), memory_bytes=_num(r["memory_gib"], GIB),
            interconnect_bytes_per_s=_num(r["interconnect_gb_s"], 1e9), nvml_match=r["nvml_match"],
            aliases=tuple(a for a in r["aliases"].split(";") if a), source=r["source"],
            efficiencies_from=r.get("efficiencies_from") or "",
        ))
    return tuple(table)


def find_device(name: str) -> DeviceSpec:
    """The table row whose key, name or alias equals ``name`` (any case, '-'/'_'/' ' alike)."""
    def norm(s: str) -> str:
        return re.sub(r"[\s_\-]+", "", s.lower())

    wanted = norm(name)
    for dev in device_table():
        if wanted in {norm(dev.key), norm(dev.name), *(norm(a) for a in dev.aliases)}:
            return dev
    keys = [d.key for d in device_table()]
    raise UserError(f"unknown device {name!r}{suggest(name, keys)}; known: {', '.join(keys)} "
                    f"(or pass a calibrated profile with --profile FILE)")


def match_nvml_name(nvml_name: str) -> DeviceSpec | None:
    """The table row for a GPU name as NVML reports it, or None if the GPU is not tabulated."""
    for dev in device_table():
        if dev.kind == "gpu" and dev.matches_nvml_name(nvml_name):
            return dev
    return None
