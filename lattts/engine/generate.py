"""Generation: B branches of one prompt, budget forcing, speculative decoding, every pass timed.

The pass schedule is the one the simulator predicts (``lattts.simulator.generation``):

- ``prefill``: the prompt once (B=1), its KV copied to the B branches; the prefill's logits give
  every branch its first token (or one prompt per branch, each prefilled into its row);
- ``plain_step``: one pass of (B, q=1) per further token;
- ``speculative_round``: the draft runs gamma passes (the first feeds each branch's last two
  committed tokens, q=2, which also covers a draft token it proposed but never read; then q=1),
  the target verifies [last token, d_1..d_gamma] in one pass of q=gamma+1, and each branch keeps
  its own accepted prefix plus one token (rejection sampling keeps the target's distribution).
  Branches stay in lock-step until the slowest has its tokens.

Budget forcing (``GenerationRequest``): end-of-sequence ids are banned until a branch has
``min_tokens``; with a continuation a branch that samples one early gets the continuation instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lattts.backend import BranchOutput, GenerationRequest, GenerationResult, PassRecord, RequestError
from lattts.engine.model import Transformer
from lattts.engine.sampling import accept_drafts, branch_generators, probabilities, sample, uniforms
from lattts.engine.timing import Clock, clock_for
from lattts.models.registry import check_draft_compatible


@dataclass(frozen=True)
class Draft:
    """What proposes tokens: a separate model, or the target's first ``layers`` layers (self:N)."""

    model: Transformer
    layers: int | None = None  # None = all of ``model``'s layers

    @property
    def n_layers(self) -> int:
        return self.layers or self.model.spec.n_layers


@dataclass(frozen=True)
class Probe:
    """Work run every ``every`` steps (or rounds) of a generation, paused out of its latency:
    validation re-times a reference pass this way to track the device's speed during a run."""

    run: Callable[[], None]
    every: int = 4


class PassTimer:
    """Runs forward passes on one clock and records each one."""

    def __init__(self, clock: Clock):
        self.clock, self.passes = clock, []

    def __call__(self, name: str, phase: str, model: Transformer, tokens: Tensor, cache, logits_at: str,
                 n_layers: int | None = None) -> Tensor:
        lengths = cache.host_lengths
        start = self.clock.now()
        out = model(tokens, cache, logits_at, n_layers)
        self.passes.append(PassRecord(name, phase, tokens.shape[0], tokens.shape[1], max(lengths),
                                      sum(lengths) / len(lengths), self.clock.now() - start))
        return out


@dataclass
class Branches:
    """What every branch has produced: its tokens, whether it stopped, continuation tokens still to
    emit, and (speculative) the draft tokens it accepted in each of its rounds."""

    request: GenerationRequest
    outs: list[list[int]] = field(init=False)
    done: list[bool] = field(init=False)
    queued: list[list[int]] = field(init=False)
    accepted: list[list[int]] = field(init=False)

    def __post_init__(self):
        n = self.request.branches
        self.outs, self.done = [[] for _ in range(n)], [False] * n
        self.queued, self.accepted = [[] for _ in range(n)], [[] for _ in range(n)]

    def active(self, b: int) -> bool:
        return not self.done[b] and len(self.outs[b]) < self.request.max_tokens

    def any_active(self) -> bool:
        return any(self.active(b) for b in range(self.request.branches))

    def counts(self) -> list[int]:
        return [len(o) for o in self.outs]

    def commit(self, b: int, new: list[int]) -> None:
        """Append ``new`` tokens to branch b, applying the continuation, the stop ids and the cap."""
        req = self.request
        for tok in new:
            if not self.active(b):
                return
            if self.queued[b]:
                tok = self.queued[b].pop(0)
            elif req.continuation is not None and tok in req.stop_ids and len(self.outs[b]) < req.min_tokens:
                tok, self.queued[b][:] = req.continuation[0], list(req.continuation[1:])
            self.outs[b].append(tok)
            if tok in req.stop_ids and len(self.outs[b]) > req.min_tokens:
                self.done[b] = True


@dataclass
class Decoder:
    """The models, caches and random streams one generation steps through."""

    target: Transformer
    draft: Draft | None
    request: GenerationRequest
    timer: PassTimer
    cache: object = None
    dcache: object = None
    fork_s: float = 0.0
    gens: list = field(init=False)
    stop: Tensor = field(init=False)

    def __post_init__(self):
        self.gens = branch_generators(self.request.seed, self.request.branches)
        self.stop = torch.tensor(sorted(set(self.request.stop_ids)), dtype=torch.long, device=self.device)

    @property
    def device(self) -> torch.device:
        return self.target.device

    def banned(self, counts: list[int], width: int) -> Tensor | None:
        """(B, width, V) bool: stop tokens are banned at output positions below min_tokens."""
        req = self.request
        if not len(self.stop) or req.continuation is not None:
            return None
        early = torch.tensor([[c + j < req.min_tokens for j in range(width)] for c in counts], device=self.device)
        mask = torch.zeros(len(counts), width, self.target.spec.vocab_size, dtype=torch.bool, device=self.device)
        mask[..., self.stop] = early[..., None]
        return mask

    def draw(self, logits: Tensor, counts: list[int], u: Tensor) -> tuple[Tensor, Tensor]:
        """One token per branch from logits (B, V) with stop ids banned where forcing applies: (probs, ids)."""
        m = self.banned(counts, 1)
        p = probabilities(logits, self.request.temperature, self.request.top_p, None if m is None else m[:, 0])
        return p, sample(p, u)


def prefill(dec: Decoder) -> Tensor:
    """Prefill the shared prompt once and fork its KV to every branch, or prefill one prompt per branch.
    Sets the decoder's caches and fork time; returns the first-token logits (B, V)."""
    req, target, draft, run = dec.request, dec.target, dec.draft, dec.timer
    capacity = max(len(p) for p in req.prompts) + req.max_tokens + req.draft_len + 2
    if req.shared_prompt:
        ids = torch.tensor(req.prompts, device=dec.device)
        dec.cache = target.new_cache(1, capacity)
        logits = run("target", "prefill", target, ids, dec.cache, "last")[:, 0]
        if draft is not None:
            dec.dcache = draft.model.new_cache(1, capacity, draft.n_layers)
            run("draft", "prefill", draft.model, ids, dec.dcache, "last", draft.n_layers)
        start = run.clock.now()
        if req.branches > 1:
            dec.cache = dec.cache.fork(req.branches)
            dec.dcache = dec.dcache.fork(req.branches) if dec.dcache is not None else None
        dec.fork_s = run.clock.now() - start
        return logits.expand(req.branches, -1)
    dec.cache = target.new_cache(req.branches, capacity)
    dec.dcache = draft.model.new_cache(req.branches, capacity, draft.n_layers) if draft is not None else None
    rows = []
    for b, p in enumerate(req.prompts):
        ids = torch.tensor([p], device=dec.device)
        one = target.new_cache(1, capacity)
        rows.append(run("target", "prefill", target, ids, one, "last")[0, 0])
        dec.cache.adopt(b, one)
        if draft is not None:
            one = draft.model.new_cache(1, capacity, draft.n_layers)
            run("draft", "prefill", draft.model, ids, one, "last", draft.n_layers)
            dec.dcache.adopt(b, one)
    return torch.stack(rows)


def plain_step(dec: Decoder, state: Branches) -> None:
    """One decode pass of every branch and one sampled token each."""
    last = torch.tensor([[o[-1]] for o in state.outs], device=dec.device)
    logits = dec.timer("target", "decode", dec.target, last, dec.cache, "last")
    _, nxt = dec.draw(logits[:, 0], state.counts(), uniforms(dec.gens, 1, dec.device)[:, 0])
    for b, tok in enumerate(nxt.tolist()):
        state.commit(b, [tok])


def speculative_round(dec: Decoder, state: Branches) -> None:
    """gamma draft passes, one verify pass, and each branch's accepted prefix plus one token."""
    req, draft, gamma = dec.request, dec.draft, dec.request.draft_len
    counts, plens = state.counts(), [len(req.prompt_of(b)) for b in range(req.branches)]
    # draft: gamma passes; the first reads the last two committed tokens of each branch
    dec.dcache.set_lengths([n + c - 2 for n, c in zip(plens, counts)])
    x = torch.tensor([([req.prompt_of(b)[-1]] + state.outs[b])[-2:] for b in range(req.branches)], device=dec.device)
    u = uniforms(dec.gens, 2 * gamma + 1, dec.device)  # draft draws, acceptance draws, fix-up draw
    qs, ds = [], []
    for j in range(gamma):
        logits = dec.timer("draft", "draft", draft.model, x, dec.dcache, "last", draft.n_layers)
        q, d = dec.draw(logits[:, 0], [c + j for c in counts], u[:, j])
        qs.append(q)
        ds.append(d)
        x = d[:, None]
    drafts = torch.stack(ds, 1)  # (B, gamma)
    dec.cache.set_lengths([n + c - 1 for n, c in zip(plens, counts)])
    verify_in = torch.cat([torch.tensor([[o[-1]] for o in state.outs], device=dec.device), drafts], 1)
    logits = dec.timer("target", "verify", dec.target, verify_in, dec.cache, "all")
    p = probabilities(logits, req.temperature, req.top_p, dec.banned(counts, gamma + 1))
    accepted, extra = accept_drafts(p, torch.stack(qs, 1), drafts, u[:, gamma:2 * gamma], u[:, 2 * gamma])
    acc, ext, proposed = accepted.tolist(), extra.tolist(), drafts.tolist()
    for b in range(req.branches):
        if state.active(b):
            state.accepted[b].append(acc[b])
        state.commit(b, proposed[b][:acc[b]] + [ext[b]])


def generate(target: Transformer, request: GenerationRequest, draft: Draft | None = None,
             decode: Callable[[list[int]], str] | None = None, clock: Clock | None = None,
             probe: Probe | None = None) -> GenerationResult:
    """Run ``request`` on ``target`` (with ``draft`` when its draft_len > 0); see the module docstring.

    ``decode`` turns ids into text for the outputs; ``probe`` runs every few steps, paused out of
    ``latency_s``.
    """
    check_request(target, request, draft)
    timer = PassTimer(clock or clock_for(target.device))
    dec = Decoder(target, draft if request.draft_len else None, request, timer)
    state = Branches(request)
    step = speculative_round if request.draft_len else plain_step
    rounds = 0
    with torch.inference_mode():
        t0 = timer.clock.now()
        first = prefill(dec)
        _, tokens = dec.draw(first, [0] * request.branches, uniforms(dec.gens, 1, dec.device)[:, 0])
        for b, tok in enumerate(tokens.tolist()):
            state.commit(b, [tok])
        while state.any_active():
            rounds += 1
            if probe is not None and rounds % probe.every == 0:
                paused = timer.clock.now()
                probe.run()
                t0 += timer.clock.now() - paused  # the probe is not part of the run
            step(dec, state)
        latency = timer.clock.now() - t0
    return _result(request, state, latency, timer, dec.fork_s, rounds, decode)


def _result(request: GenerationRequest, state: Branches, latency: float, timer: PassTimer, fork_s: float,
            rounds: int, decode) -> GenerationResult:
    decode = decode or (lambda ids: "")
    outputs = []
    for b, toks in enumerate(state.outs):
        text_ids = toks[:-1] if state.done[b] and toks and toks[-1] in request.stop_ids else toks
        outputs.append(BranchOutput(tokens=tuple(toks), text=decode(text_ids), finished=state.done[b],
                                    accepted_per_round=tuple(state.accepted[b]) if request.draft_len else None))
    return GenerationResult(outputs=outputs, latency_s=latency, prompt_tokens=max(len(p) for p in request.prompts),
                            draft_len=request.draft_len, passes=timer.passes, fork_s=fork_s, rounds=rounds)


def check_request(target: Transformer, request: GenerationRequest, draft: Draft | None) -> None:
    """Raise a RequestError for a request the engine cannot run as asked."""
    request.check()
    if request.draft_len and draft is None:
        raise RequestError("draft_len", request.draft_len, "needs a draft model (a separate model or self:N)")
    if draft is not None and request.draft_len:
        check_draft_compatible(target.spec, draft.model.spec)
    limit = target.spec.max_position
    longest = max(len(p) for p in request.prompts)
    if longest + request.max_tokens + request.draft_len + 1 > limit:
        raise RequestError("max_tokens", request.max_tokens,
                           f"with the prompt ({longest} tokens) exceeds {target.spec.name}'s context of {limit} "
                           f"positions; shorten the prompt or lower it")
