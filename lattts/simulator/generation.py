"""End-to-end latency of generating L tokens on B branches, with or without speculation.

The pass schedule is the live engine's (``lattts.engine``), so a prediction and a run count
the same passes:

- prefill the shared prompt once (B=1, q=P), copy its KV to the B branches; the target's
  prefill logits give every branch its first token;
- plain decoding: L-1 passes of (B, q=1) on a context growing from P;
- speculative decoding, per round: the draft runs gamma passes (the first feeds the last two
  committed tokens, q=2; then q=1), the target verifies gamma+1 positions in one pass; the batch
  runs E[max_b R_b] rounds (``speculative.expected_max_rounds``) to give every branch L-1 tokens
  (on a server, with fewer rows once branches are done: ``EngineSchedule.finished_leave``).

Only attention depends on the context length, linearly inside a regime, so sums over steps are
closed forms (``sum_passes``): no loop over tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.lengths import LengthDistribution
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


@dataclass(frozen=True)
class PassSeries:
    """``count`` forward passes of (batch, query) whose context starts at ``start_context`` tokens and
    grows by ``context_step`` per pass (arrays broadcast; count may be fractional: an expected number)."""

    batch: Any
    query: Any
    start_context: Any
    context_step: Any
    count: Any
    logit_positions: Any = None  # per sequence; None = all q


def sum_passes(spec: ModelSpec, deploy: Deployment, series: PassSeries):
    """Closed form of sum_{i=0}^{n-1} pass_time(B, q, s0 + i*ds).

    Only attention depends on s, and its memory and compute times are both linear in s. With the
    roofline max (p = inf) the sum splits at the one point where they cross; with p = 1 (calibrated
    CPUs: no overlap) it is the sum of two arithmetic series. Any other p is summed by Simpson's
    rule over the n passes (the attention time is smooth and convex in s; the error is far below
    measurement noise).
    """
    s0 = np.asarray(series.start_context, float)
    ds = np.asarray(series.context_step, float)
    n = np.asarray(series.count, float)
    b, q, lg = series.batch, series.query, series.logit_positions
    at0 = group_times(pass_work(spec, deploy, b, q, s0, lg), spec, deploy)
    at1 = group_times(pass_work(spec, deploy, b, q, s0 + 1.0, lg), spec, deploy)
    other = sum(t for name, (t, _, _) in at0.items() if name != "attention")
    (_, mem0, cmp0), (_, mem1, cmp1) = at0["attention"], at1["attention"]
    # per-pass index i: mem(i) = mem0 + (mem1 - mem0) * ds * i, likewise compute
    mem_slope, cmp_slope = (mem1 - mem0) * ds, (cmp1 - cmp0) * ds
    p = deploy.profile.knee_sharpness
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
class EngineSchedule:
    """How an engine lays out the passes of B branches (facts about the engine, not the device).

    ``shared_prefill`` False prefills the prompt once per branch (B x P tokens in one pass), as
    engines do that copy the prompt per sequence (transformers' ``num_return_sequences``).
    ``draft_mirrors_verify`` True: after every verify pass the draft model decodes the same
    B x (gamma+1) rows, which keeps its KV cache in step with the target's (llama.cpp's server,
    common/speculative.cpp's draft-simple ``process``); a round's own draft passes then start from
    the last sampled token alone. That mirror pass asks for no logits (the batch's logit flags are
    dropped, so llama.cpp computes the last row's only): one head row per pass, not per branch.
    Draft passes of all branches are one batch in every engine here.
    ``finished_leave`` True: a branch that has its tokens leaves the batch, so speculative rounds
    after the fastest branch is done run fewer rows (a server's slots; lattts' engine keeps every
    branch in its batch until the slowest is done). See ``speculative_passes``.
    """

    shared_prefill: bool = True
    draft_mirrors_verify: bool = False
    finished_leave: bool = False


@dataclass(frozen=True)
class Workload:
    """What is generated, whatever the device: the models, the prompt, how drafts are accepted, how
    long branches run, and how the engine schedules their passes.

    ``natural_lengths`` None means budget forcing (every branch runs to L); otherwise each branch
    stops at its own length and the batch runs to the expected longest (``lengths.py``).
    """

    target: ModelSpec
    prompt_tokens: int
    draft: ModelSpec | None = None
    acceptance: AcceptanceModel | None = None
    draft_shares_weights: bool = False  # a self:N draft: the target's own first layers
    natural_lengths: LengthDistribution | None = None
    schedule: EngineSchedule = EngineSchedule()

    def tokens_needed(self, branches, max_tokens) -> np.ndarray:
        """Tokens the slowest branch of the batch must reach: L under forcing, else E[longest of B]."""
        L = np.asarray(max_tokens, float)
        if self.natural_lengths is None:
            return np.broadcast_to(L, np.broadcast(np.asarray(branches), L).shape)
        return np.maximum(self.natural_lengths.expected_longest(branches, L), 1.0)

    @property
    def priced_as_leaving(self) -> bool:
        """Speculative runs priced with finished branches leaving (``speculative_passes``' own rounds):
        the engine's branches leave when done, and every branch runs to L (budget forcing)."""
        return self.schedule.finished_leave and self.natural_lengths is None


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


def prefill_time(spec: ModelSpec, deploy: Deployment, branches, prompt_tokens: int):
    """One prefill of the shared prompt plus copying its KV to the other B-1 branches."""
    prefill = pass_time(spec, deploy, 1, prompt_tokens, 0, 1)
    nb = spec.kv_bytes_per_token(deploy.dtype) / deploy.devices
    fork = 2.0 * (np.asarray(branches, float) - 1.0) * prompt_tokens * nb / deploy.profile.kv_bw_bytes_per_s  # read + write
    return prefill + fork * deploy.speed.rows  # a bulk copy: many rows


def _prefill(work: Workload, deploy: Deployment, branches, speculative: bool):
    P = work.prompt_tokens

    def one(spec: ModelSpec):
        if work.schedule.shared_prefill:
            return prefill_time(spec, deploy, branches, P)
        return pass_time(spec, deploy, branches, P, 0, 1)  # (B, P) in one pass

    # a served request also pays its own fixed cost once (0 for lattts' engine), serial work like a one-row pass
    request = deploy.profile.request_overhead_s * deploy.speed.one_row
    return one(work.target) + (one(work.draft) if speculative else 0.0) + request


def _plain(work: Workload, deploy: Deployment, b, n):
    """Decode passes for n further tokens: (target time, draft time, rounds, tokens per round)."""
    tgt = sum_passes(work.target, deploy, PassSeries(b, 1, work.prompt_tokens, 1.0, n, 1))
    return tgt, np.zeros_like(b), n, np.ones_like(b)


def _speculative(work: Workload, deploy: Deployment, b, n, gamma: int):
    """Verify and draft passes of the rounds the slowest of b branches needs for n further tokens."""
    if work.draft is None or work.acceptance is None:
        raise ValueError("speculative configurations need a draft and an acceptance model")
    mu = work.acceptance.tokens_per_round(gamma)
    rounds = np.array([expected_max_rounds(work.acceptance, gamma, int(round(k)), int(bb)) for bb, k in zip(b, n)])
    own = branch_rounds(work, gamma, n) if work.priced_as_leaving else None
    tgt, drf = speculative_passes(work, deploy, b, gamma, rounds, own)
    return tgt, drf, rounds, np.full_like(b, mu)


def branch_rounds(work: Workload, gamma: int, n_tokens):
    """E[rounds] one branch needs for ``n_tokens`` further tokens (array like ``n_tokens``)."""
    n = np.asarray(n_tokens, float)
    return np.reshape([expected_max_rounds(work.acceptance, gamma, int(round(k)), 1) for k in n.ravel()], n.shape)


def speculative_passes(work: Workload, deploy: Deployment, b, gamma: int, rounds, own_rounds=None):
    """(target, draft) seconds of ``rounds`` speculative rounds of b branches (arrays broadcast).

    Where finished branches leave the batch (``EngineSchedule.finished_leave``) and ``own_rounds``,
    the rounds one branch needs on average, is given, a round of a active branches costs
    c(a) = c(1) + (a - 1) d, d = (c(b) - c(1)) / (b - 1) (a pass is close to affine in its rows), so
    the run costs  sum_r c(a_r) = R c(1) + d sum_(other branches) R_i  ~  R c(1) + (c(b) - c(1)) E[R_i]:
    the slowest branch's R rounds at one row and the other branches' extra rows for their own rounds.
    """
    if own_rounds is None or not work.schedule.finished_leave:
        return _round_passes(work, deploy, b, gamma, rounds)
    one = np.ones_like(np.asarray(b, float))
    slowest, full, full_at_one = (_round_passes(work, deploy, bb, gamma, r)
                                  for bb, r in ((one, rounds), (b, own_rounds), (one, own_rounds)))
    return tuple(s + f - f1 for s, f, f1 in zip(slowest, full, full_at_one))


def _round_passes(work: Workload, deploy: Deployment, b, gamma: int, rounds):
    """(target, draft) seconds of ``rounds`` speculative rounds with all b branches in every pass."""
    mu = work.acceptance.tokens_per_round(gamma)
    c0 = work.prompt_tokens + 1.0  # committed tokens at the first round (prompt + the prefill's token)
    # the target verifies [last committed, d_1..d_gamma] on top of c0 - 1 cached tokens
    tgt = sum_passes(work.target, deploy, PassSeries(b, gamma + 1, c0 - 1.0, mu, rounds, gamma + 1))
    if work.schedule.draft_mirrors_verify:
        # the draft decodes the verify batch too (logits at one row of the B(gamma+1): 1/B per branch),
        # then drafts from the last sampled token: (B, 1) passes on c0-1, c0, ..., c0+gamma-2 cached tokens
        one_row = 1.0 / np.asarray(b, float)
        drf = sum_passes(work.draft, deploy, PassSeries(b, gamma + 1, c0 - 1.0, mu, rounds, one_row))
        first = PassSeries(b, 1, c0 - 1.0, mu, rounds, 1)
    else:  # the draft's first pass reads the last two committed tokens (its cache lags one behind)
        drf, first = 0.0, PassSeries(b, 2, c0 - 2.0, mu, rounds, 1)
    drf = drf + sum_passes(work.draft, deploy, first)
    for j in range(2, gamma + 1):  # then one new token per pass
        drf = drf + sum_passes(work.draft, deploy, PassSeries(b, 1, c0 + j - 2.0, mu, rounds, 1))
    return tgt, drf


def latency_at_rounds(work: Workload, deploy: Deployment, branches, gamma: int, rounds, own_rounds=None):
    """Wall time of a run of B branches that takes ``rounds`` decode steps (gamma = 0) or speculative
    rounds after its prefill (seconds; arrays broadcast, e.g. configurations x quantiles of rounds);
    ``own_rounds``: one branch's mean rounds, for engines whose finished branches leave the batch."""
    b = np.asarray(branches, float)
    if gamma:
        tgt, drf = speculative_passes(work, deploy, b, gamma, rounds, own_rounds)
    else:
        tgt, drf = sum_passes(work.target, deploy, PassSeries(b, 1, work.prompt_tokens, 1.0, rounds, 1)), 0.0
    return _prefill(work, deploy, b, gamma > 0) + tgt + drf + sampling_time(deploy, work.target.vocab_size, b, gamma,
                                                                             rounds)


def generation_latency(work: Workload, deploy: Deployment, branches, draft_len, max_tokens) -> LatencyBreakdown:
    """Predicted wall time until each of B branches has its tokens: ``max_tokens`` under budget
    forcing, else the expected longest natural length (``Workload.tokens_needed``)."""
    B, G, L = np.broadcast_arrays(np.asarray(branches, float), np.asarray(draft_len, int), np.asarray(max_tokens, float))
    need = work.tokens_needed(B, L)
    parts = {k: np.zeros(B.shape) for k in ("prefill", "target", "draft", "sampling", "rounds")}
    per_round = np.ones(B.shape)
    for gamma in np.unique(G):
        sel, gamma = G == gamma, int(gamma)
        b, n = B[sel], need[sel] - 1.0  # the prefill's logits give the first token
        tgt, drf, r, mu = _speculative(work, deploy, b, n, gamma) if gamma else _plain(work, deploy, b, n)
        parts["prefill"][sel] = _prefill(work, deploy, b, gamma > 0)
        parts["target"][sel], parts["draft"][sel], parts["rounds"][sel], per_round[sel] = tgt, drf, r, mu
        parts["sampling"][sel] = sampling_time(deploy, work.target.vocab_size, b, gamma, r)
    total = parts["prefill"] + parts["target"] + parts["draft"] + parts["sampling"]
    return LatencyBreakdown(total_s=total, prefill_s=parts["prefill"], target_s=parts["target"],
                            draft_s=parts["draft"], sampling_s=parts["sampling"], rounds=parts["rounds"],
                            tokens_per_round=per_round)


def sampling_counts(branches, gamma: int, rounds):
    """(calls, rows) of the engine's sampling outside forward passes: one call of B rows for the first
    tokens, then per plain step one call of B rows; per speculative round gamma draft calls of B rows,
    one verify call of B(gamma+1) rows and one acceptance call of B rows."""
    b = np.asarray(branches, float)
    calls = 1.0 + (rounds * (gamma + 2) if gamma else rounds)
    rows = b * (1.0 + (rounds * (2 * gamma + 2) if gamma else rounds))
    return calls, rows


def sampling_time(deploy: Deployment, vocab: int, branches, gamma: int, rounds):
    """Seconds of the engine's sampling outside forward passes (``sampling_counts``), per the profile, at
    the device's speed (serial work: the one-row kind's)."""
    calls, rows = sampling_counts(branches, gamma, rounds)
    profile = deploy.profile
    return (calls * profile.sample_call_s + rows * vocab * profile.sample_s_per_logit) * deploy.speed.one_row


def memory_required_bytes(work: Workload, dtype: str, branches, draft_len, max_tokens):
    """Weights of both models plus the KV cache every branch holds at its longest (bytes, all devices)."""
    B, G, L = (np.asarray(x, float) for x in (branches, draft_len, max_tokens))
    positions = work.prompt_tokens + L + G + 1  # speculative rounds overshoot by up to gamma+1 positions
    weights = work.target.weight_bytes(dtype)
    kv_per_token = work.target.kv_bytes_per_token(dtype)
    if work.draft is not None:
        if not work.draft_shares_weights:
            weights += work.draft.weight_bytes(dtype)
        kv_per_token_draft = work.draft.kv_bytes_per_token(dtype)
        return weights + B * positions * (kv_per_token + np.where(G > 0, kv_per_token_draft, 0.0))
    return weights + B * positions * kv_per_token
