"""What a backend that runs real generation takes and gives back, whichever it is (lattts' own
engine in process, or a serving engine over HTTP): a ``GenerationRequest`` in, a
``GenerationResult`` out. Workflows (validate, measure, calibrate's overhead probe) build requests
and read results; they never need to know which backend ran them.

Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from lattts.errors import UserError
from lattts.simulator.generation import EngineSchedule

# How each engine lays out the passes of B branches (from each engine's scheduler): llama.cpp's server
# prefills the parent slot's prompt once and copies its KV to the children (a request of n samples
# costs about one prefill, measured), drafts for all slots in one batch per draft token, and after
# each verify pass re-runs the verify batch through the draft (tools/server/server-context.cpp and
# common/speculative.cpp, b11549-era source read for xllamacpp 2026.10); transformers' generate
# copies the prompt per sequence; lattts' engine, vLLM and SGLang prefill a shared prompt once. In the
# three servers a sequence that has its tokens leaves the running batch (llama.cpp releases its slot;
# vLLM and SGLang free a finished sequence from their running batch); lattts' engine and transformers
# keep every branch in the batch until the slowest is done.
SCHEDULES = {
    "lattts": EngineSchedule(),
    "transformers": EngineSchedule(shared_prefill=False),
    "llama.cpp": EngineSchedule(draft_mirrors_verify=True, finished_leave=True),
    "vllm": EngineSchedule(finished_leave=True),
    "sglang": EngineSchedule(finished_leave=True),
}


def schedule_of(engine: str | None) -> EngineSchedule:
    """The schedule of an engine by name; a profile from a datasheet (no engine) gets the default."""
    return SCHEDULES.get(engine or "lattts", EngineSchedule())


class RequestError(UserError):
    """A request a backend cannot run as asked; names the request field, so a CLI can word it as its flag."""

    def __init__(self, field_name: str, value, problem: str):
        self.field_name, self.value, self.problem = field_name, value, problem
        super().__init__(f"{field_name} {value}: {problem}")


@dataclass(frozen=True)
class GenerationRequest:
    """B branches of one prompt (or one prompt per branch), each up to ``max_tokens`` tokens.

    ``prompts`` holds token ids: one prompt shared by every branch (prefilled once), or B prompts,
    one per branch. Budget forcing: end-of-sequence ids (``stop_ids``) are banned until a branch has
    ``min_tokens``; with ``continuation`` (plain decoding only) a branch that tries to stop early gets
    those tokens instead (e.g. "Wait", as in s1). ``draft_len`` > 0 asks for speculative decoding
    with that many draft tokens per round. Branch b samples from a generator seeded with seed + b.
    ``cached_prompt`` lets a server reuse a prompt it still holds (calibration's decode steps, whose
    prefill is not timed); otherwise every run pays its prefill, as a new question does.
    """

    prompts: tuple[tuple[int, ...], ...]
    branches: int = 1
    max_tokens: int = 128
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    draft_len: int = 0
    stop_ids: tuple[int, ...] = ()
    continuation: tuple[int, ...] | None = None
    cached_prompt: bool = False

    @classmethod
    def of(cls, prompt, **fields) -> "GenerationRequest":
        """A request from one prompt (a list of ids) or a list of per-branch prompts."""
        prompts = [prompt] if not prompt or not isinstance(prompt[0], (list, tuple)) else list(prompt)
        cont = fields.pop("continuation", None)
        return cls(prompts=tuple(tuple(int(t) for t in p) for p in prompts),
                   continuation=None if cont is None else tuple(cont),
                   stop_ids=tuple(sorted(set(fields.pop("stop_ids", ())))), **fields)

    @classmethod
    def forced(cls, prompt, branches: int, max_tokens: int, **fields) -> "GenerationRequest":
        """Budget forcing: every branch runs exactly ``max_tokens`` tokens (the schedule predict assumes)."""
        return cls.of(prompt, branches=branches, max_tokens=max_tokens, min_tokens=max_tokens, **fields)

    @property
    def shared_prompt(self) -> bool:
        return len(self.prompts) == 1

    def prompt_of(self, branch: int) -> tuple[int, ...]:
        return self.prompts[0 if self.shared_prompt else branch]

    def check(self) -> None:
        """Raise a RequestError for a request no backend can run."""
        if not self.prompts or any(len(p) == 0 for p in self.prompts):
            raise RequestError("prompt", "''", "the prompt is empty")
        if self.branches < 1:
            raise RequestError("branches", self.branches, "need at least one branch")
        if not self.shared_prompt and len(self.prompts) != self.branches:
            raise RequestError("branches", self.branches, f"{len(self.prompts)} prompts given: give one prompt, "
                                                          f"or one per branch")
        if self.max_tokens < 1:
            raise RequestError("max_tokens", self.max_tokens, "need at least one token")
        if self.min_tokens > self.max_tokens:
            raise RequestError("min_tokens", self.min_tokens, f"exceeds the cap of {self.max_tokens} tokens: budget "
                                                              f"forcing cannot force more tokens than the cap allows")
        if self.temperature < 0:
            raise RequestError("temperature", self.temperature, "must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise RequestError("top_p", self.top_p, "must be in (0, 1]")
        if self.draft_len < 0:
            raise RequestError("draft_len", self.draft_len, "must be >= 0")
        if self.draft_len and self.continuation is not None:
            raise RequestError("continuation", "(given)", "a continuation string (budget forcing with 'Wait') runs "
                                                          "with plain decoding only; drop it or the draft")


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
    tokens: tuple[int, ...]  # the ids, where the backend returns them (a server may give only a count)
    text: str
    finished: bool  # stopped on an end-of-sequence token (after min_tokens), not by max_tokens
    accepted_per_round: tuple[int, ...] | None = None  # draft tokens accepted in each of its rounds, in order
    token_count: int | None = None  # tokens generated, when ``tokens`` does not hold them

    @property
    def length(self) -> int:
        return self.token_count if self.token_count is not None else len(self.tokens)


@dataclass(frozen=True)
class AcceptanceCounts:
    """Speculative rounds as a server counts them (totals over the branches, no per-round order):
    rounds (verify passes per branch, summed), draft tokens proposed and accepted, and where the
    server exports per-position counters, the histogram of rounds by draft tokens accepted."""

    draft_len: int
    rounds: int
    drafted: int
    accepted: int
    histogram: tuple[int, ...] | None = None
    source: str = ""

    @property
    def mean_accepted(self) -> float:
        return self.accepted / self.rounds if self.rounds else 0.0


@dataclass
class GenerationResult:
    """What came back: every branch's tokens and text, the wall time and, where the backend saw
    them, every forward pass and each branch's speculative rounds."""

    outputs: list[BranchOutput]
    latency_s: float  # wall time from the start of prefill to the last token
    prompt_tokens: int
    draft_len: int
    passes: list[PassRecord] = field(default_factory=list)
    fork_s: float = 0.0  # copying the prompt's KV to the branches
    rounds: int = 0  # lock-step steps after prefill (decode steps or speculative rounds)
    counts: AcceptanceCounts | None = None  # a server's acceptance totals (the engine records rounds instead)
    server: dict = field(default_factory=dict)  # a server's own timings and settings, as it reported them

    @property
    def accepted_per_branch(self) -> list[list[int]] | None:
        if not self.draft_len:
            return None
        return [list(o.accepted_per_round or ()) for o in self.outputs]

    @property
    def accepted_histogram(self) -> list[int] | None:
        """Rounds (over branches) by draft tokens accepted, 0..draft_len; None without speculation
        (or when a server counted only totals)."""
        if not self.draft_len:
            return None
        if self.counts is not None:
            return list(self.counts.histogram) if self.counts.histogram else None
        hist = [0] * (self.draft_len + 1)
        for o in self.outputs:
            for a in o.accepted_per_round or ():
                hist[a] += 1
        return hist

    def acceptance_model(self, source: str = "this run"):
        """The run's acceptance as an ``AcceptanceModel``: from its histogram, else (a server's totals)
        the i.i.d. alpha whose expected accepted tokens per round match; None without rounds."""
        from lattts.simulator.speculative import AcceptanceModel

        hist = self.accepted_histogram
        if hist and sum(hist):
            return AcceptanceModel.from_histogram(hist, source, self.draft_len)
        if self.counts is not None and self.counts.rounds:
            return AcceptanceModel.from_mean_accepted(self.counts.mean_accepted, self.draft_len, source)
        return None

    @property
    def acceptance_rate(self) -> float | None:
        """Per-token acceptance alpha, as ``lattts acceptance`` computes it (``AcceptanceModel.alpha``)."""
        model = self.acceptance_model() if self.draft_len else None
        return None if model is None else model.alpha

    @property
    def tokens_per_round(self) -> float | None:
        hist = self.accepted_histogram
        if hist and sum(hist):
            return sum((a + 1) * n for a, n in enumerate(hist)) / sum(hist)
        if self.counts is not None and self.counts.rounds:
            return self.counts.mean_accepted + 1.0
        return None

    @property
    def outside_passes_s(self) -> float:
        """Wall time not spent in forward passes or the KV copy: sampling, acceptance, bookkeeping."""
        return self.latency_s - sum(p.time_s for p in self.passes) - self.fork_s

    def timing_summary(self) -> dict:
        """Time per phase (count, total, mean) and what is left: sampling, acceptance, Python."""
        phases: dict[str, dict] = {}
        for rec in self.passes:
            entry = phases.setdefault(f"{rec.model}:{rec.phase}", {"passes": 0, "total_s": 0.0})
            entry["passes"] += 1
            entry["total_s"] += rec.time_s
        for entry in phases.values():
            entry["mean_s"] = entry["total_s"] / entry["passes"]
        return {"latency_s": self.latency_s, "passes_s": sum(r.time_s for r in self.passes), "fork_s": self.fork_s,
                "other_s": self.outside_passes_s, "phases": phases}

    def to_json(self, with_passes: bool = False) -> dict:
        out = {
            "outputs": [{"text": o.text, "tokens": o.length, "finished": o.finished}
                        | ({"accepted_per_round": list(o.accepted_per_round or ())} if self.draft_len else {})
                        for o in self.outputs],
            "latency_s": self.latency_s, "prompt_tokens": self.prompt_tokens, "draft_len": self.draft_len,
            "timing": self.timing_summary(),
        }
        if self.draft_len:
            out["acceptance_rate"] = self.acceptance_rate
            out["tokens_per_round"] = self.tokens_per_round
            out["acceptance"] = {"draft_len": self.draft_len, "accepted_histogram": self.accepted_histogram,
                                 "rounds": self.rounds}
        if self.server:
            out["server"] = self.server
        if with_passes:
            out["passes"] = [asdict(p) for p in self.passes]
        return out


class Generator(Protocol):
    """A backend that runs generation requests on one loaded model (and its draft, if any).

    ``probe``, where the backend can honour it, is run every few steps of the generation and left
    out of its latency (validation re-times a reference pass during a run this way)."""

    name: str

    def generate(self, request: GenerationRequest, probe=None) -> GenerationResult: ...
