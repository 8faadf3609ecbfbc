"""Generation: B branches of one prompt, budget forcing, speculative decoding, every pass timed.

The pass schedule is the one the simulator predicts (``lattts.simulator.generation``):

- prefill the prompt once (B=1), copy its KV to the B branches; the prefill's logits give every
  branch its first token;
- plain decoding: one pass of (B, q=1) per further token;
- speculative decoding, per round: the draft runs gamma passes (the first feeds each branch's last
  two committed tokens, q=2, which also covers a draft token it proposed but never read; then
  q=1), the target verifies [last token, d_1..d_gamma] in one pass of q=gamma+1, and each branch
  keeps its own accepted prefix plus one token (rejection sampling keeps the target's
  distribution). Branches stay in lock-step until the slowest has its tokens.

Budget forcing: end-of-sequence tokens (and an optional end-of-thinking token) are banned until a
branch has ``min_tokens``; with ``continuation`` (plain decoding only) a branch that samples one
early gets the continuation text (e.g. "Wait", as in s1) instead. ``max_tokens`` caps every branch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from lattts.engine.model import Transformer
from lattts.engine.sampling import accept_drafts, branch_generators, probabilities, sample, uniforms
from lattts.engine.timing import Clock, clock_for
from lattts.errors import UserError
from lattts.models.registry import check_draft_compatible


@dataclass(frozen=True)
class PassRecord:
    """One forward pass: which model, its shape and its time."""

    model: str  # 'target' or 'draft'
    phase: str  # 'prefill', 'decode', 'draft', 'verify'
    batch: int
    query: int
    context: int  # longest cached sequence before the pass
    context_mean: float
    time_s: float


@dataclass(frozen=True)
class BranchOutput:
    tokens: tuple[int, ...]
    text: str
    finished: bool  # stopped on an end-of-sequence token (after min_tokens), not by max_tokens


@dataclass
class GenerationResult:
    outputs: list[BranchOutput]
    latency_s: float  # wall time from the start of prefill to the last token
    prompt_tokens: int
    draft_len: int
    passes: list[PassRecord] = field(default_factory=list)
    fork_s: float = 0.0  # copying the prompt's KV to the branches
    accepted_histogram: list[int] | None = None  # rounds (per branch) by accepted draft tokens 0..gamma
    rounds: int = 0
    accepted_per_branch: list[list[int]] | None = None  # per branch, draft tokens accepted in each of its rounds

    @property
    def acceptance_rate(self) -> float | None:
        """Per-token acceptance alpha from the histogram, as ``lattts acceptance`` computes it
        (``AcceptanceModel.alpha``: accepted / (accepted + rejections))."""
        if not self.accepted_histogram or not sum(self.accepted_histogram):
            return None
        from lattts.simulator.speculative import AcceptanceModel

        return AcceptanceModel.from_histogram(self.accepted_histogram, "this run").alpha

    @property
    def tokens_per_round(self) -> float | None:
        if not self.accepted_histogram or not sum(self.accepted_histogram):
            return None
        return sum((a + 1) * n for a, n in enumerate(self.accepted_histogram)) / sum(self.accepted_histogram)

    def timing_summary(self) -> dict:
        """Time per phase (count, total, mean) and what is left: sampling, acceptance, Python."""
        phases: dict[str, dict] = {}
        for rec in self.passes:
            entry = phases.setdefault(f"{rec.model}:{rec.phase}", {"passes": 0, "total_s": 0.0})
            entry["passes"] += 1
            entry["total_s"] += rec.time_s
        for entry in phases.values():
            entry["mean_s"] = entry["total_s"] / entry["passes"]
        in_passes = sum(r.time_s for r in self.passes)
        return {"latency_s": self.latency_s, "passes_s": in_passes, "fork_s": self.fork_s,
                "other_s": self.latency_s - in_passes - self.fork_s, "phases": phases}

    def to_json(self, with_passes: bool = False) -> dict:
        out = {
            "outputs": [{"text": o.text, "tokens": len(o.tokens), "finished": o.finished} for o in self.outputs],
            "latency_s": self.latency_s, "prompt_tokens": self.prompt_tokens, "draft_len": self.draft_len,
            "timing": self.timing_summary(),
        }
        if self.accepted_histogram is not None:
            out["acceptance_rate"] = self.acceptance_rate
            out["tokens_per_round"] = self.tokens_per_round
            out["acceptance"] = {"draft_len": self.draft_len, "accepted_histogram": self.accepted_histogram,
                                 "rounds": self.rounds}
        if with_passes:
            out["passes"] = [asdict(p) for p in self.passes]
        return out


@dataclass(frozen=True)
class Draft:
    """What proposes tokens: a separate model, or the target's first ``layers`` layers (self:N)."""

    model: Transformer
    layers: int | None = None  # None = all of ``model``'s layers

    @property
    def n_layers(self) -> int:
        return self.layers or self.model.spec.n_layers


class _Runner:
    """Runs and times forward passes, recording each one."""

    def __init__(self, clock: Clock):
        self.clock, self.passes = clock, []

    def __call__(self, name: str, phase: str, model: Transformer, tokens: Tensor, cache, logits: str,
                 n_layers: int | None = None) -> Tensor:
        lengths = cache.host_lengths
        start = self.clock.now()
        out = model(tokens, cache, logits, n_layers)
        self.passes.append(PassRecord(name, phase, tokens.shape[0], tokens.shape[1], max(lengths),
                                      sum(lengths) / len(lengths), self.clock.now() - start))
        return out


def generate(target: Transformer, prompt: list[int] | list[list[int]], branches: int = 1, max_tokens: int = 128, min_tokens: int = 0,
             temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, draft: Draft | None = None,
             draft_len: int = 0, stop_ids: tuple[int, ...] = (), continuation: list[int] | None = None,
             decode=None, clock: Clock | None = None, probe=None, probe_every: int = 4) -> GenerationResult:
    """Generate up to ``max_tokens`` tokens on each of ``branches`` branches of ``prompt`` (token ids).

    ``prompt`` may also be a list of B prompts (one per branch, any lengths): each is prefilled on
    its own into its branch's row, so branches start from different contexts. ``stop_ids``:
    end-of-sequence (and end-of-thinking) ids, banned before ``min_tokens``. ``decode``: ids -> text
    for the outputs. See the module docstring for the schedule. ``probe``, if given, is called every
    ``probe_every`` steps (or rounds) and its time is left out of ``latency_s``: validation uses it
    to re-time a reference pass during a run, tracking the device's speed while the run goes on.
    """
    prompts = [list(p) for p in prompt] if prompt and isinstance(prompt[0], (list, tuple)) else [list(prompt)]
    if len(prompts) > 1 and len(prompts) != branches:
        raise UserError(f"{len(prompts)} prompts for {branches} branches: give one prompt, or one per branch")
    for p in prompts:
        check_request(target, p, branches, max_tokens, min_tokens, temperature, top_p, draft, draft_len, continuation)
    device = target.device
    clock = clock or clock_for(device)
    run = _Runner(clock)
    plens = [len(p) for p in prompts] * (branches if len(prompts) == 1 else 1)  # prompt length per branch
    capacity = max(plens) + max_tokens + draft_len + 2
    stop = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=device)
    gens = branch_generators(seed, branches)
    outs: list[list[int]] = [[] for _ in range(branches)]
    done = [False] * branches  # stopped on EOS after min_tokens
    queued: list[list[int]] = [[] for _ in range(branches)]  # continuation tokens still to emit

    def banned(counts: list[int], width: int) -> Tensor | None:
        """(B, width, V) bool: stop tokens are banned at output positions below min_tokens."""
        if not len(stop) or continuation is not None:
            return None
        early = torch.tensor([[c + j < min_tokens for j in range(width)] for c in counts], device=device)
        mask = torch.zeros(len(counts), width, target.spec.vocab_size, dtype=torch.bool, device=device)
        mask[..., stop] = early[..., None]
        return mask

    def commit(b: int, new: list[int]) -> None:
        for tok in new:
            if done[b] or len(outs[b]) >= max_tokens:
                return
            if queued[b]:
                tok = queued[b].pop(0)
            elif continuation is not None and tok in stop_ids and len(outs[b]) < min_tokens:
                tok, queued[b][:] = continuation[0], list(continuation[1:])
            outs[b].append(tok)
            if tok in stop_ids and len(outs[b]) > min_tokens:
                done[b] = True

    with torch.inference_mode():
        t0 = clock.now()
        cache, dcache, fork_s, first_logits = _prefill(target, draft, prompts, branches, capacity, run, clock)
        m = banned([0] * branches, 1)
        p = probabilities(first_logits, temperature, top_p, None if m is None else m[:, 0])
        first = sample(p, uniforms(gens, 1, device)[:, 0]).tolist()
        for b in range(branches):
            commit(b, [first[b]])

        def active() -> bool:
            return any(not done[b] and len(outs[b]) < max_tokens for b in range(branches))

        hist = [0] * (draft_len + 1) if draft is not None else None
        per_branch = [[] for _ in range(branches)] if draft is not None else None
        rounds = 0
        while active():
            rounds += 1
            if probe is not None and rounds % probe_every == 0:
                paused = clock.now()
                probe()
                t0 += clock.now() - paused  # the probe is not part of the run
            if draft is None:
                last = torch.tensor([[o[-1]] for o in outs], device=device)
                logits = run("target", "decode", target, last, cache, "last")
                m = banned([len(o) for o in outs], 1)
                p = probabilities(logits[:, 0], temperature, top_p, None if m is None else m[:, 0])
                nxt = sample(p, uniforms(gens, 1, device)[:, 0]).tolist()
                for b in range(branches):
                    commit(b, [nxt[b]])
                continue
            counts = [len(o) for o in outs]
            # draft: gamma passes; the first reads the last two committed tokens of each branch
            dcache.set_lengths([n + c - 2 for n, c in zip(plens, counts)])
            lasts = [prompts[b % len(prompts)][-1] for b in range(branches)]
            pair = torch.tensor([([lasts[b]] + outs[b])[-2:] for b in range(branches)], device=device)
            u = uniforms(gens, 2 * draft_len + 1, device)  # draft draws, acceptance draws, fix-up draw
            qs, ds = [], []
            x = pair
            for j in range(draft_len):
                dl = run("draft", "draft", draft.model, x, dcache, "last", draft.n_layers)
                m = banned([c + j for c in counts], 1)
                q = probabilities(dl[:, 0], temperature, top_p, None if m is None else m[:, 0])
                d = sample(q, u[:, j])
                qs.append(q)
                ds.append(d)
                x = d[:, None]
            drafts = torch.stack(ds, 1)  # (B, gamma)
            cache.set_lengths([n + c - 1 for n, c in zip(plens, counts)])
            verify_in = torch.cat([torch.tensor([[o[-1]] for o in outs], device=device), drafts], 1)
            tl = run("target", "verify", target, verify_in, cache, "all")
            p = probabilities(tl, temperature, top_p, banned(counts, draft_len + 1))
            accepted, extra = accept_drafts(p, torch.stack(qs, 1), drafts, u[:, draft_len:2 * draft_len],
                                            u[:, 2 * draft_len])
            acc, ext, dl_list = accepted.tolist(), extra.tolist(), drafts.tolist()
            for b in range(branches):
                if not done[b] and len(outs[b]) < max_tokens:
                    hist[acc[b]] += 1
                    per_branch[b].append(acc[b])
                commit(b, dl_list[b][:acc[b]] + [ext[b]])
        latency = clock.now() - t0

    decode = decode or (lambda ids: "")
    outputs = []
    for b in range(branches):
        toks = outs[b]
        text_ids = toks[:-1] if done[b] and toks and toks[-1] in stop_ids else toks
        outputs.append(BranchOutput(tokens=tuple(toks), text=decode(text_ids), finished=done[b]))
    return GenerationResult(outputs=outputs, latency_s=latency, prompt_tokens=max(plens), draft_len=draft_len if draft else 0,
                            passes=run.passes, fork_s=fork_s, accepted_histogram=hist, rounds=rounds,
                            accepted_per_branch=per_branch)


def _prefill(target: Transformer, draft: Draft | None, prompts: list[list[int]], branches: int, capacity: int,
             run: _Runner, clock: Clock):
    """Prefill the shared prompt once and fork its KV to every branch, or prefill one prompt per branch.
    Returns (target cache, draft cache or None, fork time, first-token logits (B, V))."""
    device = target.device
    if len(prompts) == 1:
        cache = target.new_cache(1, capacity)
        logits = run("target", "prefill", target, torch.tensor(prompts, device=device), cache, "last")[:, 0]
        dcache = None
        if draft is not None:
            dcache = draft.model.new_cache(1, capacity, draft.n_layers)
            run("draft", "prefill", draft.model, torch.tensor(prompts, device=device), dcache, "last", draft.n_layers)
        start = clock.now()
        if branches > 1:
            cache = cache.fork(branches)
            dcache = dcache.fork(branches) if dcache is not None else None
        return cache, dcache, clock.now() - start, logits.expand(branches, -1)
    cache = target.new_cache(branches, capacity)
    dcache = draft.model.new_cache(branches, capacity, draft.n_layers) if draft is not None else None
    rows = []
    for b, p in enumerate(prompts):
        one = target.new_cache(1, capacity)
        rows.append(run("target", "prefill", target, torch.tensor([p], device=device), one, "last")[0, 0])
        cache.adopt(b, one)
        if draft is not None:
            one = draft.model.new_cache(1, capacity, draft.n_layers)
            run("draft", "prefill", draft.model, torch.tensor([p], device=device), one, "last", draft.n_layers)
            dcache.adopt(b, one)
    return cache, dcache, 0.0, torch.stack(rows)


def check_request(target: Transformer, prompt: list[int], branches: int, max_tokens: int, min_tokens: int,
                  temperature: float, top_p: float, draft: Draft | None, draft_len: int,
                  continuation: list[int] | None) -> None:
    """Raise a UserError for a request the engine cannot run as asked."""
    if not prompt:
        raise UserError("the prompt is empty")
    if branches < 1:
        raise UserError(f"--branches {branches}: need at least one branch")
    if max_tokens < 1:
        raise UserError(f"--max-tokens {max_tokens}: need at least one token")
    if min_tokens > max_tokens:
        raise UserError(f"--min-tokens {min_tokens} exceeds --max-tokens {max_tokens}: budget forcing cannot "
                        f"force more tokens than the cap allows")
    if temperature < 0 or not 0 < top_p <= 1:
        raise UserError("--temperature must be >= 0 and --top-p in (0, 1]")
    if draft_len and draft is None:
        raise UserError(f"--draft-len {draft_len} needs a draft model: pass --draft MODEL or --draft self:N")
    if draft is not None and draft_len < 1:
        raise UserError("a draft needs --draft-len of at least 1")
    if draft is not None:
        check_draft_compatible(target.spec, draft.model.spec)
    if draft is not None and continuation is not None:
        raise UserError("a continuation string (budget forcing with 'Wait') runs with plain decoding only; "
                        "drop --continuation to ban end-of-sequence tokens instead, or drop the draft")
    limit = target.spec.max_position
    if len(prompt) + max_tokens + draft_len + 1 > limit:
        raise UserError(f"prompt ({len(prompt)} tokens) plus --max-tokens {max_tokens} exceeds {target.spec.name}'s "
                        f"context of {limit} positions; shorten the prompt or lower --max-tokens")
