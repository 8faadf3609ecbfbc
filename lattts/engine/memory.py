"""Whether a live run fits this machine's memory, estimated from the shapes before anything is allocated.

The weights and the KV cache are the simulator's count (``simulator.generation.memory_required_bytes``);
the engine adds what the simulator leaves to a device's unusable share: the oneDNN-packed copies of the
matmul weights (CPU, float32) and the float32 logits while sampling.
"""

from __future__ import annotations

from lattts.dtypes import canonical_dtype
from lattts.errors import UserError
from lattts.simulator.generation import Workload, memory_required_bytes
from lattts.units import format_bytes

LOGIT_COPIES = 4  # float32 (B, gamma+1, V) arrays alive at once while sampling: logits, probabilities, sorted, cumsum
FLOAT32_BYTES = 4


def engine_memory_bytes(work: Workload, dtype: str, branches: int, draft_len: int, max_tokens: int,
                        device: str = "cpu") -> float:
    """Bytes a run of B branches of ``max_tokens`` tokens with draft length gamma holds at its peak on the
    engine: weights and KV cache of the target and draft, packed weight copies and logits."""
    dtype = canonical_dtype(dtype)
    need = float(memory_required_bytes(work, dtype, branches, draft_len, max_tokens))
    if device == "cpu" and dtype == "fp32":  # Transformer.pack keeps a second copy of every matmul weight
        models = [work.target] + ([work.draft] if work.draft is not None and not work.draft_shares_weights else [])
        need += sum(m.linear_weight_bytes(dtype) + m.lm_head_weight_bytes(dtype) for m in models)
    return need + LOGIT_COPIES * FLOAT32_BYTES * branches * (draft_len + 1) * work.target.out_vocab


CHAT_TEMPLATE_TOKENS = 128  # allowance for a chat template and system prompt around a prompt


def prompt_tokens_at_most(text: str, chat: bool = True) -> int:
    """An upper bound on the tokens of ``text`` before it is tokenised: one per UTF-8 byte (what the
    byte tokenizer of random-weight models uses; real vocabularies need fewer), plus the template's."""
    return len(text.encode("utf-8")) + (CHAT_TEMPLATE_TOKENS if chat else 0)


def live_workload(model: str, draft: str | None, prompt_tokens: int) -> Workload:
    """The shapes the engine would load for ``model`` and ``draft`` (a model or self:N), as a Workload,
    without loading them."""
    from lattts.engine.load import spec_of
    from lattts.models.registry import self_draft_layers

    target = spec_of(model)
    if not draft:
        return Workload(target=target, prompt_tokens=prompt_tokens)
    n = self_draft_layers(draft, target)
    if n is not None:
        return Workload(target=target, prompt_tokens=prompt_tokens, draft=target.first_layers(n),
                        draft_shares_weights=True)
    return Workload(target=target, prompt_tokens=prompt_tokens, draft=spec_of(draft))


def available_bytes(device: str = "cpu", nvml=None) -> int | None:
    """What a live run on ``device`` ('cpu' or 'cuda:N') may still allocate: MemAvailable (or the
    cgroup's remainder) on the CPU, the GPU's free memory from NVML; None when that cannot be read."""
    if device == "cpu":
        from lattts.hardware.cpu import available_memory_bytes

        return available_memory_bytes()
    if device.startswith("cuda"):
        from lattts.hardware.nvml import NvmlUnavailable, free_memory_bytes

        try:
            return free_memory_bytes(int(device.partition(":")[2] or 0), nvml)
        except NvmlUnavailable:
            return None
    return None


def check_fits(need_bytes: float, what: str, fix: str, device: str = "cpu", nvml=None) -> None:
    """UserError when ``need_bytes`` exceeds the memory ``device`` has available now."""
    available = available_bytes(device, nvml)
    if available is not None and need_bytes > available:
        where = "here" if device == "cpu" else f"on {device}"
        raise UserError(f"{what} needs about {format_bytes(need_bytes)} of memory (weights, KV cache and logits), "
                        f"more than the {format_bytes(available)} available {where}; {fix}")
