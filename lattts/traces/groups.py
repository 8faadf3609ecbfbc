"""From sample rows to answer groups: per problem and budget, how many samples gave each answer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lattts.errors import UserError
from lattts.traces.format import Traces
from lattts.traces.majority import AnswerCounts


@dataclass(frozen=True)
class AnswerSets:
    """Answer-group sizes of every problem at every budget.

    ``counts[j][i]`` is problem ``problems[i]`` at budget ``lengths[j]`` (a single entry j = 0
    when ``lengths`` is None: a single-budget file).
    """

    problems: tuple[str, ...]
    lengths: tuple[int, ...] | None
    counts: tuple[tuple[AnswerCounts, ...], ...]

    @property
    def samples(self) -> list[list[int]]:
        """samples[j][i]: how many samples problem i has at budget j."""
        return [[c.n for c in per_length] for per_length in self.counts]

    @property
    def min_samples(self) -> int:
        return min(min(row) for row in self.samples)

    @property
    def max_samples(self) -> int:
        return max(max(row) for row in self.samples)


def group_answers(traces: Traces) -> AnswerSets:
    """Group each problem's samples by answer, per budget, checking that equal answers are graded
    alike and that every problem has samples at every budget (UserError otherwise)."""
    lengths = traces.lengths
    # (budget, problem) -> answer -> [correct, samples, where of first]
    table: dict[tuple, dict] = defaultdict(dict)
    problems: dict[str, None] = {}
    for r in traces.rows:
        problems.setdefault(r.problem_id)
        groups = table[(r.max_tokens, r.problem_id)]
        entry = groups.get(r.answer)
        if entry is None:
            groups[r.answer] = [r.correct, 1, r.where]
            continue
        if entry[0] != r.correct:
            at = f" at max_tokens {r.max_tokens}" if r.max_tokens is not None else ""
            raise UserError(f"{r.where}: answer {r.answer!r} of problem {r.problem_id!r}{at} is graded "
                            f"{'correct' if r.correct else 'wrong'} here but {'correct' if entry[0] else 'wrong'} "
                            f"at {entry[2]}; equal answers must be graded alike")
        entry[1] += 1
    order = tuple(problems)
    counts = []
    for length in lengths or (None,):
        per_length = []
        for pid in order:
            groups = table.get((length, pid))
            if not groups:
                raise UserError(f"{traces.path}: problem {pid!r} has no samples at max_tokens {length}; "
                                f"every problem needs samples at every length")
            unanswered = groups.pop(None, [False, 0, ""])[1]
            per_length.append(AnswerCounts(
                correct=tuple(n for ok, n, _ in groups.values() if ok),
                wrong=tuple(n for ok, n, _ in groups.values() if not ok),
                unanswered=unanswered,
            ))
        counts.append(tuple(per_length))
    return AnswerSets(problems=order, lengths=lengths, counts=tuple(counts))
