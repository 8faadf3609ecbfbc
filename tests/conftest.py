"""Shared fixtures: every test gets its own lattts data directory, so nothing a test saves
(profiles, calibrations) leaks into the user's or into another test; downloads are shared."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def shared_download_cache(tmp_path_factory):
    """Downloads (SmolLM2, converted GGUFs, self-drafts) once per session: they are content-addressed,
    so sharing them leaks no state between tests."""
    import os

    os.environ["LATTTS_CACHE"] = str(tmp_path_factory.mktemp("lattts-cache"))
    yield
    os.environ.pop("LATTTS_CACHE", None)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "lattts-home"
    monkeypatch.setenv("LATTTS_HOME", str(home))
    return home


class FakeNvml:
    """Stands in for pynvml: the functions lattts calls, answering from a list of GPUs."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, gpus=(), init_error=None, driver="550.54.15"):
        self.gpus = list(gpus)
        self.init_error = init_error
        self.driver = driver

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.gpus[i]

    def nvmlDeviceGetName(self, h):
        return h["name"]

    def nvmlDeviceGetUUID(self, h):
        return h.get("uuid", "GPU-00000000-0000-0000-0000-000000000000")

    def nvmlDeviceGetMemoryInfo(self, h):
        class Mem:
            total = h["memory"]
            free = h.get("free", h["memory"])
        return Mem()

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return {1: 1980, 2: 2619}[clock]


def nvml_error(name: str) -> Exception:
    """An exception whose class name is pynvml's (pynvml builds NVMLError_* classes at run time)."""
    return type(name, (Exception,), {})("fake")


@pytest.fixture
def fake_nvml():
    return FakeNvml
