"""A model's shape from a GGUF file's metadata (llama.cpp's format), so a GGUF names a model
anywhere a config.json does. Reading needs the ``gguf`` package (numpy only, no torch)."""

from __future__ import annotations

from pathlib import Path

from lattts.errors import UserError
from lattts.models.spec import ModelSpec


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
    return ModelSpec.from_hf_config(cfg, name, source="GGUF metadata")


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
    return gguf_spec(reader, name or path.stem)
