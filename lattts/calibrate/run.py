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
from pathlib import Path
from typing import Any

import numpy as np

from lattts import __version__
from lattts.calibrate.fit import (PARAMETERS, ShapeData, cross_model_errors, fit_profile, heldout_errors,
                                  relative_errors, summary)
from lattts.calibrate.grid import Point, cpu_grid, gpu_grid
from lattts.calibrate.machine import fit_limits, measure_machine
from lattts.calibrate.measurements import Measurement, drift_corrected, read
from lattts.calibrate.sweep import ANCHOR_POINT, PassRunner, run_sweep
from lattts.engine.fetch import sha256
from lattts.errors import UserError
from lattts.hardware.store import profile_path
from lattts.models.registry import resolve_model
from lattts.models.spec import ModelSpec
from lattts.paths import data_dir, write_json_atomic
from lattts.simulator.profile import CPU_USABLE_MEMORY_FRACTION, USABLE_MEMORY_FRACTION, DeviceProfile

# widths 512-1024, depths 8-30, vocabularies 32k-49k, 50-135M parameters (SmolLM2's shape is the deep one)
CPU_SHAPES = ("cpu-small", "cpu-medium", "cpu-wide", "SmolLM2-135M-Instruct")
GPU_SHAPES = ("Qwen2.5-0.5B-Instruct", "Qwen2.5-3B-Instruct", "s1.1-7B")
REPEATS = {True: 4, False: 7}  # timed passes per point, quick or full


@dataclass(frozen=True)
class Target:
    """The device being calibrated and what identifies it."""

    device: str  # torch device string: 'cpu' or 'cuda:N'
    key: str  # saved-profile key (hardware.store)
    name: str
    memory_bytes: float
    fingerprint: dict


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


def default_shapes(target: Target, dtype: str) -> list[ModelSpec]:
    """Three shapes of different width and depth sized to the device; a GPU shape too large for
    half its memory is timed on its first layers (the profile describes the device, not the model)."""
    if target.device == "cpu":
        return [resolve_model(n) for n in CPU_SHAPES]
    shapes = []
    for name in GPU_SHAPES:
        spec = resolve_model(name)
        per_layer = spec.weight_bytes(dtype) / spec.n_layers
        fit = int(0.5 * target.memory_bytes // per_layer)
        shapes.append(spec if fit >= spec.n_layers else spec.first_layers(max(1, fit)))
    return shapes


def run_key(target: Target, engine: str, dtype: str, shapes: list[ModelSpec], grid: list[Point], repeats: int) -> str:
    blob = json.dumps({"device": target.key, "engine": engine, "dtype": dtype, "repeats": repeats,
                       "shapes": [s.to_hf_config() | {"name": s.name} for s in shapes],
                       "grid": [p.key for p in grid]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def group_by_shape(rows: list[Measurement], shapes: list[ModelSpec], dtype: str) -> list[ShapeData]:
    by: dict[str, list[Measurement]] = defaultdict(list)
    for m in rows:
        by[m.shape].append(m)
    return [ShapeData(s, tuple(by[s.name]), dtype) for s in shapes if by.get(s.name)]


def evaluate(data: list[ShapeData], base: DeviceProfile, limits: dict | None = None,
             folds: int = 5) -> tuple[DeviceProfile, dict]:
    """Fit on everything, and the in-sample, held-out and cross-model errors."""
    profile = fit_profile(data, base, limits)
    errors = {"in_sample": summary(relative_errors(profile, data)),
              "heldout": summary(heldout_errors(data, base, folds, limits=limits))}
    cross = cross_model_errors(data, base, limits)
    if cross:
        errors["cross_model"] = summary(np.concatenate(list(cross.values())))
        errors["cross_model_by_shape"] = {name: summary(e) for name, e in cross.items()}
    return profile, errors


def build_profile(fitted: DeviceProfile, target: Target, dtype: str, engine: str, kernels: str,
                  shapes: list[ModelSpec], grid: list[Point] | None, measurements: Path, errors: dict,
                  drift: dict, source_note: str, machine: dict | None = None) -> DeviceProfile:
    import torch

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    provenance = {
        "created": now, "lattts": __version__, "torch": torch.__version__, "engine": engine, "kernels": kernels,
        "device": target.fingerprint, "dtype": dtype,
        "shapes": [{"name": s.name, "config": s.to_hf_config(), "params": s.n_params} for s in shapes],
        "grid": [list(p.key) for p in grid] if grid is not None else "from the measurements file",
        "measurements": {"file": str(measurements), "sha256": sha256(measurements)},
        "errors": errors, "drift": drift, "machine": machine,
        "anchor": ({"shape": shapes[0].name, "config": shapes[0].to_hf_config(), "point": list(ANCHOR_POINT.key),
                    "reference_s": drift["anchor_reference_s"]} if drift.get("paired") else None),
        "units": {name: unit for name, *_, unit in PARAMETERS},
    }
    return replace(fitted, name=target.name, kind="calibrated", device_key=target.key, dtype=dtype,
                   memory_bytes=target.memory_bytes or fitted.memory_bytes,
                   source=f"{source_note} on {now[:10]}", provenance=provenance)


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


def calibrate(target: Target, shapes: list[ModelSpec], dtype: str, quick: bool, resume: bool,
              make_runner: Callable[[ModelSpec], PassRunner], engine: str = "lattts",
              out: Path | None = None, on_point=None, on_start=None,
              measure: Callable[[str, str], dict] | None = measure_machine) -> Calibration:
    grid = cpu_grid(quick) if target.device == "cpu" else gpu_grid(quick)
    if engine == "transformers":  # it runs plain decoding only: decode steps and prefills
        grid = [p for p in grid if p.query == 1 or p.context == 0]
    repeats = REPEATS[quick]
    key = run_key(target, engine, dtype, shapes, grid, repeats)
    folder = data_dir() / "calibrations" / target.key / f"{engine}-{dtype}-{key}"
    measurements = folder / "measurements.csv"
    if not resume and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "arguments.json", {"device": target.device, "engine": engine, "dtype": dtype,
                                                  "quick": quick, "shapes": [s.name for s in shapes]})
    done = {m.key for m in read(measurements)} if measurements.exists() else set()
    if on_start:
        on_start(grid, shapes, done)
    kernels = []

    def runner(spec: ModelSpec) -> PassRunner:
        made = make_runner(spec)
        kernels.append(getattr(made, "kernels", "unknown"))
        return made

    report = run_sweep(shapes, grid, measurements, runner, repeats=repeats, warmup=2, on_point=on_point)
    rows, drift = drift_corrected(report.rows)
    data = group_by_shape(rows, shapes, dtype)
    if not data:
        raise UserError("no point could be measured (every one ran out of memory?); try smaller --model shapes")
    machine = measure(target.device, dtype) if measure else None
    fitted, errors = evaluate(data, placeholder_profile(target, dtype), fit_limits(machine))
    if measure:  # the engine's work outside forward passes
        from lattts.calibrate.sampling import fit_overhead, time_engine_overhead, time_transformers_overhead

        vocab = max(s.vocab_size for s in shapes)
        if engine == "lattts":
            probe = time_engine_overhead(vocab, target.device)
            call_s, per_logit = fit_overhead(probe, vocab)
        else:  # per logit from its sampling step alone; per call from what one branch leaves outside passes
            from lattts.calibrate.sampling import transformers_sampling_per_logit

            per_logit = transformers_sampling_per_logit(vocab, target.device)
            probe = time_transformers_overhead(vocab, fitted, target.device)
            calls = probe[0]["rounds"] + 1
            call_s = max(probe[0]["outside_s"] / calls - vocab * per_logit, 0.0)
        fitted = replace(fitted, sample_call_s=call_s, sample_s_per_logit=per_logit)
        machine = {**machine, "outside_passes": {"runs": probe, "vocab": vocab}}
    profile = build_profile(fitted, target, dtype, engine, kernels[0] if kernels else "not recorded (resumed)",
                            shapes, grid, measurements, errors, drift,
                            f"calibrated by lattts calibrate ({engine} engine, {dtype})", machine)
    path = out or profile_path(target.key, dtype, engine)
    write_json_atomic(path, profile.to_json())
    return Calibration(profile, path, measurements, errors, shapes, data,
                       {"measured": report.measured, "resumed": len(done), "oom": report.oom})


def calibrate_from_csv(csv_file: Path, spec: ModelSpec, target: Target, dtype: str, out: Path | None) -> Calibration:
    """Fit a profile from someone else's timings of one model (columns documented in measurements.py)."""
    rows = [replace(m, shape=spec.name) for m in read(csv_file, default_shape=spec.name) if m.status == "ok"]
    if len(rows) < len(PARAMETERS):
        raise UserError(f"{csv_file}: {len(rows)} timed rows; a fit of {len(PARAMETERS)} parameters needs more "
                        f"(aim for 20+ points over batch, query length and context)")
    rows, drift = drift_corrected(rows)
    data = group_by_shape(rows, [spec], dtype)
    fitted, errors = evaluate(data, placeholder_profile(target, dtype))
    key = "csv-" + sha256(csv_file)[:10]
    target = replace(target, key=key, name=f"{target.name} (timings from {csv_file.name})")
    profile = build_profile(fitted, target, dtype, "csv", "as in the timings file", [spec], None, csv_file, errors,
                            drift, f"fitted by lattts calibrate --from-csv {csv_file.name}")
    path = out or profile_path(key, dtype, "csv")
    write_json_atomic(path, profile.to_json())
    return Calibration(profile, path, csv_file, errors, [spec], data, {})

