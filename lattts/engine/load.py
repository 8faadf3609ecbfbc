"""From a model name or path to a ready Transformer (and tokenizer): what `--model` accepts.

- 'smollm2-135m' (any SmolLM2 alias): the real SmolLM2-135M-Instruct, fetched once (fetch.py);
- a folder with config.json and *.safetensors (and tokenizer.json): Hugging Face weights;
- a .gguf file: its own shape, weights and tokenizer;
- any other catalogue name or config.json: that shape with seeded random weights (latency does not
  depend on weight values) and a byte-level stand-in tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lattts.dtypes import canonical_dtype, torch_dtype as to_torch_dtype
from lattts.engine.model import Transformer
from lattts.engine.tokenizer import Tokenizer, from_gguf, from_tokenizer_json
from lattts.errors import UserError
from lattts.models.gguf import gguf_spec
from lattts.models.registry import check_draft_compatible, find_entry, resolve_model, self_draft_layers
from lattts.models.spec import ModelSpec


@dataclass
class Loaded:
    model: Transformer
    tokenizer: Tokenizer
    weights: str  # where the weights came from
    real_text: bool  # False for random weights: the text is meaningless
    hf_folder: Path | None = None  # the same weights as a Hugging Face folder (for transformers), if real


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as token ids, for random-weight models that have no vocabulary of their own."""

    def __init__(self, vocab_size: int):
        if vocab_size < 256:
            raise UserError(f"a random-weight model needs a vocabulary of at least 256 tokens for text, got {vocab_size}")
        super().__init__(backend=None, eos_ids=(), bos_id=None, chat_template=None)
        self._vocab = vocab_size

    @property
    def vocab_size(self) -> int:
        return self._vocab

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def token_id(self, text: str) -> int | None:
        data = text.encode("utf-8")
        return data[0] if len(data) == 1 else None


CONVERTED_FORMAT = 2  # bump when the layout of converted folders changes


def _converted_gguf(path: Path, name: str) -> Path:
    """A Hugging Face style folder (config.json, model.safetensors with float32 weights under Hugging
    Face names, tokenizer.json) made once from a GGUF file and cached by the file's hash: parsing a
    GGUF's vocabulary and dequantising take ~10-20 s on a small CPU, reading the folder ~1 s."""
    from lattts.engine.fetch import sha256
    from lattts.paths import cache_dir, write_atomic

    folder = cache_dir() / "converted" / f"{sha256(path)[:16]}-v{CONVERTED_FORMAT}"
    if (folder / "model.safetensors").is_file():
        return folder
    from gguf import GGUFReader
    from safetensors.torch import save_file

    from lattts.engine.weights import gguf_tensor_getter, load_hf_tensors

    reader = GGUFReader(str(path))
    spec = gguf_spec(reader, name)
    get = gguf_tensor_getter(reader, spec)
    tensors: dict = {}
    load_hf_tensors(Transformer(spec, torch.float32, "meta"), lambda n: tensors.setdefault(n, get(n)))
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    from_gguf(reader).save(tmp)
    config = spec.to_hf_config() | {"eos_token_id": list(spec.eos_token_ids), "bos_token_id": spec.bos_token_id}
    write_atomic(tmp / "config.json", json.dumps(config))
    save_file({k: v.contiguous() for k, v in tensors.items() if v is not None}, str(tmp / "model.safetensors"))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)  # the folder appears complete or not at all
    return folder


def _kind(model: str, random_weights: bool = False) -> str:
    """Which of the module docstring's cases ``model`` is: 'smollm2', 'gguf', 'safetensors' or 'shape'."""
    entry, path = find_entry(model), Path(model)
    if entry is not None and entry.name == "SmolLM2-135M-Instruct" and not random_weights:
        return "smollm2"
    if path.suffix == ".gguf":
        return "gguf"
    return "safetensors" if entry is None and path.is_dir() and list(path.glob("*.safetensors")) else "shape"


def spec_of(model: str, random_weights: bool = False) -> ModelSpec:
    """The shape ``load`` would build for ``model``, read without loading any weights (for a memory
    check first). GGUF weights are dequantised on loading, so the spec carries no quantized format."""
    kind, path = _kind(model, random_weights), Path(model)
    if kind == "gguf":
        if not path.is_file():
            raise UserError(f"GGUF file {path} does not exist")
        from gguf import GGUFReader

        return replace(gguf_spec(GGUFReader(str(path)), path.stem), weight_format=None)
    if kind == "safetensors":
        return ModelSpec.from_file(path)
    return resolve_model(model)  # a catalogue name (SmolLM2's shape is its catalogue config) or a config.json


def load(model: str, device: str = "cpu", dtype: str = "fp32", seed: int = 0, random_weights: bool = False) -> Loaded:
    """Load a model for the engine; see the module docstring for what ``model`` may be."""
    torch_dtype = to_torch_dtype(dtype)
    dtype = canonical_dtype(dtype)
    entry = find_entry(model)
    path = Path(model)
    kind = _kind(model, random_weights)
    if kind == "smollm2":
        from lattts.engine.fetch import smollm2_gguf

        path = smollm2_gguf()
    if kind in ("smollm2", "gguf"):
        if not path.is_file():
            raise UserError(f"GGUF file {path} does not exist")
        from lattts.engine.weights import load_safetensors_folder

        folder = _converted_gguf(path, entry.name if entry else path.stem)
        spec = ModelSpec.from_file(folder / "config.json", name=entry.name if entry else path.stem)
        net = load_safetensors_folder(Transformer(spec, torch_dtype, "cpu"), folder)
        return Loaded(net.to(device).pack(), from_tokenizer_json(folder), f"GGUF {path} (dequantised to {dtype})", True,
                      folder)
    if kind == "safetensors":
        from lattts.engine.weights import load_safetensors_folder

        spec = ModelSpec.from_file(path)
        net = Transformer(spec, torch_dtype, "cpu")
        load_safetensors_folder(net, path)
        return Loaded(net.to(device).pack(), from_tokenizer_json(path), f"safetensors in {path}", True, path)
    spec = resolve_model(model)
    with torch.device(device):
        net = Transformer(spec, torch_dtype, device).init_random(seed)
    return Loaded(net.pack(), ByteTokenizer(spec.vocab_size), f"random weights (seed {seed}) in the shape of {spec.name}", False)



def load_draft(name: str, target: Loaded, device: str, dtype: str, seed: int = 1):
    """A Draft for ``target``: 'self:N' (its first N layers and its head) or another model sharing its vocabulary."""
    from lattts.engine.generate import Draft

    n = self_draft_layers(name, target.model.spec)
    if n is not None:
        return Draft(target.model, n)
    if find_entry(name) is not None or name.endswith(".json"):  # check the shape before allocating weights
        shape = resolve_model(name)
        if shape.is_draft_head:
            raise UserError(f"draft {shape.name} is an EAGLE-style head: lattts predicts it, but the engine runs only "
                            f"self:N or a full draft model")
        check_draft_compatible(target.model.spec, shape)
    other = load(name, device, dtype, seed, random_weights=not target.real_text)
    check_draft_compatible(target.model.spec, other.model.spec)
    return Draft(other.model)
