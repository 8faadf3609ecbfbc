"""Tiny random models for engine tests (shapes small enough to run hundreds of passes in seconds)."""

from __future__ import annotations

from lattts.engine.model import Transformer
from lattts.models.spec import ModelSpec


def tiny_spec(name="tiny", layers=4, d=64, heads=4, kv=2, ff=128, vocab=256, arch="llama", tie=True, **kw) -> ModelSpec:
    return ModelSpec(name=name, arch=arch, n_layers=layers, d_model=d, n_heads=heads, n_kv_heads=kv, head_dim=d // heads,
                     d_ff=ff, vocab_size=vocab, tie_embeddings=tie, qkv_bias=arch == "qwen2", max_position=2048,
                     norm_eps=1e-6, rope_theta=10000.0, **kw)


def tiny_model(seed=0, std_scale=1.0, std=0.3, **kw) -> Transformer:
    """A random model with untied head by default (a tied random model just repeats its input token);
    larger std_scale makes sharper (more confident) next-token distributions."""
    kw.setdefault("tie", False)
    model = Transformer(tiny_spec(**kw)).init_random(seed, std)
    if std_scale != 1.0:
        import torch

        with torch.no_grad():
            model.head.mul_(std_scale)
    return model.pack()


def gen(target: Transformer, prompt, draft=None, **fields):
    """``engine.generate`` on a request built from keyword fields (the request's own names)."""
    from lattts.backend import GenerationRequest
    from lattts.engine.generate import generate

    return generate(target, GenerationRequest.of(prompt, **fields), draft)
