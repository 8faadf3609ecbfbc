"""What this machine's CPU is: model, cores, threads, memory (no torch, no external tools)."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import asdict, dataclass
from typing import Any

from lattts.hardware.store import slug


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int
    threads: int
    memory_bytes: int | None
    flags: tuple[str, ...]

    @property
    def key(self) -> str:
        """A stable, file-name-safe key for this CPU: model and thread count."""
        return f"cpu-{slug(self.model) or 'cpu'}-{self.threads}t"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = [f for f in self.flags if f in ("avx2", "avx512f", "amx_tile", "fma", "f16c", "avx512_bf16")]
        d["key"] = self.key
        return d


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def detect_cpu() -> CpuInfo:
    info = _read("/proc/cpuinfo")
    blocks = [dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines()))
              for block in info.split("\n\n") if block.strip()]
    first = blocks[0] if blocks else {}
    model = first.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    flags = first.get("flags", "").split()
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = len({(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}) or threads
    mem = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    return CpuInfo(model=model, cores=min(cores, threads), threads=threads,
                   memory_bytes=int(mem.group(1)) * 1024 if mem else None, flags=tuple(flags))


def available_memory_bytes() -> int | None:
    """Bytes this process could still allocate without swapping: the kernel's MemAvailable, or the
    cgroup's remaining limit when that is lower (a container); None when neither can be read."""
    found = re.search(r"MemAvailable:\s+(\d+) kB", _read("/proc/meminfo"))
    avail = int(found.group(1)) * 1024 if found else None
    if avail is None and hasattr(os, "sysconf"):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            avail = None
    limit, used = _read("/sys/fs/cgroup/memory.max").strip(), _read("/sys/fs/cgroup/memory.current").strip()
    if limit.isdigit() and used.isdigit():
        left = max(int(limit) - int(used), 0)
        avail = left if avail is None else min(avail, left)
    return avail
