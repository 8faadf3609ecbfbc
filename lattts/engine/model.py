"""A Llama/Qwen2-family decoder built from a ModelSpec: RMSNorm, RoPE, GQA attention through
``scaled_dot_product_attention``, SwiGLU, tied or untied head, optional attention bias.

Matmul weights are stored (out, in), as ``nn.Linear`` and Hugging Face do. On CPU ``pack()`` adds
oneDNN-packed copies and every product uses oneDNN's GEMM: with 2-16 rows it is 1.5-2x faster
than torch's default MKL path (whose small-M GEMM takes four times as long for 4 rows as for 1),
and with one row it matches MKL's GEMV; the cost against rows is smooth, which the calibrated
cost model relies on. On GPU everything is ``F.linear``. q/k/v and gate/up are fused into one
matmul each; a tied head is the embedding table itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lattts.engine.cache import KVCache
from lattts.models.spec import ModelSpec


def rope_inv_freq(spec: ModelSpec) -> Tensor:
    """Inverse frequencies (h/2,), with Llama-3 style scaling when the config asks for it."""
    h = spec.head_dim
    inv = 1.0 / (spec.rope_theta ** (torch.arange(0, h, 2, dtype=torch.float64) / h))
    scaling = dict(spec.rope_scaling or ())
    kind = scaling.get("rope_type") or scaling.get("type")
    if kind == "llama3":
        factor = float(scaling["factor"])
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_ctx = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        smooth = ((old_ctx / wavelen) - low) / (high - low)
        blended = (1 - smooth) * inv / factor + smooth * inv
        inv = torch.where(wavelen > old_ctx / low, inv / factor, torch.where(wavelen < old_ctx / high, inv, blended))
    elif kind == "linear":
        inv = inv / float(scaling["factor"])
    elif kind not in (None, "default"):
        raise ValueError(f"rope scaling {kind!r} is not supported by the lattts engine")
    return inv.float()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE, half-split convention: x (B, heads, q, h); cos, sin (B, 1, q, h)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Layer(nn.Module):
    def __init__(self, spec: ModelSpec, dtype: torch.dtype, device: torch.device | str):
        super().__init__()
        d, qd, kvd, ff = spec.d_model, spec.q_dim, spec.kv_dim, spec.d_ff
        kw = dict(dtype=dtype, device=device)
        self.attn_norm = nn.Parameter(torch.ones(d, **kw))
        self.w_qkv = nn.Parameter(torch.empty(qd + 2 * kvd, d, **kw))  # (out, in), as nn.Linear
        self.b_qkv = nn.Parameter(torch.zeros(qd + 2 * kvd, **kw)) if spec.qkv_bias else None
        self.w_o = nn.Parameter(torch.empty(d, qd, **kw))
        self.b_o = nn.Parameter(torch.zeros(d, **kw)) if spec.o_bias else None
        self.mlp_norm = nn.Parameter(torch.ones(d, **kw))
        self.w_gate_up = nn.Parameter(torch.empty(2 * ff, d, **kw))
        self.b_gate_up = nn.Parameter(torch.zeros(2 * ff, **kw)) if spec.mlp_bias else None
        self.w_down = nn.Parameter(torch.empty(d, ff, **kw))
        self.b_down = nn.Parameter(torch.zeros(d, **kw)) if spec.mlp_bias else None


PACK_ROWS_HINT = 8  # oneDNN picks its kernel for this many rows; 8 served 1..64 rows well here


def _linear(x: Tensor, w: Tensor, b: Tensor | None, packed: Tensor | None = None) -> Tensor:
    """x (N, in) times w (out, in) transposed (+ b): oneDNN's packed GEMM on CPU, else torch."""
    if packed is not None:
        return torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
    return F.linear(x, w, b)


def onednn_packing_available() -> bool:
    return hasattr(torch.ops.mkldnn, "_reorder_linear_weight") and torch.backends.mkldnn.is_available()


class Transformer(nn.Module):
    """Decoder with a preallocated KV cache; ``forward`` is the one step the engine and the calibrator time."""

    def __init__(self, spec: ModelSpec, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        super().__init__()
        if spec.is_draft_head:
            raise ValueError(f"{spec.name} is an EAGLE-3 draft head: the engine runs full models (use self:N drafts)")
        self.spec, self.dtype = spec, dtype
        kw = dict(dtype=dtype, device=device)
        self.head = nn.Parameter(torch.empty(spec.vocab_size, spec.d_model, **kw))  # (V, d); the embedding when tied
        self.embed = None if spec.tie_embeddings else nn.Parameter(torch.empty(spec.vocab_size, spec.d_model, **kw))
        self.layers = nn.ModuleList(Layer(spec, dtype, device) for _ in range(spec.n_layers))
        self.norm = nn.Parameter(torch.ones(spec.d_model, **kw))
        self.register_buffer("inv_freq", rope_inv_freq(spec).to(device), persistent=False)
        self.packed: dict[str, Tensor] = {}  # parameter name -> oneDNN-packed copy (CPU)

    @property
    def device(self) -> torch.device:
        return self.head.device

    @property
    def kernels(self) -> str:
        """Which matmul kernels run: recorded in calibrations, since the cost model depends on them."""
        if self.packed:
            return f"cpu: oneDNN packed GEMM (row hint {PACK_ROWS_HINT})"
        return f"{self.device.type}: torch F.linear"

    def pack(self) -> "Transformer":
        """Add oneDNN-packed copies of the matmul weights (CPU, float32). Call after loading weights;
        anything that changes weights calls ``unpack`` first."""
        self.unpack()
        if self.device.type != "cpu" or self.dtype != torch.float32 or not onednn_packing_available():
            return self
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2 and name != "embed":
                    self.packed[name] = torch.ops.mkldnn._reorder_linear_weight(p.detach(), PACK_ROWS_HINT)
        return self

    def unpack(self) -> "Transformer":
        """Drop the packed copies (they go stale when weights change)."""
        self.packed = {}
        return self

    def init_random(self, seed: int = 0, std: float = 0.02) -> "Transformer":
        """Seeded random weights of the right shape (latency does not depend on their values)."""
        self.unpack()
        gen = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "norm" in name:
                    p.fill_(1.0)
                else:  # copy_ casts to the parameter's dtype
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
        return self

    def new_cache(self, batch: int, max_len: int, n_layers: int | None = None) -> KVCache:
        return KVCache.allocate(n_layers or self.spec.n_layers, batch, self.spec.n_kv_heads, max_len,
                                self.spec.head_dim, self.dtype, self.device)

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        return (self.embed if self.embed is not None else self.head)[tokens]

    def _norm(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],), weight, self.spec.norm_eps)

    def forward(self, tokens: Tensor, cache: KVCache, logits_at: str = "last", n_layers: int | None = None) -> Tensor:
        """Run ``tokens`` (B, q) on top of what ``cache`` holds; return float32 logits at the positions
        ``logits_at`` names: (B, 1, V) for 'last' or (B, q, V) for 'all'. Advances ``cache.lengths`` by q.

        ``n_layers`` runs only the first layers (self-speculation draft); the cache must have that many.
        """
        spec = self.spec
        B, q = tokens.shape
        n_layers = n_layers or spec.n_layers
        start = cache.lengths  # (B,) tokens already cached per sequence
        pos = start[:, None] + torch.arange(q, device=tokens.device)  # (B, q) absolute positions
        angles = pos[..., None].float() * self.inv_freq  # (B, q, h/2)
        cos = torch.cat((angles.cos(), angles.cos()), -1)[:, None].to(self.dtype)  # (B, 1, q, h)
        sin = torch.cat((angles.sin(), angles.sin()), -1)[:, None].to(self.dtype)
        total = int(cache.max_length) + q  # attend over the longest sequence in the batch
        mask = cache.attention_mask(q, total)  # None, or (B | 1, 1, q, total) bool

        x = self.embed_tokens(tokens)  # (B, q, d)
        nh, nkv, h = spec.n_heads, spec.n_kv_heads, spec.head_dim
        def lin(x: Tensor, name: str, w: Tensor, b: Tensor | None) -> Tensor:
            return _linear(x, w, b, self.packed.get(name))

        for i in range(n_layers):
            layer, p = self.layers[i], f"layers.{i}."
            a = self._norm(x, layer.attn_norm).reshape(B * q, -1)
            qkv = lin(a, p + "w_qkv", layer.w_qkv, layer.b_qkv)  # (B*q, (nh + 2 nkv) h)
            qk, vs = qkv.reshape(B, q, nh + 2 * nkv, h).transpose(1, 2).split((nh + nkv, nkv), dim=1)
            qk = rotate(qk, cos, sin)  # q and k heads rotated together: (B, nh + nkv, q, h)
            qs, ks = qk.split((nh, nkv), dim=1)
            keys, values = cache.write(i, ks, vs, pos, total)  # (B, nkv, total, h)
            att = F.scaled_dot_product_attention(qs, keys, values, attn_mask=mask, enable_gqa=nkv != nh)
            att = att.transpose(1, 2).reshape(B * q, nh * h)  # (B*q, nh h)
            x = x + lin(att, p + "w_o", layer.w_o, layer.b_o).reshape(B, q, -1)
            m = self._norm(x, layer.mlp_norm).reshape(B * q, -1)
            gate, up = lin(m, p + "w_gate_up", layer.w_gate_up, layer.b_gate_up).chunk(2, dim=-1)  # (B*q, ff) each
            x = x + lin(F.silu(gate) * up, p + "w_down", layer.w_down, layer.b_down).reshape(B, q, -1)
        cache.advance(q)
        if logits_at == "last":
            x = x[:, -1:]
        x = self._norm(x, self.norm).reshape(-1, spec.d_model)
        return lin(x, "head", self.head, None).float().reshape(B, -1, spec.vocab_size)
