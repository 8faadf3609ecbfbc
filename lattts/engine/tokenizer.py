"""Text in and out: a Hugging Face ``tokenizer.json``, or a BPE tokenizer rebuilt from a GGUF
file's metadata, each with its chat template when it has one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lattts.errors import UserError


@dataclass
class Tokenizer:
    backend: Any  # tokenizers.Tokenizer
    eos_ids: tuple[int, ...]
    bos_id: int | None
    chat_template: str | None
    add_bos: bool = False

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] + ids) if self.add_bos and self.bos_id is not None else ids

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)

    def token_id(self, text: str) -> int | None:
        """The id of a single token (e.g. an end-of-thinking marker), or None if it is not one token."""
        found = self.backend.token_to_id(text)
        if found is not None:
            return found
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return ids[0] if len(ids) == 1 else None

    def save(self, folder: Path) -> None:
        """Write tokenizer.json and tokenizer_config.json (what ``from_tokenizer_json`` reads back)."""
        self.backend.save(str(folder / "tokenizer.json"))
        config = {"chat_template": self.chat_template, "add_bos_token": self.add_bos, "eos_token_ids": list(self.eos_ids),
                  "bos_token": self.backend.id_to_token(self.bos_id) if self.bos_id is not None else None}
        (folder / "tokenizer_config.json").write_text(json.dumps(config))

    def chat(self, prompt: str, system: str | None = None) -> str:
        """The prompt wrapped in the model's chat template (ready for generation), or as is without one."""
        if not self.chat_template:
            return prompt
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return env.from_string(self.chat_template).render(messages=messages, add_generation_prompt=True,
                                                          bos_token="", eos_token="")


def from_tokenizer_json(folder: Path) -> Tokenizer:
    from tokenizers import Tokenizer as Backend

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"no tokenizer.json in {folder}")
    backend = Backend.from_file(str(path))
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    model_cfg_path = folder / "config.json"
    model_cfg = json.loads(model_cfg_path.read_text()) if model_cfg_path.is_file() else {}

    def token(value: Any) -> int | None:
        text = value.get("content") if isinstance(value, dict) else value
        return backend.token_to_id(text) if isinstance(text, str) else None

    eos = model_cfg.get("eos_token_id")
    eos_ids = set(eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else [])
    eos_ids.update(cfg.get("eos_token_ids", []))
    if token(cfg.get("eos_token")) is not None:
        eos_ids.add(token(cfg.get("eos_token")))
    return Tokenizer(backend=backend, eos_ids=tuple(sorted(eos_ids)), bos_id=token(cfg.get("bos_token")),
                     chat_template=cfg.get("chat_template") if isinstance(cfg.get("chat_template"), str) else None,
                     add_bos=bool(cfg.get("add_bos_token", False)))


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def from_gguf(reader) -> Tokenizer:
    """Rebuild a byte-level BPE tokenizer ('gpt2' model in GGUF terms) from an open GGUFReader's vocabulary and merges."""
    from tokenizers import AddedToken, Tokenizer as Backend, decoders, models, pre_tokenizers

    kind = _field(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise UserError(f"GGUF tokenizer type {kind!r} is not supported (lattts reads byte-level BPE, 'gpt2')")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    backend = Backend(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    split_digits = _field(reader, "tokenizer.ggml.pre") in ("smollm", "qwen2")  # one digit per token
    pre = [pre_tokenizers.Digits(individual_digits=True)] if split_digits else []
    backend.pre_tokenizer = pre_tokenizers.Sequence(pre + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    backend.decoder = decoders.ByteLevel()
    control = [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == 3]  # 3 = control
    backend.add_special_tokens(control)
    eos = _field(reader, "tokenizer.ggml.eos_token_id")
    bos = _field(reader, "tokenizer.ggml.bos_token_id")
    eos_ids = {int(eos)} if eos is not None else set()
    end_of_text = backend.token_to_id("<|endoftext|>")
    if end_of_text is not None:
        eos_ids.add(end_of_text)
    return Tokenizer(backend=backend, eos_ids=tuple(sorted(eos_ids)), bos_id=int(bos) if bos is not None else None,
                     chat_template=_field(reader, "tokenizer.chat_template"),
                     add_bos=bool(_field(reader, "tokenizer.ggml.add_bos_token")))
