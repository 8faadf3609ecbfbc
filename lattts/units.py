"""Human units at the edges, SI inside.

Durations parse from '500ms', '10s', '1m', '1.5min', '2h' into seconds; bytes, rates and
durations format back for tables.
"""

from __future__ import annotations

import math
import re

from lattts.errors import UserError
from lattts.limits import Range, count

_DURATION_UNITS_S = {
    "us": 1e-6, "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)\s*$")


def parse_duration_s(text: str) -> float:
    """Seconds in a duration such as '60s', '500ms', '1m', '1.5min'; a bare number is seconds."""
    match = _DURATION_RE.match(str(text).lower())
    if not match:
        raise UserError(f"cannot parse duration {text!r}: use a number with a unit, e.g. 500ms, 10s, 1m, 1.5min")
    value, unit = float(match.group(1)), match.group(2) or "s"
    if unit not in _DURATION_UNITS_S:
        raise UserError(f"unknown time unit {unit!r} in {text!r}: use ms, s, m/min or h")
    seconds = value * _DURATION_UNITS_S[unit]
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"duration {text!r} must be positive")
    return seconds


_DURATION_SCALE_S = {u: _DURATION_UNITS_S[u] for u in ("µs", "ms", "s", "min", "h")}  # the units lattts writes


def duration_unit(seconds: float) -> str:
    """The unit ``format_duration`` writes ``seconds`` in; a table column takes its largest value's,
    so the whole column reads in one unit."""
    seconds = _three_digits(seconds) if math.isfinite(seconds) else seconds  # 999.6 ms is '1 s'
    if seconds < 1e-3:
        return "µs"
    if seconds < 1.0:
        return "ms"
    if seconds < 120.0:
        return "s"
    if seconds < 7200.0:
        return "min"
    return "h"


def column_unit(max_seconds: float) -> str:
    """One unit for a table column of durations, from its largest value: the finest of ms, s, min, h
    in which that value has at most three digits before the point (a column up to 999 s reads in s)."""
    if not math.isfinite(max_seconds) or max_seconds < 1e-3:
        return "µs" if math.isfinite(max_seconds) else "s"
    for unit in ("ms", "s", "min"):
        if _three_digits(max_seconds) / _DURATION_SCALE_S[unit] < 1000:
            return unit
    return "h"


def format_duration_in(seconds: float, unit: str, trailing_zeros: bool = False) -> str:
    """``seconds`` as a number in ``unit`` (a ``duration_unit`` or ``column_unit``), three significant
    digits, no unit written: '0.182' for 10.9 s in min; with ``trailing_zeros`` '57.0', not '57' (a column)."""
    if not math.isfinite(seconds):
        return "inf"
    value = _three_digits(seconds) / _DURATION_SCALE_S[unit]
    if unit == "µs":
        return f"{value:.0f}"
    text = f"{value:#.3g}" if trailing_zeros else f"{value:.3g}"
    if "e" in text:  # very large or very small for the unit: plain digits, still three significant
        text = f"{float(text):.{max(0, 2 - math.floor(math.log10(abs(value))))}f}" if value else "0"
    return text.rstrip(".")


def format_duration(seconds: float) -> str:
    """'850 ms', '12.3 s', '4.2 min' for a duration in seconds."""
    if not math.isfinite(seconds):
        return "inf"
    unit = duration_unit(seconds)
    return f"{format_duration_in(seconds, unit)} {unit}"


def _three_digits(x: float) -> float:
    """x rounded to the three significant digits it is printed with, before a unit is chosen for it."""
    return float(f"{x:.3g}")


def format_bytes(n_bytes: float) -> str:
    """'65.5 GB' (decimal units, as datasheets use)."""
    n_bytes = _three_digits(n_bytes)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def format_rate(per_s: float, unit: str) -> str:
    """'3.35 TB/s', '989 TFLOP/s' for a rate in units per second."""
    per_s = _three_digits(per_s)
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(per_s) >= scale:
            return f"{per_s / scale:.3g} {prefix}{unit}/s"
    return f"{per_s:.3g} {unit}/s"


def parse_int_list(text: str, what: str, allowed: Range = count(1)) -> list[int]:
    """[1, 2, 4] from '1,2,4'; every value must be an integer in ``allowed`` (default: at least 1)."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UserError(f"{what}: {part!r} is not an integer; give a comma-separated list such as 1,2,4") from None
        if value not in allowed:
            why = f" ({allowed.why})" if allowed.why else ""
            raise UserError(f"{what}: {value} is out of range: each value must be {allowed.text()}{why}")
        values.append(value)
    if not values:
        raise UserError(f"{what}: empty list; give a comma-separated list such as 1,2,4")
    return sorted(set(values))
