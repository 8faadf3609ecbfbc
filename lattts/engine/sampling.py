"""Turning logits into tokens: temperature, top-p, banned tokens, per-branch random streams, and
the speculative acceptance rule (Leviathan et al. 2023) that keeps the target's distribution.

Every branch draws its uniforms from its own generator (seed + branch index), the same number per
step whatever the batch, so branch i of a B-branch run equals a one-branch run seeded for branch i.
Temperature 0 is greedy: distributions become one-hot at the argmax.
"""

from __future__ import annotations

import torch
from torch import Tensor


def branch_generators(seed: int, branches: int) -> list[torch.Generator]:
    return [torch.Generator(device="cpu").manual_seed(seed + b) for b in range(branches)]


def uniforms(generators: list[torch.Generator], k: int, device: torch.device) -> Tensor:
    """(B, k) uniforms in [0, 1), row b from generator b."""
    return torch.stack([torch.rand(k, generator=g) for g in generators]).to(device)


def probabilities(logits: Tensor, temperature: float, top_p: float, banned: Tensor | None = None) -> Tensor:
    """Distribution over the vocabulary for logits (..., V); ``banned`` (..., V) bool removes tokens."""
    logits = logits.float()
    if banned is not None:
        logits = logits.masked_fill(banned, float("-inf"))
    if temperature <= 0.0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p >= top_p  # mass before this token already reaches top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw per row: probs (N, V), u (N,) -> token ids (N,)."""
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1)
    return idx.clamp_(max=probs.shape[-1] - 1)


def accept_drafts(p: Tensor, q: Tensor, drafts: Tensor, u_accept: Tensor, u_fix: Tensor) -> tuple[Tensor, Tensor]:
    """Speculative acceptance for a batch.

    p: target distributions (B, gamma+1, V); q: draft distributions (B, gamma, V); drafts (B, gamma);
    u_accept (B, gamma), u_fix (B,) uniforms. Draft j is kept if u < p(d_j)/q(d_j) and all before it
    were; at the first rejection the branch takes a token from norm(max(p_j - q_j, 0)), and if none is
    rejected it takes a bonus token from p_{gamma+1}. Returns (accepted count (B,), extra token (B,)).
    """
    B, gamma = drafts.shape
    p_d = p[:, :gamma].gather(-1, drafts[..., None]).squeeze(-1)  # (B, gamma)
    q_d = q.gather(-1, drafts[..., None]).squeeze(-1)
    ok = u_accept * q_d < p_d  # u < p/q, written without dividing by a zero q
    accepted = ok.long().cumprod(-1).sum(-1)  # (B,) length of the accepted prefix
    rows = torch.arange(B, device=p.device)
    residual = p[rows, accepted.clamp(max=gamma)].clone()  # (B, V): p_{a+1}
    rejected = accepted < gamma
    if rejected.any():
        diff = (residual - torch.cat([q, q[:, :1]], 1)[rows, accepted.clamp(max=gamma)]).clamp_(min=0.0)
        mass = diff.sum(-1, keepdim=True)
        # where p and q agree exactly (mass 0) the residual is undefined; fall back to p itself
        fixed = torch.where(mass > 0, diff / mass.clamp(min=1e-30), residual)
        residual = torch.where(rejected[:, None], fixed, residual)
    return accepted, sample(residual, u_fix)
