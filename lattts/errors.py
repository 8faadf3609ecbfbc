"""Errors a user can cause, and how the CLI reports them.

A ``UserError`` is bad input (exit code 2); a ``LatttsError`` is a failure the user did not
cause (exit code 1). Both carry one line that names the problem and, where there is one, the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LatttsError(Exception):
    """A failure reported as one line; exit code 1."""

    exit_code = 1


class UserError(LatttsError):
    """Bad input: the message names the problem and the fix; exit code 2."""

    exit_code = 2


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean a, b?)' for close matches of ``name`` among ``choices``, or ''."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + ", ".join(lowered[c] for c in close) + "?)"
