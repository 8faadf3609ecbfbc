"""Traces at length budgets below the generated length, by cutting each sample at L tokens.

A sample of ``tokens`` > L tokens is counted as unanswered at budget L (its answer came after L).
This is a lower bound on what budget forcing achieves at L: forcing the model to answer at L
(e.g. appending "Final answer:") often recovers a correct answer that truncation discards. With
approximate token counts (``tokens_approximate``) the cut points are approximate too.
"""

from __future__ import annotations

from dataclasses import replace

from lattts.errors import UserError
from lattts.traces.format import TraceRow, Traces


def truncate(traces: Traces, lengths: list[int]) -> Traces:
    """Rows of ``traces`` at each budget L in ``lengths`` (one copy per L, ``max_tokens`` = L).

    Needs a single-budget trace (or one measured budget) with a token count on every row; a budget
    above the one the samples were generated under is refused, since truncation can only shorten.
    """
    measured = traces.lengths
    if measured is not None and len(measured) > 1:
        raise UserError(f"{traces.path}: truncation needs traces of one budget; these have max_tokens "
                        f"{', '.join(map(str, measured))}")
    missing = next((r for r in traces.rows if r.tokens is None), None)
    if missing is not None:
        raise UserError(f"{missing.where}: no 'tokens' count, so the sample cannot be cut at a budget; "
                        f"truncation needs token counts on every row")
    if measured is not None and max(lengths) > measured[0]:
        raise UserError(f"length {max(lengths)} is above the length the traces were generated under "
                        f"({measured[0]} tokens); truncation can only shorten")
    rows: list[TraceRow] = []
    for length in sorted(set(lengths)):
        for r in traces.rows:
            if r.tokens <= length:
                rows.append(replace(r, max_tokens=length))
            else:  # the answer came after L tokens: no vote at this length
                rows.append(replace(r, max_tokens=length, answer=None, correct=False, finished=False,
                                    tokens=length))
    note = (f"truncated at L = {', '.join(map(str, sorted(set(lengths))))} tokens "
            f"(samples longer than L count as unanswered: a lower bound of budget forcing)")
    return Traces(rows=tuple(rows), path=traces.path, format=traces.format, note=note)
