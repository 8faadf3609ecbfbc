"""End-to-end latency of generating L tokens on B branches, with or without speculation.

The pass schedule is the live engine's (``lattts.engine``), so a prediction and a run count
the same passes:

- prefill the shared prompt once (B=1, q=P), copy its KV to the B branches; the target's
  prefill logits give every branch its first token;
- plain decoding: L-1 passes of (B, q=1) on a context growing from P;
- speculative decoding, per round: the draft runs gamma passes (the first feeds the last two
  committed tokens, q=2; then q=1), the target verifies gamma+1 positions in one pass; the batch
  runs E[max_b R_b] rounds (``speculative.expected_max_rounds``) to give every branch L-1 tokens.

Only attention depends on the context length, linearly inside a regime, so sums over steps are
closed forms (``sum_passes``): no loop over tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattts.models.spec import ModelSpec
from lattts.simulator.profile import DeviceProfile
from lattts.simulator.roofline import combine, group_times, pass_time, pass_work
from lattts.simulator.speculative import AcceptanceModel, expected_max_rounds


def _series(c0, c1, a, b):
    """sum_{i=a}^{b-1} (c0 + c1*i) for real a <= b (exact for integers)."""
    return (b - a) * c0 + c1 * (b * (b - 1) - a * (a - 1)) / 2.0


def _sum_positive_part(h0, h1, n):
    """sum_{i=0}^{n-1} max(0, h0 + h1*i), elementwise over arrays."""
    h0, h1, n = np.broadcast_arrays(np.asarray(h0, float), np.asarray(h1, float), np.asarray(n, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(h1 != 0, -h0 / np.where(h1 != 0, h1, 1.0), 0.0)
    cut = np.clip(np.ceil(root), 0.0, n)
    rising = _series(h0, h1, cut, n)  # h1 > 0: positive from the root on
    falling = _series(h0, h1, 0.0, cut)  # h1 < 0: positive before the root
    flat = n * np.maximum(h0, 0.0)
    return np.where(h1 > 0, rising, np.where(h1 < 0, falling, flat))


def sum_passes(spec: ModelSpec, profile: DeviceProfile, batch, query, start_context, context_step, n_passes,
               logits=None, dtype: str | None = None, devices: int = 1):
    """Closed form of sum_{i=0}^{n-1} pass_time(B, q, s0 + i*ds).

    Only attention depends on s, and its memory and compute times are both linear in s. With the
    roofline max (p = inf) the sum splits at the one point where they cross; with p = 1 (calibrated
    CPUs: no overlap) it is the sum of two arithmetic series. Any other p is summed by Simpson's
    rule over the n passes (the attention time is smooth and convex in s; the error is far below
    measurement noise).
    """
    dtype = dtype or profile.dtype
    s0 = np.asarray(start_context, float)
    ds = np.asarray(context_step, float)
    n = np.asarray(n_passes, float)
    at0 = group_times(pass_work(spec, batch, query, s0, logits, dtype, devices), spec, profile, devices)
    at1 = group_times(pass_work(spec, batch, query, s0 + 1.0, logits, dtype, devices), spec, profile, devices)
    other = sum(t for name, (t, _, _) in at0.items() if name != "attention")
    (_, mem0, cmp0), (_, mem1, cmp1) = at0["attention"], at1["attention"]
    # per-pass index i: mem(i) = mem0 + (mem1 - mem0) * ds * i, likewise compute
    mem_slope, cmp_slope = (mem1 - mem0) * ds, (cmp1 - cmp0) * ds
    p = profile.knee_sharpness
    if np.isinf(p):
        attention = _series(mem0, mem_slope, 0.0, n) + _sum_positive_part(cmp0 - mem0, cmp_slope - mem_slope, n)
    elif p == 1.0:
        attention = _series(mem0 + cmp0, mem_slope + cmp_slope, 0.0, n)
    else:
        k = 16  # Simpson panels over the n passes
        x = np.linspace(0.0, 1.0, k + 1)[(...,) + (None,) * np.ndim(n)] * np.maximum(n - 1.0, 0.0)
        f = combine(mem0 + mem_slope * x, cmp0 + cmp_slope * x, p)
        w = np.array([1.0] + [4.0 if i % 2 else 2.0 for i in range(1, k)] + [1.0])[(...,) + (None,) * np.ndim(n)]
        mean = (w * f).sum(axis=0) / w.sum()
        attention = n * mean
    return n * other + attention


@dataclass(frozen=True)
class LatencyBreakdown:
    """Predicted latency parts, arrays over the configurations asked for (seconds; rounds)."""

    total_s: np.ndarray
    prefill_s: np.ndarray
    target_s: np.ndarray  # decode passes (plain) or verify passes (speculative)
    draft_s: np.ndarray
    sampling_s: np.ndarray  # the engine's sampling and acceptance outside forward passes
    rounds: np.ndarray  # target passes after prefill (decode steps or verify rounds)
    tokens_per_round: np.ndarray


def prefill_time(spec: ModelSpec, profile: DeviceProfile, branches, prompt_tokens: int,
                 dtype: str | None = None, devices: int = 1):
    """One prefill of the shared prompt plus copying its KV to the other B-1 branches."""
    prefill = pass_time(spec, profile, 1, prompt_tokens, 0, 1, dtype, devices)
    nb = spec.kv_bytes_per_token(dtype or profile.dtype) / devices
    fork = 2.0 * (np.asarray(branches, float) - 1.0) * prompt_tokens * nb / profile.kv_bw_bytes_per_s  # read + write
    return prefill + fork


def generation_latency(target: ModelSpec, profile: DeviceProfile, branches, draft_len, max_tokens, prompt_tokens: int,
                       draft: ModelSpec | None = None, acceptance: AcceptanceModel | None = None,
                       dtype: str | None = None, devices: int = 1, tokens_needed=None,
                       shared_prefill: bool = True) -> LatencyBreakdown:
    """Predicted wall time to give each of B branches ``max_tokens`` tokens (budget forcing).

    ``tokens_needed`` overrides the per-configuration token count the batch must reach (natural
    lengths: the expected longest branch, see ``lengths.py``); by default it is ``max_tokens``.
    ``shared_prefill=False`` prefills the prompt once per branch (B x P tokens in one pass), as
    engines do that copy the prompt per sequence (transformers' ``num_return_sequences``).
    """
    B, G, L = np.broadcast_arrays(np.asarray(branches, float), np.asarray(draft_len, int), np.asarray(max_tokens, float))
    need = L if tokens_needed is None else np.broadcast_to(np.asarray(tokens_needed, float), L.shape)
    shape = B.shape
    total, prefill, sampling = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    target_s, draft_s, rounds, per_round = np.zeros(shape), np.zeros(shape), np.zeros(shape), np.ones(shape)
    P = float(prompt_tokens)
    for gamma in np.unique(G):
        sel = G == gamma
        b, n = B[sel], need[sel] - 1.0  # the prefill's logits give the first token
        pre = (prefill_time(target, profile, b, prompt_tokens, dtype, devices) if shared_prefill
               else pass_time(target, profile, b, prompt_tokens, 0, 1, dtype, devices))
        if gamma == 0:
            tgt = sum_passes(target, profile, b, 1, P, 1.0, n, 1, dtype, devices)
            drf, r, mu = np.zeros_like(b), n, np.ones_like(b)
        else:
            if draft is None or acceptance is None:
                raise ValueError("speculative configurations need a draft and an acceptance model")
            pre = pre + prefill_time(draft, profile, b, prompt_tokens, dtype, devices)
            mu_g = acceptance.tokens_per_round(int(gamma))
            r = np.array([expected_max_rounds(acceptance, int(gamma), int(round(k)), int(bb)) for bb, k in zip(b, n)])
            mu = np.full_like(b, mu_g)
            c0 = P + 1.0  # committed tokens at the first round (prompt + the prefill's token)
            tgt = sum_passes(target, profile, b, gamma + 1, c0 - 1.0, mu_g, r, gamma + 1, dtype, devices)
            drf = sum_passes(draft, profile, b, 2, c0 - 2.0, mu_g, r, 1, dtype, devices)
            for j in range(2, int(gamma) + 1):
                drf = drf + sum_passes(draft, profile, b, 1, c0 + j - 2.0, mu_g, r, 1, dtype, devices)
        smp = sampling_time(profile, target.vocab_size, b, int(gamma), r)
        prefill[sel], target_s[sel], draft_s[sel], rounds[sel], per_round[sel] = pre, tgt, drf, r, mu
        sampling[sel] = smp
        total[sel] = pre + tgt + drf + smp
    return LatencyBreakdown(total_s=total, prefill_s=prefill, target_s=target_s, draft_s=draft_s,
                            sampling_s=sampling, rounds=rounds, tokens_per_round=per_round)


def sampling_counts(branches, gamma: int, rounds):
    """(calls, rows) of the engine's sampling outside forward passes: one call of B rows for the first
    tokens, then per plain step one call of B rows; per speculative round gamma draft calls of B rows,
    one verify call of B(gamma+1) rows and one acceptance call of B rows."""
    b = np.asarray(branches, float)
    calls = 1.0 + (rounds * (gamma + 2) if gamma else rounds)
    rows = b * (1.0 + (rounds * (2 * gamma + 2) if gamma else rounds))
    return calls, rows


def sampling_time(profile: DeviceProfile, vocab: int, branches, gamma: int, rounds):
    """Seconds of the engine's sampling outside forward passes (``sampling_counts``), per the profile."""
    calls, rows = sampling_counts(branches, gamma, rounds)
    return calls * profile.sample_call_s + rows * vocab * profile.sample_s_per_logit


def memory_required_bytes(target: ModelSpec, branches, draft_len, max_tokens, prompt_tokens: int, dtype: str,
                          draft: ModelSpec | None = None, draft_shares_weights: bool = False):
    """Weights of both models plus the KV cache every branch holds at its longest (bytes, all devices)."""
    B, G, L = (np.asarray(x, float) for x in (branches, draft_len, max_tokens))
    positions = prompt_tokens + L + G + 1  # speculative rounds overshoot by up to gamma+1 positions
    weights = target.weight_bytes(dtype)
    kv_per_token = target.kv_bytes_per_token(dtype)
    if draft is not None:
        if not draft_shares_weights:
            weights += draft.weight_bytes(dtype)
        kv_per_token_draft = draft.kv_bytes_per_token(dtype)
        return weights + B * positions * (kv_per_token + np.where(G > 0, kv_per_token_draft, 0.0))
    return weights + B * positions * kv_per_token
