"""A decoder-only transformer's shape, read from its Hugging Face ``config.json``.

``ModelSpec`` is the one source of shape truth: the simulator counts FLOPs and bytes from it and
the engine builds its modules from it. Supported families: Llama (incl. SmolLM2, Mistral-style
configs), Qwen2 (attention bias on q/k/v), and EAGLE-3 draft heads for Llama targets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lattts.dtypes import bytes_per_value, canonical_dtype
from lattts.errors import UserError

# Config keys and the aliases other exporters use for them (first match wins).
_KEYS = {
    "n_layers": ("num_hidden_layers", "n_layers", "n_layer", "num_layers"),
    "d_model": ("hidden_size", "d_model", "n_embd", "dim"),
    "n_heads": ("num_attention_heads", "n_heads", "n_head"),
    "d_ff": ("intermediate_size", "ffn_dim", "d_ff", "n_inner"),
    "vocab_size": ("vocab_size", "n_vocab"),
}
_FAMILIES = ("llama", "qwen2", "mistral")


@dataclass(frozen=True)
class WeightFormat:
    """Bytes per weight of a quantized model file (GGUF), by kind of tensor; the KV cache keeps the
    deployment's dtype. ``source`` names the file's tensor types (e.g. 'GGUF: linear Q4_1, embedding Q8_0')."""

    linear_bytes_per_weight: float
    head_bytes_per_weight: float
    embedding_bytes_per_weight: float
    other_bytes_per_param: float  # norms and biases
    source: str


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a Llama/Qwen2-family decoder (or an EAGLE-3 head); counts are exact.

    ``arch`` is 'llama' or 'qwen2' for full models and 'eagle3' for a one-layer EAGLE-3 draft
    head, whose attention reads [embedding; fused feature] (2*d wide), which fuses three target
    features through a 3d-to-d layer, and which shares the target's embedding table.
    """

    name: str
    arch: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    rope_theta: float = 10000.0
    rope_scaling: tuple[tuple[str, Any], ...] | None = None
    max_position: int = 4096
    norm_eps: float = 1e-6
    draft_vocab_size: int | None = None
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    published_dtype: str = "bf16"
    weight_format: WeightFormat | None = None  # quantized weights (GGUF); None: every parameter in the dtype
    config_path: str | None = field(default=None, compare=False)

    # ---- derived shape -------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def attn_in_dim(self) -> int:
        """Width of the attention input: 2*d for an EAGLE-3 head ([embedding; feature]), else d."""
        return 2 * self.d_model if self.arch == "eagle3" else self.d_model

    @property
    def out_vocab(self) -> int:
        """Rows of the LM head (an EAGLE-3 head predicts over its reduced draft vocabulary)."""
        return self.draft_vocab_size if self.draft_vocab_size else self.vocab_size

    @property
    def is_draft_head(self) -> bool:
        return self.arch == "eagle3"

    # ---- parameter counts (exact, equal to sum(p.numel()) of the module) -----------------
    @property
    def layer_linear_params(self) -> int:
        """Matmul weights of one decoder layer (q, k, v, o, gate, up, down), biases excluded."""
        attn = self.attn_in_dim * (self.q_dim + 2 * self.kv_dim) + self.q_dim * self.d_model
        mlp = 3 * self.d_model * self.d_ff
        return attn + mlp

    @property
    def layer_bias_params(self) -> int:
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        bias += self.d_model if self.o_bias else 0
        bias += (2 * self.d_ff + self.d_model) if self.mlp_bias else 0
        return bias

    @property
    def layer_norm_params(self) -> int:
        """RMSNorm weights per layer: input and post-attention (plus the feature norm in EAGLE-3)."""
        return (3 if self.arch == "eagle3" else 2) * self.d_model

    @property
    def fusion_params(self) -> int:
        """EAGLE-3's fc layer that fuses three target features (3d -> d); 0 otherwise."""
        return 3 * self.d_model * self.d_model if self.arch == "eagle3" else 0

    @property
    def embedding_params(self) -> int:
        """Input embedding table (an EAGLE-3 head borrows the target's: 0)."""
        return 0 if self.arch == "eagle3" else self.vocab_size * self.d_model

    @property
    def lm_head_weights(self) -> int:
        """Weights the LM head multiplies by, whether or not they are tied to the embedding."""
        return self.d_model * self.out_vocab

    @property
    def lm_head_params(self) -> int:
        """LM head parameters not shared with the embedding."""
        return 0 if self.tie_embeddings else self.lm_head_weights

    @property
    def linear_weights(self) -> int:
        """Matmul weights read by one forward pass of the layers (fusion layer included, head excluded)."""
        return self.n_layers * self.layer_linear_params + self.fusion_params

    @property
    def n_params(self) -> int:
        """All parameters, as ``sum(p.numel() for p in model.parameters())`` counts them."""
        per_layer = self.layer_linear_params + self.layer_bias_params + self.layer_norm_params
        return (self.n_layers * per_layer + self.fusion_params + self.embedding_params
                + self.lm_head_params + self.d_model)  # + final norm

    def weight_bytes(self, dtype: str = "bf16") -> float:
        """Bytes to hold all parameters: in ``dtype``, or as the model file's quantized types say."""
        fmt = self.weight_format
        if fmt is None:
            return self.n_params * bytes_per_value(dtype)
        other = self.n_params - self.linear_weights - self.lm_head_params - self.embedding_params
        return (self.linear_weights * fmt.linear_bytes_per_weight + self.lm_head_params * fmt.head_bytes_per_weight
                + self.embedding_params * fmt.embedding_bytes_per_weight + other * fmt.other_bytes_per_param)

    def linear_weight_bytes(self, dtype: str = "bf16") -> float:
        """Bytes of the layers' matmul weights a forward pass streams."""
        per = self.weight_format.linear_bytes_per_weight if self.weight_format else bytes_per_value(dtype)
        return self.linear_weights * per

    def lm_head_weight_bytes(self, dtype: str = "bf16") -> float:
        """Bytes of the LM head's weights (the embedding table when tied)."""
        per = self.weight_format.head_bytes_per_weight if self.weight_format else bytes_per_value(dtype)
        return self.lm_head_weights * per

    def kv_bytes_per_token(self, dtype: str = "bf16") -> int:
        """KV-cache bytes one token adds: K and V for every layer."""
        return 2 * self.n_layers * self.kv_dim * bytes_per_value(dtype)

    @property
    def shape(self) -> tuple:
        """What decides the cost of a pass: layer count, widths, heads, vocabulary, biases, tying."""
        return (self.arch, self.n_layers, self.d_model, self.n_heads, self.n_kv_heads, self.head_dim, self.d_ff,
                self.vocab_size, self.tie_embeddings, self.qkv_bias, self.o_bias, self.mlp_bias, self.draft_vocab_size)

    # ---- variants ------------------------------------------------------------------------
    def first_layers(self, n: int) -> "ModelSpec":
        """The shape of this model's first ``n`` layers with its own head (self-speculation draft)."""
        if not 1 <= n <= self.n_layers:
            raise UserError(f"self-draft needs 1..{self.n_layers} layers of {self.name}, got {n}")
        return replace(self, name=f"{self.name}[:{n}]", n_layers=n)

    def to_hf_config(self) -> dict[str, Any]:
        """A Hugging Face style config dict with this shape (for building reference models)."""
        cfg: dict[str, Any] = {
            "model_type": "qwen2" if self.arch == "qwen2" else "llama",
            "architectures": ["Qwen2ForCausalLM" if self.arch == "qwen2" else "LlamaForCausalLM"],
            "num_hidden_layers": self.n_layers, "hidden_size": self.d_model,
            "num_attention_heads": self.n_heads, "num_key_value_heads": self.n_kv_heads,
            "head_dim": self.head_dim, "intermediate_size": self.d_ff,
            "vocab_size": self.vocab_size, "tie_word_embeddings": self.tie_embeddings,
            "rope_theta": self.rope_theta, "max_position_embeddings": self.max_position,
            "rms_norm_eps": self.norm_eps, "hidden_act": "silu",
        }
        if self.arch != "qwen2":
            cfg["attention_bias"] = self.qkv_bias
            cfg["mlp_bias"] = self.mlp_bias
        if self.rope_scaling:
            cfg["rope_scaling"] = dict(self.rope_scaling)
        if self.draft_vocab_size:
            cfg["draft_vocab_size"] = self.draft_vocab_size
            cfg["architectures"] = ["LlamaForCausalLMEagle3"]
        return cfg

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_hf_config(cls, config: dict[str, Any], name: str, source: str = "config.json") -> "ModelSpec":
        """Build from a parsed ``config.json``; a missing key raises a UserError naming it."""
        if not isinstance(config, dict):
            raise UserError(f"{source}: expected a JSON object, got {type(config).__name__}")
        cfg = dict(config)
        if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers keep the LM inside
            cfg = {**cfg, **cfg["text_config"]}
        arch = _family(cfg, source)
        n_layers, d_model, n_heads = (_positive(cfg, k, source) for k in ("n_layers", "d_model", "n_heads"))
        n_kv = cfg.get("num_key_value_heads") or cfg.get("n_kv_heads") or n_heads
        head_dim = cfg.get("head_dim") or _head_dim(d_model, n_heads, source)
        if not isinstance(n_kv, int) or isinstance(n_kv, bool) or n_kv < 1:
            raise UserError(f"{source}: num_key_value_heads must be a positive integer, got {n_kv!r}")
        if n_heads % n_kv:
            raise UserError(f"{source}: num_attention_heads ({n_heads}) is not a multiple of num_key_value_heads ({n_kv})")
        if not isinstance(head_dim, int) or isinstance(head_dim, bool) or head_dim < 2 or head_dim % 2:
            raise UserError(f"{source}: head_dim {head_dim!r} must be an even positive integer (rotary embeddings "
                            f"turn pairs of channels)")
        rope_theta, scaling = _rope(cfg)
        if arch == "qwen2":
            qkv_bias, o_bias, mlp_bias = True, False, False
        else:
            attention_bias = bool(cfg.get("attention_bias", False))
            qkv_bias, o_bias, mlp_bias = attention_bias, attention_bias, bool(cfg.get("mlp_bias", False))
        eos = cfg.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, list) else ((eos,) if isinstance(eos, int) else ())
        try:
            dtype = canonical_dtype(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
        except UserError:
            dtype = "bf16"
        return cls(
            name=name, arch=arch, n_layers=n_layers, d_model=d_model, n_heads=n_heads,
            n_kv_heads=int(n_kv), head_dim=int(head_dim), d_ff=_positive(cfg, "d_ff", source),
            vocab_size=_positive(cfg, "vocab_size", source),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)) and arch != "eagle3",
            qkv_bias=qkv_bias, o_bias=o_bias, mlp_bias=mlp_bias, rope_theta=rope_theta,
            rope_scaling=scaling, max_position=int(cfg.get("max_position_embeddings") or 4096),
            norm_eps=float(cfg.get("rms_norm_eps") or 1e-6),
            draft_vocab_size=int(cfg["draft_vocab_size"]) if cfg.get("draft_vocab_size") else None,
            bos_token_id=cfg.get("bos_token_id") if isinstance(cfg.get("bos_token_id"), int) else None,
            eos_token_ids=eos_ids, published_dtype=dtype,
        )

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> "ModelSpec":
        """Read a ``config.json`` (or a folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise UserError(f"no config.json at {path}")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        display = name or (path.parent.name if path.name == "config.json" else path.stem)
        return replace(cls.from_hf_config(config, display, source=str(path)), config_path=str(path))


def _head_dim(d_model: int, n_heads: int, source: str) -> int:
    """hidden_size / num_attention_heads, which must divide exactly when a config gives no head_dim."""
    if d_model % n_heads:
        raise UserError(f"{source}: hidden_size ({d_model}) is not a multiple of num_attention_heads ({n_heads}), "
                        f"and no head_dim is given; fix one of them (e.g. {_divisor_near(d_model, n_heads)} heads)")
    return d_model // n_heads


def _divisor_near(d_model: int, n_heads: int) -> int:
    """The head count nearest ``n_heads`` that divides ``d_model`` into even head sizes (for the hint)."""
    fits = [h for h in range(1, d_model + 1) if d_model % h == 0 and (d_model // h) % 2 == 0] or [1]
    return min(fits, key=lambda h: (abs(h - n_heads), h))


def _positive(cfg: dict[str, Any], key: str, source: str) -> int:
    """The first of ``key``'s aliases present in ``cfg``, which must be a positive integer."""
    for alias in _KEYS[key]:
        if cfg.get(alias) is not None:
            value = cfg[alias]
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"{source}: {alias!r} must be a positive integer, got {value!r}")
            return value
    raise UserError(f"{source}: missing key {_KEYS[key][0]!r} (also looked for {', '.join(_KEYS[key][1:])})")


def _family(cfg: dict[str, Any], source: str) -> str:
    """'llama', 'qwen2' or 'eagle3' from model_type and architectures."""
    archs = [str(a) for a in cfg.get("architectures") or []]
    model_type = str(cfg.get("model_type", "")).lower()
    if any("eagle3" in a.lower() for a in archs) or cfg.get("draft_vocab_size"):
        return "eagle3"
    if model_type in _FAMILIES:
        return "qwen2" if model_type == "qwen2" else "llama"
    if any(a.startswith(("Llama", "Mistral")) for a in archs):
        return "llama"
    if any(a.startswith("Qwen2") for a in archs):
        return "qwen2"
    raise UserError(f"{source}: model_type {model_type or '(none)'!r} is not supported; "
                    f"lattts models the Llama and Qwen2 families ({', '.join(_FAMILIES)})")


def _rope(cfg: dict[str, Any]) -> tuple[float, tuple | None]:
    """(rope theta, scaling as sorted key/value pairs or None for plain RoPE)."""
    rope = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else None
    theta = float(cfg.get("rope_theta") or (rope or {}).get("rope_theta") or 10000.0)
    scaling = cfg.get("rope_scaling") or rope
    if not isinstance(scaling, dict):
        return theta, None
    kind = scaling.get("rope_type") or scaling.get("type")
    if kind in (None, "default"):
        return theta, None
    return theta, tuple(sorted((k, v) for k, v in scaling.items() if k != "rope_theta"))
