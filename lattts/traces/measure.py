"""Traces measured live: N sampled answers per benchmark problem at each length budget L, from the
lattts engine, graded, one trace row per sample (what ``lattts measure`` writes).

One problem at one budget is one batch: a single ``generate`` call whose N branches are the N
samples, under budget forcing:

1. Reasoning: every branch generates exactly L tokens. End-of-sequence is banned until L
   (``min_tokens = max_tokens = L``), so no branch stops early and the call is the schedule the
   simulator predicts for (B = N, L). ``tokens`` = L.
2. Answer: the last complete ``\\boxed{...}`` in those L tokens, if there is one (``finished`` =
   true: the sample reached an answer within its budget). Otherwise the answer is forced, as s1
   forces the end of thinking: the branch's text is continued with ``ANSWER_SUFFIX`` (an open
   ``\\boxed{``) and decoded greedily for at most ``ANSWER_TOKENS`` tokens, in one batched call for
   the branches that need it; the box must close within them, or the sample has no answer.
   ``finished`` = false. The forcing call is timed apart (``forcing_s``), since the simulator's
   latency is that of the L reasoning tokens (``latency_s``).
3. Grading: the answer is normalised (``answers.normalise_answer``), answers that math-verify finds
   equivalent within the batch are merged into the first of them (so a vote counts '0.5' and
   '\\frac{1}{2}' as one answer; the extracted text stays in ``answer_raw``), and graded against the
   reference with math-verify.

Seeds: the batch of problem p at budget L samples with seed ``call_seed(seed, p, L)`` (branch b
with that plus b, as the engine does), so a batch redone after an interruption draws the same
numbers and batches differ from each other.

The engine (and torch) is imported only when a batch runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from lattts.errors import UserError
from lattts.traces.answers import extract_boxed, grade, merge_equivalent, normalise_answer
from lattts.backend import GenerationRequest
from lattts.traces.benchmark import BenchmarkProblem

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# of the endings tried on SmolLM2-135M ("Final Answer: \boxed{", "**Final Answer** \[\boxed{", this one),
# the one it most often closes with a number
ANSWER_SUFFIX = "\n\nThe final answer is $\\boxed{"
ANSWER_TOKENS = 20  # enough for a number, a fraction or a short tuple; a box still open after them is no answer


@dataclass(frozen=True)
class MeasureConfig:
    """Everything that shapes the samples; its hash is the run id every row carries. Lengths and
    the number of problems are not part of it: a rerun may add either. ``server`` (a URL) samples
    through a serving engine instead of lattts' engine; ``model`` then names the served model."""

    model: str
    benchmark_sha256: str
    samples: int  # N, the branches of each batch
    temperature: float
    seed: int
    draft: str | None
    draft_len: int  # gamma; 0 without a draft
    device: str
    dtype: str
    instruction: str = INSTRUCTION
    answer_suffix: str = ANSWER_SUFFIX
    answer_tokens: int = ANSWER_TOKENS
    server: str | None = None

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict:
        out = asdict(self)
        if out["server"] is None:  # absent, so the run ids of engine runs stay what they were
            del out["server"]
        return out


def load_engine(config: MeasureConfig):
    """What samples: lattts' engine with the model and draft a configuration names
    (``lattts.engine.local.LocalEngine``), or the server at ``config.server`` (``lattts.serving.served``)."""
    if config.server:
        from lattts.serving.served import ServedEngine

        return ServedEngine.at(config.server, config.draft_len)
    from lattts.engine.local import load_engine as load

    return load(config.model, config.device, config.dtype, config.draft, config.seed)


def call_seed(seed: int, problem_id: str, max_tokens: int) -> int:
    """The engine seed of one batch: a stable hash of the run's seed, the problem and the budget."""
    digest = hashlib.sha256(f"{seed}/{problem_id}/{max_tokens}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def prompt_ids(engine, problem: BenchmarkProblem) -> list[int]:
    """The problem and the instruction, in the model's chat template, as token ids."""
    return engine.encode(f"{problem.problem}\n\n{INSTRUCTION}", chat=True)


def check_fits(engine, config: MeasureConfig, problem: BenchmarkProblem, ids: list[int], max_tokens: int) -> None:
    """UserError unless the prompt, L tokens and what follows them fit the model's context: the
    draft's lookahead (gamma) in the reasoning call, the suffix and answer tokens in the forcing call."""
    after = max(config.draft_len, len(engine.encode(ANSWER_SUFFIX)) + ANSWER_TOKENS)
    need = len(ids) + max_tokens + after + 1
    if need > engine.context_tokens:
        raise UserError(f"problem {problem.id} ({problem.where}): its prompt ({len(ids)} tokens), length L={max_tokens} "
                        f"and the answer forcing need {need} positions, more than the {engine.context_tokens} of "
                        f"{engine.name}; lower --lengths")


def measure_batch(engine, config: MeasureConfig, problem: BenchmarkProblem, ids: list[int], max_tokens: int) -> list[dict]:
    """The N trace rows of one problem at length L (see the module docstring)."""
    request = GenerationRequest.forced(ids, config.samples, max_tokens, temperature=config.temperature,
                                       seed=call_seed(config.seed, problem.id, max_tokens),
                                       draft_len=config.draft_len if engine.draft else 0, stop_ids=engine.stop_ids)
    res = engine.generate(request)
    texts = [o.text for o in res.outputs]
    raw = [extract_boxed(t) for t in texts]
    need = [b for b, a in enumerate(raw) if a is None]
    forced, forcing_s = force_answers(engine, ids, [res.outputs[b].tokens for b in need]) if need else ([], 0.0)
    forced_by_branch = dict(zip(need, forced))
    for b, text in forced_by_branch.items():
        raw[b] = extract_boxed("\\boxed{" + text)
    answers = merge_equivalent([normalise_answer(a) if a is not None else None for a in raw])
    verdicts = {a: grade(a, problem.answer) for a in set(answers) if a is not None}
    rows = []
    for b, out in enumerate(res.outputs):
        row = {"problem_id": problem.id, "sample_id": b, "answer": answers[b],
               "correct": verdicts.get(answers[b], False), "max_tokens": max_tokens, "tokens": len(out.tokens),
               "finished": b not in forced_by_branch, "latency_s": res.latency_s}
        if engine.draft is not None:
            row["draft_len"] = res.draft_len
            row["accepted_per_round"] = list(out.accepted_per_round)
        row |= {"answer_raw": raw[b], "reference": problem.answer, "forcing_s": forcing_s, "response": texts[b],
                "forced_text": forced_by_branch.get(b), "run_id": config.run_id}
        rows.append(row)
    return rows


def force_answers(engine, ids: list[int], reasoning: list[tuple[int, ...]]) -> tuple[list[str], float]:
    """For each branch's reasoning tokens, the text the model writes after ``ANSWER_SUFFIX`` (greedy, at
    most ``ANSWER_TOKENS`` tokens), from one batched call; and that call's latency in seconds."""
    suffix = engine.encode(ANSWER_SUFFIX)
    prompts = [ids + list(tokens) + suffix for tokens in reasoning]
    # greedy, without the draft: the answer the reasoning so far implies, not a fresh sample
    request = GenerationRequest.of(prompts, branches=len(prompts), max_tokens=ANSWER_TOKENS, temperature=0.0,
                                   stop_ids=engine.stop_ids)
    res = engine.generate(request)
    return [o.text for o in res.outputs], res.latency_s


@dataclass(frozen=True)
class LengthSummary:
    """What was measured at one length budget, over the rows given."""

    max_tokens: int
    problems: int
    samples: int
    accuracy: float  # B = 1: mean over problems of the share of correct samples
    answered: float  # share of samples with an answer (before or after forcing)
    finished: float  # share of samples with an answer within the L tokens
    latency_s: float  # mean over batches of the L-token call
    forcing_s: float  # mean over batches of the answer-forcing call (0 when none was needed)
    alpha: float | None  # speculative acceptance (as `lattts acceptance` reports it); None without a draft

    def to_json(self) -> dict:
        return asdict(self)


def summarise_lengths(rows: list[dict]) -> list[LengthSummary]:
    """Per budget, ascending: accuracy at B = 1, answer shares, mean call latencies, acceptance."""
    by_length: dict[int, list[dict]] = {}
    for r in rows:
        by_length.setdefault(int(r["max_tokens"]), []).append(r)
    out = []
    for L in sorted(by_length):
        group = by_length[L]
        per_problem: dict[str, list[dict]] = {}
        for r in group:
            per_problem.setdefault(str(r["problem_id"]), []).append(r)
        batches = [rs[0] for rs in per_problem.values()]  # latency is per call: count each batch once
        acc = sum(sum(r["correct"] for r in rs) / len(rs) for rs in per_problem.values()) / len(per_problem)
        out.append(LengthSummary(
            max_tokens=L, problems=len(per_problem), samples=len(group), accuracy=acc,
            answered=sum(r["answer"] is not None for r in group) / len(group),
            finished=sum(bool(r.get("finished")) for r in group) / len(group),
            latency_s=sum(r["latency_s"] for r in batches) / len(batches),
            forcing_s=sum(r.get("forcing_s", 0.0) for r in batches) / len(batches),
            alpha=_alpha(group)))
    return out


def _alpha(rows: list[dict]) -> float | None:
    """Per-token acceptance of the rounds in ``rows``, as ``lattts acceptance`` computes it."""
    if not rows or "accepted_per_round" not in rows[0]:
        return None
    from lattts.simulator.speculative import AcceptanceModel

    gamma = int(rows[0]["draft_len"])
    hist = [0] * (gamma + 1)
    for r in rows:
        for a in r["accepted_per_round"]:
            hist[a] += 1
    return AcceptanceModel.from_histogram(hist, "measured", gamma).alpha if sum(hist) else None
