"""The roofline's batch sweep within memory: which batch sizes hold one pass's weights and KV cache on a
deployment, the passes of those that do, and the first batch whose matmuls turn compute-bound."""

from __future__ import annotations

from dataclasses import dataclass

from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import Workload, memory_required_bytes
from lattts.simulator.roofline import batch_sweep


def pass_memory_bytes(spec: ModelSpec, dtype: str, batch, query: int, context: int):
    """Weights plus the KV cache of ``batch`` sequences after a pass of q new tokens on s cached ones
    (bytes): ``memory_required_bytes`` counts prompt + L + gamma + 1 positions, so a prompt of s with
    L = 0 and gamma = q - 1 is exactly s + q."""
    return memory_required_bytes(Workload(target=spec, prompt_tokens=context), dtype, batch, query - 1, 0)


@dataclass(frozen=True)
class MemorySweep:
    rows: list[dict]  # batch_sweep rows that fit, each with memory_bytes
    over_memory: list[int]  # batch sizes left out: their weights + KV exceed the usable memory
    memory_bytes: dict[int, float]  # per swept batch size
    usable_bytes: float
    compute_bound_from: int | None  # first batch whose linear layers are compute-bound; None: none fits


def sweep_within_memory(spec: ModelSpec, deploy: Deployment, max_batch: int, query: int, context: int) -> MemorySweep:
    """One pass per power-of-two batch up to ``max_batch``, leaving out those over the deployment's memory."""
    swept = [2 ** i for i in range(max_batch.bit_length()) if 2 ** i <= max_batch]
    memory = {b: float(pass_memory_bytes(spec, deploy.dtype, b, query, context)) for b in swept}
    usable = deploy.usable_memory_bytes
    fits = [b for b in swept if memory[b] <= usable]
    rows = [r.to_json() | {"memory_bytes": memory[r.batch]} for r in batch_sweep(spec, deploy, fits, query, context)]
    knee = next((r["batch"] for r in rows if r["groups"]["linear"]["bound"] == "compute"), None)
    return MemorySweep(rows, [b for b in swept if memory[b] > usable], memory, usable, knee)
