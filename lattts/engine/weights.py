"""Loading weights into the engine's Transformer: Hugging Face tensors (safetensors folder or a
state dict) and GGUF files (dequantised with the ``gguf`` package).

Hugging Face and the engine both store matmul weights (out, in); the engine fuses q|k|v and gate|up. GGUF files written by llama.cpp's converter store Q and K rows permuted for interleaved
RoPE; ``_unpermute`` undoes that so the engine's half-split RoPE applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lattts.engine.model import Transformer
from lattts.errors import UserError


def _assign(param: Tensor | None, value: Tensor, name: str) -> None:
    if param is None:
        raise UserError(f"weight {name} has no place in this model shape (check the config)")
    if tuple(param.shape) != tuple(value.shape):
        raise UserError(f"weight {name}: shape {tuple(value.shape)} does not match the config's {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value.to(param.dtype))


def load_hf_tensors(model: Transformer, get: Callable[[str], Tensor | None]) -> Transformer:
    """Fill ``model`` from Hugging Face names; ``get(name)`` returns a tensor or None if absent."""
    spec = model.spec
    model.unpack()

    def need(name: str) -> Tensor:
        value = get(name)
        if value is None:
            raise UserError(f"missing weight {name} in the checkpoint")
        return value

    head = get("lm_head.weight")
    embed = need("model.embed_tokens.weight")  # (V, d)
    if spec.tie_embeddings:
        _assign(model.head, embed, "model.embed_tokens.weight")
    else:
        _assign(model.embed, embed, "model.embed_tokens.weight")
        _assign(model.head, head if head is not None else embed, "lm_head.weight")
    _assign(model.norm, need("model.norm.weight"), "model.norm.weight")
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        qkv = torch.cat([need(p + f"self_attn.{n}_proj.weight") for n in "qkv"], 0)  # (out, in)
        _assign(layer.w_qkv, qkv, p + "self_attn.qkv")
        if spec.qkv_bias:
            _assign(layer.b_qkv, torch.cat([need(p + f"self_attn.{n}_proj.bias") for n in "qkv"]), p + "qkv bias")
        _assign(layer.w_o, need(p + "self_attn.o_proj.weight"), p + "self_attn.o_proj.weight")
        if spec.o_bias:
            _assign(layer.b_o, need(p + "self_attn.o_proj.bias"), p + "self_attn.o_proj.bias")
        gate_up = torch.cat([need(p + "mlp.gate_proj.weight"), need(p + "mlp.up_proj.weight")], 0)
        _assign(layer.w_gate_up, gate_up, p + "mlp.gate_up")
        _assign(layer.w_down, need(p + "mlp.down_proj.weight"), p + "mlp.down_proj.weight")
        if spec.mlp_bias:
            _assign(layer.b_gate_up, torch.cat([need(p + "mlp.gate_proj.bias"), need(p + "mlp.up_proj.bias")]), p + "mlp bias")
            _assign(layer.b_down, need(p + "mlp.down_proj.bias"), p + "mlp.down_proj.bias")
        _assign(layer.attn_norm, need(p + "input_layernorm.weight"), p + "input_layernorm.weight")
        _assign(layer.mlp_norm, need(p + "post_attention_layernorm.weight"), p + "post_attention_layernorm.weight")
    return model


def load_state_dict(model: Transformer, state: Mapping[str, Tensor]) -> Transformer:
    return load_hf_tensors(model, state.get)


def load_safetensors_folder(model: Transformer, folder: Path) -> Transformer:
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise UserError(f"no *.safetensors files in {folder}")
    handles = [safe_open(str(f), framework="pt") for f in files]
    where = {name: h for h in handles for name in h.keys()}
    return load_hf_tensors(model, lambda name: where[name].get_tensor(name) if name in where else None)


# GGUF tensor names for each Hugging Face name pattern (llama.cpp's naming).
_GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
}


def _unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation (interleaved RoPE pairs back to half-split order)."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensor_getter(reader, spec) -> Callable[[str], Tensor | None]:
    """``get(hf_name)``: the GGUF tensor for a Hugging Face weight name, dequantised to float32."""
    from gguf.quants import dequantize

    tensors = {t.name: t for t in reader.tensors}
    arch = reader.fields.get("general.architecture")
    permuted = arch is not None and bytes(arch.parts[arch.data[0]]).decode() == "llama"  # llama.cpp permutes Q/K

    def get(hf_name: str) -> Tensor | None:
        if hf_name.startswith("model.layers."):
            _, _, index, rest = hf_name.split(".", 3)
            name = f"blk.{index}.{_GGUF_NAMES.get(rest, rest)}"
        else:
            name = _GGUF_NAMES.get(hf_name, hf_name)
        t = tensors.get(name)
        if t is None:
            return None
        array = dequantize(t.data, t.tensor_type).astype(np.float32)
        array = array.reshape(tuple(int(n) for n in reversed(t.shape)))  # GGUF lists dims innermost first
        if permuted and hf_name.endswith("q_proj.weight"):
            array = _unpermute(array, spec.n_heads)
        elif permuted and hf_name.endswith("k_proj.weight"):
            array = _unpermute(array, spec.n_kv_heads)
        return torch.from_numpy(np.ascontiguousarray(array))

    return get
