"""Number formats of weights and KV cache: canonical names, aliases, bytes per value, torch dtypes.

One table for the simulator (bytes), the engine and the calibrator (torch dtypes). Importing this
module does not import torch; ``torch_dtype`` does, when called.
"""

from __future__ import annotations

from lattts.errors import UserError

BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
ALIASES = {
    "float32": "fp32", "fp32": "fp32", "float": "fp32",
    "bfloat16": "bf16", "bf16": "bf16",
    "float16": "fp16", "fp16": "fp16", "half": "fp16",
    "float8": "fp8", "fp8": "fp8",
}
ENGINE_DTYPES = ("fp32", "bf16", "fp16")  # what lattts' torch engine computes in (fp8 is simulated only)


def canonical_dtype(name: str) -> str:
    """'bf16', 'fp16', 'fp32' or 'fp8' for a dtype name such as 'bfloat16' or 'torch.float16'."""
    key = str(name).lower().replace("torch.", "")
    if key not in ALIASES:
        raise UserError(f"unknown dtype {name!r}: use one of {', '.join(BYTES_PER_VALUE)}")
    return ALIASES[key]


def bytes_per_value(name: str) -> int:
    """Bytes one weight or KV-cache value takes in ``name`` (any alias)."""
    return BYTES_PER_VALUE[canonical_dtype(name)]


def torch_dtype(name: str):
    """The torch dtype the engine computes in for ``name`` (any alias); UserError for fp8."""
    import torch

    key = canonical_dtype(name)
    if key not in ENGINE_DTYPES:
        raise UserError(f"engine dtype {name!r} is not supported: the engine runs {', '.join(ENGINE_DTYPES)} "
                        f"({key} is simulated only)")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[key]
