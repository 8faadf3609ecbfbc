"""What the engine spends outside forward passes: sampling, acceptance and its own bookkeeping.

Measured on the engine itself: ``generate`` runs on a one-layer model with the vocabulary of the
calibrated shapes, so its forward passes are cheap and the rest (probabilities, draws, the
speculative acceptance rule, Python) is what the wall time holds beyond them. The time outside
passes of each run is fitted as a cost per sampling call plus a cost per logit processed, with
calls and rows counted as the simulator's schedule counts them (``simulator.generation.sampling_time``).
"""

from __future__ import annotations

import numpy as np

RUNS = ((1, 0), (8, 0), (32, 0), (1, 3), (4, 3), (8, 2))  # (branches, draft length)
TOKENS = 24


def probe_spec(vocab: int):
    """A two-layer model so small that its passes are cheap beside the sampling over ``vocab`` logits."""
    from lattts.models.spec import ModelSpec

    return ModelSpec(name="overhead-probe", arch="llama", n_layers=2, d_model=32, n_heads=2, n_kv_heads=1,
                     head_dim=16, d_ff=64, vocab_size=vocab, max_position=4096)


def time_engine_overhead(vocab: int, device: str = "cpu", seed: int = 0) -> list[dict]:
    """One short budget-forced run per (B, gamma) of ``RUNS``: seconds outside passes, rounds."""
    import torch

    from lattts.backend import GenerationRequest
    from lattts.engine.generate import Draft, generate
    from lattts.engine.model import Transformer

    spec = probe_spec(vocab)
    with torch.device(device):
        model = Transformer(spec, device=device).init_random(seed).pack()
    out = []
    for warm in (True, False):
        for branches, gamma in RUNS:
            request = GenerationRequest.forced(list(range(1, 17)), branches, TOKENS, seed=seed, draft_len=gamma)
            res = generate(model, request, Draft(model, 1) if gamma else None)
            if not warm:
                out.append({"branches": branches, "draft_len": gamma, "rounds": res.rounds,
                            "outside_s": res.outside_passes_s})
    return out


def fit_overhead(runs: list[dict], vocab: int) -> tuple[float, float]:
    """(seconds per sampling call, seconds per logit) by non-negative least squares."""
    from scipy.optimize import nnls

    from lattts.simulator.generation import sampling_counts

    counts = [sampling_counts(r["branches"], r["draft_len"], r["rounds"]) for r in runs]
    calls = np.array([float(c) for c, _ in counts])
    logits = np.array([float(rows) * vocab for _, rows in counts])
    y = np.array([r["outside_s"] for r in runs])
    x = np.column_stack([calls / calls.max(), logits / logits.max()])  # columns of comparable size
    (a, b), _ = nnls(x, y)
    return float(a / calls.max()), float(b / logits.max())


def time_transformers_overhead(vocab: int, profile, device: str = "cpu", seed: int = 0) -> list[dict]:
    """transformers' ``generate`` on a two-layer model of this vocabulary: its wall time minus the
    fitted profile's prediction of its forward passes is what generate spends around them
    (logits processors, sampling, stopping checks, cache bookkeeping); one call per step."""
    import time

    import torch

    from lattts.calibrate.transformers_runner import hf_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import pass_time

    spec = probe_spec(vocab)
    model = hf_model(spec, device, seed=seed)
    prompt = torch.arange(1, 17, device=device)[None]
    deploy = Deployment.on(profile)
    passes = float(pass_time(spec, deploy, 1, 16, 0, 1)) + sum(
        float(pass_time(spec, deploy, 1, 1, 16 + i, 1)) for i in range(TOKENS - 1))
    for _ in range(2):  # the first call warms up; the second is kept
        with torch.inference_mode():
            start = time.perf_counter()
            model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True, top_k=0,
                           num_return_sequences=1, min_new_tokens=TOKENS, max_new_tokens=TOKENS, pad_token_id=0)
            wall = time.perf_counter() - start
    return [{"branches": 1, "draft_len": 0, "rounds": TOKENS - 1, "outside_s": max(wall - passes, 0.0)}]


def transformers_sampling_per_logit(vocab: int, device: str = "cpu", repeats: int = 7) -> float:
    """Seconds per logit of transformers' sampling step (softmax and a multinomial draw), from
    timing it alone on (rows, vocab) logits; the slope over rows 1..64."""
    import torch

    from lattts.engine.timing import clock_for, median_seconds

    clock = clock_for(device)
    rows, times = (1, 16, 64), []
    for r in rows:
        logits = torch.randn(r, vocab, device=device)
        times.append(median_seconds(lambda x=logits: torch.multinomial(torch.softmax(x, -1), 1), repeats, clock))
    return max((times[-1] - times[0]) / ((rows[-1] - rows[0]) * vocab), 0.0)
