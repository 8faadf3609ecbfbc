"""The independent engine: Hugging Face transformers' own ``generate``, timed on the same model and
predicted with a profile calibrated on transformers' forward pass.

transformers copies the prompt per sequence (``num_return_sequences``), so its prefill runs B x P
tokens; the prediction says so (``shared_prefill=False``). Only plain decoding (gamma = 0) is
compared: transformers' assisted generation is a different algorithm from lattts'.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import EngineSchedule, Workload, generation_latency
from lattts.simulator.search import Config
from lattts.validate.session import Anchor, drift_corrected_runs, error_stats


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


def predict_generate(work: Workload, deploy: Deployment, config: Config) -> float:
    """Predicted seconds of transformers' generate: plain decoding, the prompt prefilled per sequence."""
    work = replace(work, schedule=EngineSchedule(shared_prefill=False), natural_lengths=None)
    lat = generation_latency(work, deploy, config.branches, 0, config.max_tokens)
    return float(lat.total_s[()])


def run_transformers(configs: list[Config], hf, prompt: list[int], pad_id: int, work: Workload, deploy: Deployment,
                     anchor: Anchor, seed: int = 0) -> dict:
    """Time ``hf.generate`` on the plain-decoding configurations, drift-corrected as the engine's runs are."""
    work = replace(work, prompt_tokens=len(prompt))
    plain = [c for c in configs if c.draft_len == 0]
    runs = []
    for config, measured, speed in drift_corrected_runs(plain, anchor, lambda c, _: time_generate(hf, prompt, c, pad_id, seed),
                                                        seed, []):
        predicted = predict_generate(work, replace(deploy, speed=speed), config)
        runs.append({"branches": config.branches, "max_tokens": config.max_tokens, "predicted_s": predicted,
                     "measured_s": measured, "error": predicted / measured - 1.0,
                     "drift_factor": predicted / predict_generate(work, deploy, config)})
    return {"runs": runs, "summary": error_stats([r["error"] for r in runs])}
