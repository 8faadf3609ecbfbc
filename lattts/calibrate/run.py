"""A calibration from start to finish: pick shapes and points for the device, time them
(resumably), fit a profile, measure how well it predicts, and save it with its provenance."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lattts import __version__
from lattts.calibrate.fit import (PARAMETERS, SERVER_PARAMETERS, ShapeData, cross_model_errors, fit_profile,
                                  fit_rows_factor, heldout_errors, heldout_errors_by_rows_factor, relative_errors,
                                  summary)
from lattts.calibrate.grid import ANCHORS, Anchors, PassShape, cpu_grid, gpu_grid
from lattts.calibrate.machine import fit_limits, measure_machine
from lattts.calibrate.measurements import Measurement, drift_corrected, read
from lattts.calibrate.sweep import PassRunner, run_sweep
from lattts.engine.fetch import sha256
from lattts.errors import UserError
from lattts.hardware.store import profile_path
from lattts.models.spec import ModelSpec
from lattts.paths import data_dir, write_json_atomic
from lattts.hardware.profiles import CPU_USABLE_MEMORY_FRACTION
from lattts.simulator.profile import USABLE_MEMORY_FRACTION, DeviceProfile

REPEATS = {True: 4, False: 7}  # timed passes per point, quick or full


@dataclass(frozen=True)
class Target:
    """The device being calibrated and what identifies it."""

    device: str  # torch device string: 'cpu' or 'cuda:N'
    key: str  # saved-profile key (hardware.store)
    name: str
    memory_bytes: float
    fingerprint: dict


@dataclass(frozen=True)
class CalibrationRequest:
    """What to calibrate: a device, the shapes to time on it, the dtype and how thoroughly; and
    whose forward pass (``engine``: 'lattts' or 'transformers')."""

    target: Target
    shapes: tuple[ModelSpec, ...]
    dtype: str
    quick: bool = False
    resume: bool = True
    engine: str = "lattts"
    out: Path | None = None  # where the profile goes; default: the per-user profile store


@dataclass(frozen=True)
class FitRecord:
    """What produced a fitted profile, kept in its provenance."""

    kernels: str
    grid: list[PassShape] | None  # None: the points of a timings file
    measurements: Path
    errors: dict
    drift: dict
    source_note: str
    machine: dict | None = None
    server: dict | None = None  # the serving engine timed (its name, version, launch settings, model)


@dataclass(frozen=True)
class SweepPlan:
    """Which passes a calibration times and how often (defaults: the device's grid, ``REPEATS``)."""

    grid: tuple[PassShape, ...]
    repeats: int
    warmup: int = 2
    rows_factor: bool = False  # also try the matmul correction by rows (kept where it predicts held-out points better)
    per_sequence: bool = False  # also fit a fixed cost per sequence per pass (a server's per-slot work)
    timer: str = ""  # how a point is timed where that has changed between versions: part of the resume key
    anchors: Anchors = ANCHORS  # what each point is paired with (``grid.Anchors``; a server's fit its slots)


@dataclass
class Calibration:
    profile: DeviceProfile
    profile_file: Path
    measurements_file: Path
    errors: dict
    shapes: list[ModelSpec]
    data: list[ShapeData] = field(default_factory=list)
    sweep: dict = field(default_factory=dict)


def fingerprint_cpu() -> Target:
    from lattts.hardware.cpu import detect_cpu

    cpu = detect_cpu()
    return Target("cpu", cpu.key, f"{cpu.model} ({cpu.threads} threads)", float(cpu.memory_bytes or 0),
                  {"kind": "cpu", **cpu.to_dict()})


def fingerprint_gpu(index: int, nvml: Any = None, cuda_available: Callable[[], bool] | None = None) -> Target:
    """The GPU at ``index``, from NVML; a UserError says what was found when there is no usable GPU."""
    from lattts.hardware.nvml import NvmlUnavailable, query_gpus
    from lattts.hardware.store import gpu_device_key

    try:
        gpus = query_gpus(nvml)
    except NvmlUnavailable as exc:
        raise UserError(f"--gpu {index}: {exc}; calibrate this machine's CPU with --device cpu") from None
    if not 0 <= index < len(gpus):
        raise UserError(f"--gpu {index}: NVML sees {len(gpus)} GPU(s) (indices 0..{len(gpus) - 1}); "
                        f"or calibrate the CPU with --device cpu")
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available
    if not cuda_available():
        raise UserError(f"--gpu {index}: NVML sees {gpus[index].name} but this torch build has no CUDA; "
                        f"install a CUDA build of torch, or use --device cpu")
    gpu = gpus[index]
    return Target(f"cuda:{index}", gpu_device_key(gpu.name), gpu.name, float(gpu.memory_bytes),
                  {"kind": "gpu", **gpu.to_dict()})


def run_key(target: Target, engine: str, dtype: str, shapes: list[ModelSpec], grid: list[PassShape], repeats: int,
            timer: str = "", anchors: Anchors = ANCHORS) -> str:
    # the anchors too: points taken against other anchors are not resumed
    blob = json.dumps({"device": target.key, "engine": engine, "dtype": dtype, "repeats": repeats, "timer": timer,
                       "anchors": [p.key for p in anchors.points],
                       "shapes": [s.to_hf_config() | {"name": s.name} for s in shapes],
                       "grid": [p.key for p in grid]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def group_by_shape(rows: list[Measurement], shapes: list[ModelSpec], dtype: str) -> list[ShapeData]:
    by: dict[str, list[Measurement]] = defaultdict(list)
    for m in rows:
        by[m.shape].append(m)
    return [ShapeData(s, tuple(by[s.name]), dtype) for s in shapes if by.get(s.name)]


ROWS_FACTOR_GAIN = 0.8  # the correction by rows must predict held-out points this much better to be kept


def evaluate(data: list[ShapeData], base: DeviceProfile, limits: dict | None = None,
             folds: int = 5, rows_factor: bool = False, params=PARAMETERS) -> tuple[DeviceProfile, dict]:
    """Fit ``params`` on everything, and the in-sample, held-out and cross-model errors.

    ``rows_factor`` also tries the measured matmul correction by rows (``fit.fit_rows_factor``) and
    keeps it only where it cuts the held-out mean error by a fifth or more (``errors['rows_factor']``
    says which won): one free factor per row count follows a kernel switch the rates cannot, but where
    there is none it follows the noise of the one or two points at each row count, and on 24 points a
    k-fold comparison favours it by chance now and then. (On llama.cpp's server here, once the
    per-sequence cost was fitted, it raised the held-out mean error in every calibration tried.)"""
    profile = fit_profile(data, base, limits, params)
    errors: dict = {}
    if not rows_factor:
        heldout = heldout_errors(data, base, folds, limits=limits, params=params, warm=profile)
    else:
        heldout, corrected = heldout_errors_by_rows_factor(data, base, folds, limits=limits, params=params,
                                                           warm=profile)
        used = bool(len(corrected)) and float(corrected.mean()) < ROWS_FACTOR_GAIN * float(heldout.mean())
        errors["rows_factor"] = {"used": used, "heldout_mean_with": float(corrected.mean()) if len(corrected) else None,
                                 "heldout_mean_without": float(heldout.mean()) if len(heldout) else None}
        if used:
            profile, heldout = fit_rows_factor(profile, data), corrected
    errors |= {"in_sample": summary(relative_errors(profile, data)), "heldout": summary(heldout)}
    cross = cross_model_errors(data, base, limits, params, warm=profile)
    if cross:
        errors["cross_model"] = summary(np.concatenate(list(cross.values())))
        errors["cross_model_by_shape"] = {name: summary(e) for name, e in cross.items()}
    return profile, errors


def build_profile(fitted: DeviceProfile, request: CalibrationRequest, record: FitRecord) -> DeviceProfile:
    """The fitted profile named for its device, with everything that produced it in its provenance."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")  # read without importing torch
    except PackageNotFoundError:
        torch_version = None
    target, shapes = request.target, request.shapes
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    provenance = {
        "created": now, "lattts": __version__, "torch": torch_version, "engine": request.engine,
        "kernels": record.kernels, "device": target.fingerprint, "dtype": request.dtype,
        "shapes": [{"name": s.name, "config": s.to_hf_config(), "params": s.n_params} for s in shapes],
        "grid": [list(p.key) for p in record.grid] if record.grid is not None else "from the measurements file",
        "measurements": {"file": str(record.measurements), "sha256": sha256(record.measurements)},
        "errors": record.errors, "drift": record.drift, "machine": record.machine, "server": record.server,
        "anchor": _anchor_provenance(shapes[0], record.drift),
        "units": {name: unit for name, *_, unit in SERVER_PARAMETERS},
    }
    return replace(fitted, name=target.name, kind="calibrated", device_key=target.key, dtype=request.dtype,
                   memory_bytes=target.memory_bytes or fitted.memory_bytes,
                   source=f"{record.source_note} on {now[:10]}", provenance=provenance)


def _anchor_provenance(shape: ModelSpec, drift: dict) -> dict | None:
    """What validation re-times to track the device's speed: the anchor passes of the first shape and their
    references (``measurements.drift_corrected``); None for an unpaired sweep."""
    if not drift.get("paired"):
        return None
    out = {"shape": shape.name, "config": shape.to_hf_config()}
    for prefix, key in (("anchor", ""), ("rows_anchor", "rows_")):
        if f"{prefix}_reference_s" in drift:
            out |= {f"{key}point": drift[f"{prefix}_point"], f"{key}reference_s": drift[f"{prefix}_reference_s"]}
    return out


def placeholder_profile(target: Target, dtype: str) -> DeviceProfile:
    """Fields the fit does not touch; the fitted ones are overwritten."""
    return DeviceProfile(name=target.name, source="calibration", kind="calibrated", device_key=target.key,
                         dtype=dtype, memory_bytes=target.memory_bytes or 1.0, weight_bw_bytes_per_s=1.0,
                         gemv_bw_bytes_per_s=1.0, act_bw_bytes_per_s=1.0, kv_bw_bytes_per_s=1.0,
                         matmul_flops_per_s=1.0, attn_flops_per_s=1.0, pass_overhead_s=0.0, layer_overhead_s=0.0,
                         usable_memory_fraction=CPU_USABLE_MEMORY_FRACTION if target.device == "cpu"
                         else USABLE_MEMORY_FRACTION)


def runner_factory(engine: str, device: str, dtype: str) -> Callable[[ModelSpec], PassRunner]:
    """What times one shape's forward passes: lattts' engine, or transformers' (``engine='transformers'``)."""
    if engine == "transformers":
        from lattts.calibrate.transformers_runner import TransformersRunner

        return lambda spec: TransformersRunner(spec, device, dtype)
    from lattts.calibrate.sweep import TorchRunner

    return lambda spec: TorchRunner(spec, device, dtype)


def _measurements_folder(request: CalibrationRequest, sweep: SweepPlan) -> Path:
    """The run's folder, keyed by everything that shapes its points (a rerun resumes it)."""
    target, engine, dtype = request.target, request.engine, request.dtype
    key = run_key(target, engine, dtype, list(request.shapes), list(sweep.grid), sweep.repeats, sweep.timer,
                  sweep.anchors)
    folder = data_dir() / "calibrations" / target.key / f"{engine}-{dtype}-{key}"
    if not request.resume and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "arguments.json", {"device": target.device, "engine": engine, "dtype": dtype,
                                                  "quick": request.quick, "shapes": [s.name for s in request.shapes]})
    return folder


def outside_pass_costs(request: CalibrationRequest, fitted: DeviceProfile) -> tuple[dict, dict]:
    """The engine's work outside forward passes: ({sample_call_s, sample_s_per_logit}, the runs)."""
    from lattts.calibrate.outside_passes import (fit_overhead, time_engine_overhead, time_transformers_overhead,
                                                 transformers_sampling_per_logit)

    vocab, device = max(s.vocab_size for s in request.shapes), request.target.device
    if request.engine == "lattts":  # at size: the shape of the largest vocabulary, not a two-layer probe
        probe = time_engine_overhead(vocab, device, spec=max(request.shapes, key=lambda s: (s.vocab_size, s.n_params)))
        call_s, per_logit = fit_overhead(probe, vocab)
    else:  # per logit from its sampling step alone; per call from what one branch leaves outside passes
        per_logit = transformers_sampling_per_logit(vocab, device)
        probe = time_transformers_overhead(vocab, fitted, device)
        call_s = max(probe[0]["outside_s"] / (probe[0]["rounds"] + 1) - vocab * per_logit, 0.0)
    return {"sample_call_s": call_s, "sample_s_per_logit": per_logit}, {"runs": probe, "vocab": vocab}


def check_memory(request: CalibrationRequest) -> None:
    """Refuse, before any shape is built, a sweep whose largest point cannot fit this machine's memory:
    a shape's weights, its KV cache at the point's batch and context, and the point's logits."""
    from lattts.engine.memory import check_fits, engine_memory_bytes
    from lattts.simulator.generation import Workload

    def need(spec: ModelSpec, p: PassShape) -> float:  # the cache holds context + query positions per row
        return engine_memory_bytes(Workload(target=spec, prompt_tokens=p.context), request.dtype, p.batch,
                                   p.query - 1, 0, request.target.device)

    grid = default_sweep(request).grid
    spec, point = max(((s, p) for s in request.shapes for p in grid), key=lambda sp: need(*sp))
    check_fits(need(spec, point), f"timing {spec.name} in {request.dtype} at B={point.batch} q={point.query} "
                                  f"s={point.context}", "calibrate smaller --model shapes", request.target.device)


def default_sweep(request: CalibrationRequest) -> SweepPlan:
    """The device's grid (decode steps and prefills only for transformers, which runs plain decoding)."""
    grid = cpu_grid(request.quick) if request.target.device == "cpu" else gpu_grid(request.quick)
    if request.engine == "transformers":
        grid = [p for p in grid if p.query == 1 or p.context == 0]
    return SweepPlan(tuple(grid), REPEATS[request.quick])


def calibrate(request: CalibrationRequest, make_runner: Callable[[ModelSpec], PassRunner], on_point=None,
              on_start=None, measure: Callable[[str, str], dict] | None = measure_machine,
              sweep: SweepPlan | None = None, server: dict | None = None,
              outside: Callable[[DeviceProfile], tuple[dict, dict]] | None = None) -> Calibration:
    """Time the request's shapes (resumably), fit a profile, measure its errors and save it.

    ``on_start(grid, shapes, done)`` and ``on_point(spec, point, seconds)`` report progress;
    ``measure`` times the machine's limits and the engine's work outside passes (None in tests and
    for servers); ``sweep`` overrides the device's grid; ``server`` describes a serving engine timed
    through ``make_runner``, for the provenance; ``outside(fitted)`` gives the costs outside passes as
    profile fields and the runs behind them, where ``measure`` does not (a server's, timed through it)."""
    target, shapes, dtype = request.target, list(request.shapes), request.dtype
    sweep = sweep or default_sweep(request)
    grid, repeats = list(sweep.grid), sweep.repeats
    measurements = _measurements_folder(request, sweep) / "measurements.csv"
    done = {m.key for m in read(measurements)} if measurements.exists() else set()
    if on_start:
        on_start(grid, shapes, done)
    kernels = []

    def runner(spec: ModelSpec) -> PassRunner:
        made = make_runner(spec)
        kernels.append(getattr(made, "kernels", "unknown"))
        return made

    report = run_sweep(shapes, grid, measurements, runner, repeats=repeats, warmup=sweep.warmup, on_point=on_point,
                       anchors=sweep.anchors)
    rows, drift = drift_corrected(report.rows, sweep.anchors)
    data = group_by_shape(rows, shapes, dtype)
    if not data:
        raise UserError("no point could be measured (every one ran out of memory?); try smaller --model shapes")
    machine = measure(target.device, dtype) if measure else None
    fitted, errors = evaluate(data, placeholder_profile(target, dtype), fit_limits(machine),
                              rows_factor=sweep.rows_factor,
                              params=SERVER_PARAMETERS if sweep.per_sequence else PARAMETERS)
    if outside is None and measure:
        outside = partial(outside_pass_costs, request)
    if outside is not None:
        costs, runs = outside(fitted)
        fitted = replace(fitted, **costs)
        machine = {**(machine or {}), "outside_passes": runs}
    record = FitRecord(kernels[0] if kernels else "not recorded (resumed)", grid, measurements, errors, drift,
                       f"calibrated by lattts calibrate ({request.engine} engine, {dtype})", machine, server)
    profile = build_profile(fitted, request, record)
    path = request.out or profile_path(target.key, dtype, request.engine)
    write_json_atomic(path, profile.to_json())
    return Calibration(profile, path, measurements, errors, shapes, data,
                       {"measured": report.measured, "resumed": len(done), "oom": report.oom})
