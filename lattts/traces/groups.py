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

    ``counts[j][i]`` is problem ``problems[i]`` at budget ``budgets[j]`` (a single entry j = 0
    when ``budgets`` is None: a single-budget file).
    """

    problems: tuple[str, ...]
    budgets: tuple[int, ...] | None
    counts: tuple[tuple[AnswerCounts, ...], ...]

    @property
    def samples(self) -> list[list[int]]:
        """samples[j][i]: how many samples problem i has at budget j."""
        return [[c.n for c in per_budget] for per_budget in self.counts]

    @property
    def min_samples(self) -> int:
        return min(min(row) for row in self.samples)

    @property
    def max_samples(self) -> int:
        return max(max(row) for row in self.samples)


def group_answers(traces: Traces) -> AnswerSets:
    """Group each problem's samples by answer, per budget, checking that equal answers are graded
    alike and that every problem has samples at every budget (UserError otherwise)."""
    budgets = traces.budgets
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
    for budget in budgets or (None,):
        per_budget = []
        for pid in order:
            groups = table.get((budget, pid))
            if not groups:
                raise UserError(f"{traces.path}: problem {pid!r} has no samples at max_tokens {budget}; "
                                f"every problem needs samples at every budget")
            unanswered = groups.pop(None, [False, 0, ""])[1]
            per_budget.append(AnswerCounts(
                correct=tuple(n for ok, n, _ in groups.values() if ok),
                wrong=tuple(n for ok, n, _ in groups.values() if not ok),
                unanswered=unanswered,
            ))
        counts.append(tuple(per_budget))
    return AnswerSets(problems=order, budgets=budgets, counts=tuple(counts))
