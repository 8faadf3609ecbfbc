"""The clock the engine reads around every forward pass, behind a small interface.

On CPU a pass is finished when the call returns; on CUDA the clock synchronises the device
first, so a time covers the kernels and not just their launch. Tests substitute their own clock.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Protocol

import torch


class Clock(Protocol):
    def now(self) -> float: ...


class HostClock:
    """Wall time on the host; right for CPU execution."""

    def now(self) -> float:
        return time.perf_counter()


class CudaClock:
    """Wall time after ``torch.cuda.synchronize``: every queued kernel has finished."""

    def __init__(self, device: torch.device):
        self.device = device

    def now(self) -> float:
        torch.cuda.synchronize(self.device)
        return time.perf_counter()


def clock_for(device: torch.device | str) -> Clock:
    device = torch.device(device)
    return CudaClock(device) if device.type == "cuda" else HostClock()


def median_seconds(fn: Callable[[], object], repeats: int, clock: Clock | None = None,
                   pick: Callable[[list[float]], float] = statistics.median) -> float:
    """Median (or ``pick``, e.g. ``min`` for a best rate) time of ``fn`` over ``repeats`` calls after
    one warm-up, read on ``clock`` (the host's by default; a ``CudaClock`` counts the kernels a call
    queued)."""
    clock = clock or HostClock()
    fn()
    times = []
    for _ in range(repeats):
        start = clock.now()
        fn()
        times.append(clock.now() - start)
    return pick(times)
