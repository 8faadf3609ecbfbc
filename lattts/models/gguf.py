"""A model's shape from a GGUF file's metadata (llama.cpp's format), so a GGUF names a model
anywhere a config.json does. Reading needs the ``gguf`` package (numpy only, no torch)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lattts.errors import UserError
from lattts.models.spec import ModelSpec, WeightFormat


def gguf_spec(reader, name: str) -> ModelSpec:
    """A ModelSpec from an open GGUFReader's <arch>.* metadata."""

    def get(key: str, default=None):
        f = reader.fields.get(key)
        return default if f is None else f.contents()

    arch = get("general.architecture")
    if arch not in ("llama", "qwen2"):
        raise UserError(f"GGUF architecture {arch!r} is not supported (llama, qwen2)")
    names = {t.name for t in reader.tensors}
    n_heads = int(get(f"{arch}.attention.head_count"))
    d = int(get(f"{arch}.embedding_length"))
    cfg = {
        "model_type": arch, "num_hidden_layers": int(get(f"{arch}.block_count")), "hidden_size": d,
        "num_attention_heads": n_heads, "num_key_value_heads": int(get(f"{arch}.attention.head_count_kv", n_heads)),
        "intermediate_size": int(get(f"{arch}.feed_forward_length")),
        "vocab_size": int(get(f"{arch}.vocab_size", len(get("tokenizer.ggml.tokens") or []))),
        "tie_word_embeddings": "output.weight" not in names,
        "rope_theta": float(get(f"{arch}.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(get(f"{arch}.context_length", 4096)),
        "rms_norm_eps": float(get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)),
        "head_dim": int(get(f"{arch}.rope.dimension_count", d // n_heads)),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"), "bos_token_id": get("tokenizer.ggml.bos_token_id"),
    }
    spec = ModelSpec.from_hf_config(cfg, name, source="GGUF metadata")
    return replace(spec, weight_format=weight_format(reader))


LINEAR_TENSORS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def weight_format(reader) -> WeightFormat | None:
    """Bytes per weight of the file's tensors by kind (GGML block sizes: e.g. Q4_1 stores 32 weights in
    20 bytes), or None when every tensor is F32 or F16 alike (the dtype then says it all)."""
    groups: dict[str, list[int]] = {"linear": [0, 0], "head": [0, 0], "embedding": [0, 0], "other": [0, 0]}
    types: dict[str, set[str]] = {k: set() for k in groups}
    names = {t.name for t in reader.tensors}
    for t in reader.tensors:
        kind = t.name.split(".")[-2] if t.name.startswith("blk.") else t.name.split(".")[0]
        group = ("linear" if kind in LINEAR_TENSORS else "head" if kind == "output" else
                 "embedding" if kind == "token_embd" else "other")
        groups[group][0] += int(t.n_bytes)
        groups[group][1] += int(t.n_elements)
        types[group].add(t.tensor_type.name)
    if "output.weight" not in names:  # tied: the head multiplies by the embedding table
        groups["head"], types["head"] = groups["embedding"], types["embedding"]
    if all(types[k] <= {"F32"} for k in types) or all(types[k] <= {"F16"} for k in types):
        return None
    per = {k: (b / n if n else 0.0) for k, (b, n) in groups.items()}
    described = ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in types.items() if v)
    return WeightFormat(linear_bytes_per_weight=per["linear"], head_bytes_per_weight=per["head"],
                        embedding_bytes_per_weight=per["embedding"], other_bytes_per_param=per["other"] or 4.0,
                        source=f"GGUF tensor types: {described}")


def read_gguf_spec(path: str | Path, name: str | None = None) -> ModelSpec:
    """The shape of the model in a GGUF file; UserError if it is missing or not a GGUF."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"GGUF file {path} does not exist")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable GGUF file ({exc})") from None
    return replace(gguf_spec(reader, name or path.stem), config_path=str(path))
