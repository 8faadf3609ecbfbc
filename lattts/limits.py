"""The ranges lattts accepts for sizes and counts, stated once.

Every numeric flag of the CLI takes its range from here (``lattts.cli.common.ranged`` shows it in
--help and checks it while the command line is parsed, before any work starts), and the request
objects that notebooks build check the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lattts.errors import UserError

MAX_BRANCHES = 128  # majority-vote accuracy is computed up to this B (its arrays grow as B^3 past the samples)
MAX_LIVE_BRANCHES = 1024  # branches of one live batched call (generate, measure, serve slots); memory is checked too
MAX_DRAFT_LEN = 16  # draft tokens per round: acceptance of a 16th token in a row is already ~alpha^16
MAX_TOKENS = 2 ** 20  # 1,048,576 tokens: above the context of every model lattts knows
MAX_BATCH = 2 ** 16  # rows of one forward pass in the roofline sweep
MAX_FRONTIER_ROWS = 1000
MAX_RESAMPLES = 10_000  # ample for a 95% percentile interval; the bootstrap holds resamples x problems weights
MAX_REFITS = 1000  # calibrate --from-csv bootstrap refits
MAX_SEED = 2 ** 32 - 1  # numpy's and torch's seeds are unsigned 32-bit here
MAX_PROBLEMS = 1_000_000  # problems of a benchmark
MAX_GPU_INDEX = 63
MAX_THREADS = 1024
MAX_TEMPERATURE = 10.0  # beyond this sampling is indistinguishable from uniform over the vocabulary
MAX_LENGTH_SCALE = 1000.0
TP_CHOICES = (1, 2, 4, 8)  # tensor-parallel device counts predict models


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; ``integer`` ranges print as 1..128, real ones as (0, 1]. Real
    values must also be finite (nan and inf are outside every range)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = True
    why: str = ""  # a reason for the bound, printed with a value outside it

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        """'1..128', '>= 1', '> 0', '(0, 1)', '0..10'."""
        lo, hi = (None if x is None else _num(x, self.integer) for x in (self.low, self.high))
        if lo is not None and hi is not None:
            if not (self.low_open or self.high_open):
                return f"{lo}..{hi}"
            return f"{'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo}"
        return f"{'<' if self.high_open else '<='} {hi}" if hi is not None else "any"

    def problem(self, flag: str, value) -> str | None:
        """None when ``value`` is in range, else one line naming the flag, the value and the range."""
        if value in self:
            return None
        why = f" ({self.why})" if self.why else ""
        return f"{flag} {value} is out of range: give {self.text()}{why}"

    def check(self, flag: str, value) -> None:
        """UserError unless ``value`` is in range."""
        problem = self.problem(flag, value)
        if problem:
            raise UserError(problem)


def _num(x: float, integer: bool) -> str:
    if integer:
        return f"{int(x):,}" if abs(x) >= 1_000_000 else str(int(x))
    return f"{x:g}"


def count(low: int = 1, high: int | None = None, why: str = "") -> Range:
    """An integer range low..high."""
    return Range(low, high, why=why)


def real(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
         why: str = "") -> Range:
    """A range of finite real numbers."""
    return Range(low, high, low_open, high_open, integer=False, why=why)


BRANCHES = count(1, MAX_BRANCHES, f"majority-vote accuracy is computed up to B = {MAX_BRANCHES}")
LIVE_BRANCHES = count(1, MAX_LIVE_BRANCHES)
DRAFT_LEN = count(0, MAX_DRAFT_LEN)
TOKENS = count(1, MAX_TOKENS)
SEED = count(0, MAX_SEED)
GPU_INDEX = count(0, MAX_GPU_INDEX)
TEMPERATURE = real(0.0, MAX_TEMPERATURE, why="0 = greedy")
