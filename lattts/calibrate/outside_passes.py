"""What the engine spends outside forward passes: sampling, acceptance and its own bookkeeping.

Measured on the engine itself, at size: ``generate`` runs the calibrated shape with the largest
vocabulary (on CPU, SmolLM2's) with random weights and a self-draft of its first quarter of layers,
at branch counts and draft lengths up to B x gamma = 16 x 4. The time outside forward passes
(probabilities, draws, the speculative acceptance rule, Python) is the wall time minus the timed
passes. A two-layer probe left the model's weights out of the caches the sampling code runs in, and
its small B x gamma kept the (B, gamma + 1, V) probability tensors cache-resident: validated runs of
SmolLM2 spent about twice what it predicted outside passes at large B x gamma. The time outside passes
of each run is fitted as a cost per sampling call plus a cost per logit processed, with calls and rows
counted as the simulator's schedule counts them (``simulator.generation.sampling_time``).
"""

from __future__ import annotations

import numpy as np

RUNS = ((1, 0), (16, 0), (1, 4), (4, 4), (16, 4), (8, 2))  # (branches, draft length), up to B x gamma = 64
TOKENS = 24
REPEATS = 2  # measured runs per (B, gamma) after one warm-up; the smaller is kept (this VM pauses at random)


def probe_spec(vocab: int):
    """A two-layer model so small that its passes are cheap beside the sampling over ``vocab`` logits."""
    from lattts.models.spec import ModelSpec

    return ModelSpec(name="overhead-probe", arch="llama", n_layers=2, d_model=32, n_heads=2, n_kv_heads=1,
                     head_dim=16, d_ff=64, vocab_size=vocab, max_position=4096)


def time_engine_overhead(vocab: int, device: str = "cpu", seed: int = 0, spec=None) -> list[dict]:
    """Budget-forced runs per (B, gamma) of ``RUNS`` on ``spec`` (default: a two-layer probe of ``vocab``),
    self-drafted by its first quarter of layers: seconds outside passes (the least of ``REPEATS``), rounds."""
    import torch

    from lattts.backend import GenerationRequest
    from lattts.engine.generate import Draft, generate
    from lattts.engine.model import Transformer

    spec = spec or probe_spec(vocab)
    with torch.device(device):
        model = Transformer(spec, device=device).init_random(seed).pack()
    draft = Draft(model, max(1, spec.n_layers // 4))
    out = []
    generate(model, GenerationRequest.forced(list(range(1, 17)), 2, 8, seed=seed, draft_len=2), draft)  # warm-up
    for branches, gamma in RUNS:
        request = GenerationRequest.forced(list(range(1, 17)), branches, TOKENS, seed=seed, draft_len=gamma)
        runs = [generate(model, request, draft if gamma else None) for _ in range(REPEATS)]
        best = min(runs, key=lambda r: r.outside_passes_s)
        out.append({"branches": branches, "draft_len": gamma, "rounds": best.rounds, "outside_s": best.outside_passes_s,
                    "shape": spec.name})
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
