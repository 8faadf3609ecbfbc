"""Time the exact majority-vote estimator on 500 problems x 64 samples x 8 lengths, B = 1, 2, 4, ..., 64.

Run: python benchmarks/bench_estimator.py. Prints one JSON object. The traces are synthetic (seeded):
per problem a difficulty, per length a success probability rising with L; wrong answers split
over 1-5 distractors (Dirichlet weights) plus one-off answers; unanswered samples at short
lengths. Every timing starts from empty caches, so equal problems are reused only within a run.
Times are of this machine at this moment (the CPU drifts 20-40% over tens of minutes).
"""

from __future__ import annotations

import json
import statistics
import time
from functools import _lru_cache_wrapper

import numpy as np

from lattts.traces import majority
from lattts.traces.curve import curve_points, estimate
from lattts.traces.format import TraceRow, Traces
from lattts.traces.groups import AnswerSets, group_answers
from lattts.traces.majority import AnswerCounts, majority_matrix

PROBLEMS, SAMPLES, LENGTHS = 500, 64, 8
BRANCHES = (1, 2, 4, 8, 16, 32, 64)


def synthetic_labels(seed: int = 0) -> list[list[list]]:
    """labels[length][problem]: per sample 'ok', a wrong answer, or None (unanswered)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.5, PROBLEMS)
    out = []
    for j in range(LENGTHS):
        per_length = []
        for i in range(PROBLEMS):
            p = 1.0 / (1.0 + np.exp(-(difficulty[i] + 0.4 * j - 1.0)))
            unanswered = 0.5 * np.exp(-j)
            distractors = rng.dirichlet(np.full(rng.integers(1, 6), 0.5))
            probs = np.concatenate([[p], (1 - p) * 0.8 * distractors, [(1 - p) * 0.2]]) * (1 - unanswered)
            probs = np.append(probs, unanswered)
            kind = rng.choice(len(probs), size=SAMPLES, p=probs / probs.sum())
            labels = []
            for s, k in enumerate(kind):
                if k == 0:
                    labels.append("ok")
                elif k == len(probs) - 1:
                    labels.append(None)
                elif k == len(probs) - 2:
                    labels.append(f"once-{s}")  # a one-off wrong answer
                else:
                    labels.append(f"wrong-{k}")
            per_length.append(labels)
        out.append(per_length)
    return out


def to_answer_sets(labels) -> AnswerSets:
    counts = []
    for per_length in labels:
        row = []
        for problem in per_length:
            groups: dict = {}
            for a in problem:
                groups[a] = groups.get(a, 0) + 1
            row.append(AnswerCounts(correct=(groups["ok"],) if "ok" in groups else (),
                                    wrong=tuple(n for a, n in groups.items() if a not in ("ok", None)),
                                    unanswered=groups.get(None, 0)))
        counts.append(tuple(row))
    return AnswerSets(problems=tuple(map(str, range(PROBLEMS))), lengths=tuple(512 * 2 ** j for j in range(LENGTHS)),
                      counts=tuple(counts))


def to_traces(labels) -> Traces:
    rows = [TraceRow(problem_id=str(i), sample_id=str(s), answer=a, correct=a == "ok", max_tokens=512 * 2 ** j)
            for j, per_length in enumerate(labels) for i, problem in enumerate(per_length) for s, a in enumerate(problem)]
    return Traces(rows=tuple(rows), path="synthetic", format="lattts")


def clear_caches() -> None:
    for value in vars(majority).values():
        if isinstance(value, _lru_cache_wrapper):
            value.cache_clear()


def timed(fn, repeats: int = 5) -> dict:
    times = []
    for _ in range(repeats):
        clear_caches()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> dict:
    labels = synthetic_labels()
    answers = to_answer_sets(labels)
    distinct = len({c.canonical() for per_length in answers.counts for c in per_length})
    traces = to_traces(labels)
    worst = [AnswerCounts((1,), (1,) * 63), AnswerCounts((16,), (16, 16, 16)), AnswerCounts((10,), (10,) * 5 + (4,)),
             AnswerCounts((20,), (12, 9, 7, 5, 3, 2, 1, 1, 1, 1), 3)]
    return {
        "workload": {"problems": PROBLEMS, "samples": SAMPLES, "lengths": LENGTHS, "branches": list(BRANCHES),
                     "distinct_problem_shapes": distinct, "problem_length_pairs": PROBLEMS * LENGTHS},
        "majority_exact": timed(lambda: [majority_matrix(per_length, BRANCHES) for per_length in answers.counts]),
        "estimate_with_pass_at_k": timed(lambda: estimate(answers, BRANCHES)),
        "estimate_and_bootstrap_1000": timed(lambda: curve_points(estimate(answers, BRANCHES), resamples=1000)),
        "group_rows": timed(lambda: group_answers(traces), repeats=3),
        "single_problem_s": {str(c): timed(lambda c=c: majority_matrix([c], BRANCHES), repeats=3)["median_s"]
                             for c in worst},
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
