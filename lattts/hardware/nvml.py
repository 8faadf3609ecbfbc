"""The GPU behind a small interface: NVML queries with typed errors, replaceable in tests.

``query_gpus()`` returns what NVML says about every GPU, ``free_memory_bytes(i)`` the memory GPU i has
left now (what a live run may still allocate); ``NvmlUnavailable`` carries one line
saying why there is no answer (no driver library, driver not loaded, no permission, ...). Tests
pass a fake module with the same functions as ``pynvml``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any


class NvmlUnavailable(Exception):
    """NVML could not be used; the message says why in one line."""


@dataclass(frozen=True)
class GpuInfo:
    """What NVML reports about one GPU."""

    index: int
    name: str
    uuid: str
    memory_bytes: int
    driver: str
    sm_clock_max_mhz: int | None
    mem_clock_max_mhz: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_REASONS = {
    "NVMLError_LibraryNotFound": "the NVIDIA driver library (libnvidia-ml) was not found: no NVIDIA GPU or driver on this machine",
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded",
    "NVMLError_NoPermission": "no permission to query the GPU through NVML",
    "NVMLError_Uninitialized": "NVML is not initialised",
    "NVMLError_GpuIsLost": "the GPU fell off the bus or is otherwise inaccessible",
    "NVMLError_Unknown": "NVML reported an unknown error",
}


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    return _REASONS.get(name, f"NVML failed: {name}: {exc}")


def _load_pynvml():
    try:
        import pynvml
    except ImportError as exc:  # nvidia-ml-py is a dependency, so this is a broken install
        raise NvmlUnavailable(f"the nvidia-ml-py package is not importable ({exc}); reinstall lattts") from None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def _session(nvml: Any):
    """An initialised NVML (pynvml, or a fake with its functions) for the block, shut down after it; any
    NVML error inside, the init's included, becomes NvmlUnavailable with its reason."""
    nvml = nvml or _load_pynvml()
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml raises dynamically created NVMLError_* subclasses
        raise NvmlUnavailable(_reason(exc)) from None
    try:
        yield nvml
    except NvmlUnavailable:
        raise
    except Exception as exc:
        raise NvmlUnavailable(_reason(exc)) from None
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def query_gpus(nvml: Any = None) -> list[GpuInfo]:
    """Every GPU NVML sees. Raises NvmlUnavailable with the reason when NVML cannot answer."""
    with _session(nvml) as nvml:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            clocks = []
            for clock in (getattr(nvml, "NVML_CLOCK_SM", 1), getattr(nvml, "NVML_CLOCK_MEM", 2)):
                try:
                    clocks.append(int(nvml.nvmlDeviceGetMaxClockInfo(handle, clock)))
                except Exception:
                    clocks.append(None)
            gpus.append(GpuInfo(
                index=index, name=_text(nvml.nvmlDeviceGetName(handle)), uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                memory_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total), driver=driver,
                sm_clock_max_mhz=clocks[0], mem_clock_max_mhz=clocks[1],
            ))
        return gpus


def free_memory_bytes(index: int, nvml: Any = None) -> int:
    """Bytes of GPU ``index``'s memory not allocated now, by any process. Raises NvmlUnavailable."""
    with _session(nvml) as nvml:
        return int(nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(index)).free)
