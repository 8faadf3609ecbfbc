"""The independent engine: Hugging Face transformers' own ``generate``, timed on the same model and
predicted with a profile calibrated on transformers' forward pass.

transformers copies the prompt per sequence (``num_return_sequences``), so its prefill runs B x P
tokens; the prediction says so (``shared_prefill=False``). Only plain decoding (gamma = 0) is
compared: transformers' assisted generation is a different algorithm from lattts'.
"""

from __future__ import annotations

import time

import torch

from lattts.models.spec import ModelSpec
from lattts.simulator.generation import generation_latency
from lattts.simulator.profile import DeviceProfile
from lattts.validate.live import Config


def time_generate(model, prompt: list[int], config: Config, pad_id: int, seed: int = 0) -> float:
    """Wall seconds of ``model.generate`` giving each of B sequences exactly L new tokens."""
    torch.manual_seed(seed)
    ids = torch.tensor([prompt], device=model.device)
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_p=1.0,
                             top_k=0, num_return_sequences=config.branches, min_new_tokens=config.max_tokens,
                             max_new_tokens=config.max_tokens, pad_token_id=pad_id)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
        elapsed = time.perf_counter() - start
    assert out.shape == (config.branches, len(prompt) + config.max_tokens)
    return elapsed


def predict_generate(spec: ModelSpec, profile: DeviceProfile, config: Config, prompt_tokens: int) -> float:
    lat = generation_latency(spec, profile, config.branches, 0, config.max_tokens, prompt_tokens, shared_prefill=False)
    return float(lat.total_s[()])
