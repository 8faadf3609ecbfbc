"""Timing forward passes over a grid, appending each point as it is measured, resumable.

The device sits behind ``PassRunner``: ``TorchRunner`` times the engine's own
``Transformer.forward`` (the step ``generate`` calls, so what is calibrated is what runs);
``TransformersRunner`` times Hugging Face transformers' forward; tests pass fakes. A runner
raises ``OutOfMemory`` for a point the device cannot hold: the sweep records the limit and skips
points at least as large.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lattts.calibrate.grid import ANCHORS, Anchors, PassShape
from lattts.calibrate.measurements import Measurement, append, read
from lattts.models.spec import ModelSpec


class OutOfMemory(Exception):
    """The device could not hold this point (CUDA out-of-memory)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error (torch.cuda.OutOfMemoryError exists only in CUDA builds' namespace)."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


class PassRunner(Protocol):
    def time_pass(self, point: PassShape, repeats: int, warmup: int) -> list[float]: ...


def median_and_spread(times: list[float]) -> tuple[float, float]:
    """Median and spread (interquartile range / median) of repeated timings."""
    med = statistics.median(times)
    if len(times) < 4:
        return med, (max(times) - min(times)) / med
    q = statistics.quantiles(times, n=4)
    return med, (q[2] - q[0]) / med


class TorchRunner:
    """Times ``Transformer.forward`` of a random-weight model of one shape on one device."""

    def __init__(self, spec: ModelSpec, device: str = "cpu", dtype: str = "fp32", seed: int = 0, clock=None):
        import torch

        from lattts.dtypes import torch_dtype
        from lattts.engine.model import Transformer
        from lattts.engine.timing import clock_for

        self.torch = torch
        with torch.device(device):
            self.model = Transformer(spec, torch_dtype(dtype), device).init_random(seed).pack()
        self.clock = clock or clock_for(device)
        self.device = device
        self._cache = None

    @property
    def kernels(self) -> str:
        return self.model.kernels

    def _cache_for(self, point: PassShape):
        need = point.context + point.query
        c = self._cache
        if c is None or c.batch != point.batch or c.capacity < need:
            self._cache = None  # free the old one before allocating
            self._cache = self.model.new_cache(point.batch, need)
        return self._cache

    def time_pass(self, point: PassShape, repeats: int, warmup: int) -> list[float]:
        torch = self.torch
        try:
            cache = self._cache_for(point)
            tokens = torch.randint(0, self.model.spec.vocab_size, (point.batch, point.query), device=self.device)
            mode = "all" if point.logit_positions > 1 else "last"
            times = []
            with torch.inference_mode():
                for i in range(warmup + repeats):
                    cache.set_lengths([point.context] * point.batch)
                    start = self.clock.now()
                    self.model(tokens, cache, mode)
                    if i >= warmup:
                        times.append(self.clock.now() - start)
            return times
        except Exception as exc:
            if is_out_of_memory(exc):
                self._cache = None
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise OutOfMemory(str(exc).splitlines()[0]) from None
            raise


@dataclass
class SweepReport:
    measured: int  # points timed in this run
    oom: int  # points the device could not hold (recorded) or skipped because a smaller one failed
    rows: list[Measurement]


def _dominated(point: PassShape, limits: Iterable[PassShape]) -> bool:
    """A point needing at least the memory of a point that ran out of memory."""
    return any(point.batch >= o.batch and point.query >= o.query and point.context >= o.context for o in limits)


# The anchors (``grid.Anchors``) are decode steps of the first shape, timed between every two passes of
# every point. Through llama.cpp's server on a 2-core AMD EPYC VM (benchmarks/bench_anchor_pairing.py:
# 49 cycles of B=1, 4, 8 runs in 7 minutes) the runs' spans varied by cv 6.5-7.6%; divided by the
# one-row anchor just before them by 5.8-7.3%, by the mean of the anchors before and after by 4.5-6.4%.
QUIET_SPREAD = 0.15  # interquartile range / median of a point's (anchor-relative) times that needs no more pairs
MAX_ROUNDS = 2  # at most this many rounds of ``repeats`` pairs per point (calibration time at most doubles)


def run_sweep(shapes: list[ModelSpec], grid: list[PassShape], path: Path, make_runner: Callable[[ModelSpec], PassRunner],
              repeats: int = 7, warmup: int = 2, on_point: Callable[[ModelSpec, PassShape, float], None] | None = None,
              anchors: Anchors | None = ANCHORS) -> SweepReport:
    """Time every (shape, point) not yet in ``path``, appending as it goes; returns all rows.

    Points run smallest first, so an out-of-memory point marks a limit for the larger ones. With
    ``anchors`` (None: unpaired), each timed pass sits between two passes of a fixed anchor of its
    own kind (the first shape at ``anchors.of(point)``, on its own model and cache) and is taken
    relative to their mean, so drift can be divided out (``measurements.drift_corrected``); a point's
    last anchor opens the next point's pairs where that point has the same anchor. (The mean of the
    anchors either side follows a speed that changes within seconds better than the one before: see
    above.) ``on_point(shape, point, seconds_spent)`` reports progress.
    """
    existing = read(path) if path.exists() else []
    done = {m.key for m in existing}
    ooms = {(m.shape, m.batch, m.query_len, m.context_len) for m in existing if m.status == "oom"}
    measured = skipped = 0
    anchor = None

    def time_anchor(point: PassShape) -> float:
        return anchor.time_pass(point, 1, 0)[0]

    for spec in shapes:
        limits = [PassShape(b, q, s) for (name, b, q, s) in ooms if name == spec.name]
        todo = [p for p in sorted(grid, key=lambda p: (p.rows * (p.context + p.query), p.key))
                if (spec.name, *p.key) not in done]
        if not todo:
            continue
        if anchors is not None and anchor is None:
            anchor = make_runner(shapes[0])
            for kind in anchors.points:
                anchor.time_pass(kind, 0, warmup)
        runner, closing = make_runner(spec), None  # closing: (anchor, its last time) of the point before
        for point in todo:
            start = time.perf_counter()
            if _dominated(point, limits):
                skipped += 1
                if on_point:
                    on_point(spec, point, 0.0)
                continue
            own = anchors.of(point)
            try:
                runner.time_pass(point, 0, warmup)
                times = []
                refs = [] if anchor is None else [closing[1] if closing and closing[0] == own else time_anchor(own)]
                for _ in range(MAX_ROUNDS):  # a noisy point gets more pairs, a quiet one only ``repeats``
                    for _ in range(repeats):
                        times.append(runner.time_pass(point, 1, 0)[0])
                        if anchor is not None:
                            refs.append(time_anchor(own))
                    ratios = [t / ((a + b) / 2) for t, a, b in zip(times, refs, refs[1:])]
                    _, spread = median_and_spread(ratios or times)
                    if spread <= QUIET_SPREAD:
                        break
                med = statistics.median(times)
                rel = statistics.median(ratios) if refs else None
                append(path, Measurement(spec.name, point.batch, point.query, point.context, point.logit_positions, med,
                                         spread, len(times), "ok", time.time(),
                                         statistics.median(refs) if refs else None, rel))
                measured += 1
                closing = (own, refs[-1]) if refs else None
            except OutOfMemory:
                closing = None
                append(path, Measurement(spec.name, point.batch, point.query, point.context, point.logit_positions,
                                         float("nan"), 0.0, 0, "oom", time.time()))
                limits.append(point)
                skipped += 1
            if on_point:
                on_point(spec, point, time.perf_counter() - start)
        del runner
    return SweepReport(measured=measured, oom=skipped, rows=read(path))
