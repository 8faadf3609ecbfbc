"""Which model shapes a calibration times by default, and in which dtype: shapes of different width
and depth, sized to the device (the profile describes the device, not any one model)."""

from __future__ import annotations

from lattts.models.registry import resolve_model
from lattts.models.spec import ModelSpec

# widths 512-1024, depths 8-30, vocabularies 32k-49k, 50-135M parameters (SmolLM2's shape is the deep one)
CPU_SHAPES = ("cpu-small", "cpu-medium", "cpu-wide", "SmolLM2-135M-Instruct")
GPU_SHAPES = ("Qwen2.5-0.5B-Instruct", "Qwen2.5-3B-Instruct", "s1.1-7B")
CPU_DTYPE = "fp32"  # bf16 matmuls are emulated (slow) on CPUs without AVX-512 BF16/AMX


def default_dtype(target) -> str:
    """fp32 on a CPU, the GPU default (bf16) on a GPU."""
    from lattts.hardware.profiles import DEFAULT_GPU_DTYPE

    return CPU_DTYPE if target.device == "cpu" else DEFAULT_GPU_DTYPE


def default_shapes(target, dtype: str) -> list[ModelSpec]:
    """The CPU shapes, or the GPU shapes with any too large for half the GPU's memory cut to the
    first layers that fit."""
    if target.device == "cpu":
        return [resolve_model(n) for n in CPU_SHAPES]
    shapes = []
    for name in GPU_SHAPES:
        spec = resolve_model(name)
        per_layer = spec.weight_bytes(dtype) / spec.n_layers
        fit = int(0.5 * target.memory_bytes // per_layer)
        shapes.append(spec if fit >= spec.n_layers else spec.first_layers(max(1, fit)))
    return shapes
