"""Axes the figures set themselves: a title with units and a range fitted to the data.

Plotly's autorange also counts annotations, and on a log axis an annotation's x is read as log10 of
the position (a shape's as the value itself), so one label placed at x = 60 stretched a chart to
10^63. Every axis here gets an explicit range instead (log axes in log10 units, as plotly takes them)
and marker lines get their label in the units their axis reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

LOG_PAD_DECADES = 0.05  # margin past the data on a log axis, at least this many decades
PAD_FRACTION = 0.05  # margin past the data, as a fraction of the span it covers


def _finite(values: Iterable, positive: bool = False) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v) and (v > 0 or not positive):
            out.append(v)
    return out


def log_range(values: Iterable) -> list[float]:
    """[low, high] in log10 units covering every positive value, with a small margin."""
    logs = [math.log10(v) for v in _finite(values, positive=True)]
    if not logs:
        return [0.0, 1.0]
    lo, hi = min(logs), max(logs)
    pad = max(LOG_PAD_DECADES, PAD_FRACTION * (hi - lo))
    return [lo - pad, hi + pad]


def linear_range(values: Iterable, zero: bool = False) -> list[float]:
    """[low, high] covering every value (and 0 with ``zero``), with a margin of 5% of the span
    (2% of the magnitude when the values are all about equal)."""
    vals = _finite(values) + ([0.0] if zero else [])
    if not vals:
        return [0.0, 1.0]
    lo, hi = min(vals), max(vals)
    pad = max(PAD_FRACTION * (hi - lo), 0.02 * max(abs(lo), abs(hi)), 1e-12)
    return [lo if zero and lo == 0 else lo - pad, hi if zero and hi == 0 else hi + pad]


@dataclass(frozen=True)
class Axis:
    """How one axis reads: its title (with units), its scale and its ticks."""

    title: str
    log: bool = False
    zero: bool = False  # the range reaches 0 (bars, throughput)
    percent: bool = False  # fractions shown as %
    ticks: tuple[float, ...] | None = None  # counts such as B read better at their own values than at log ticks
    si: bool = False  # SI prefixes (G, T, P) instead of plotly's B for billions

    def with_ticks(self, ticks: Iterable) -> "Axis":
        return replace(self, ticks=tuple(sorted({float(t) for t in ticks})))


def set_axis(fig, which: str, axis: Axis, values: Iterable, row: int | None = None,
             col: int | None = None) -> list[float]:
    """Set axis ``which`` ('x' or 'y') of one subplot as ``axis`` says, ranged over ``values`` (data
    units); returns the range as plotly takes it (log10 units on a log axis)."""
    values = list(values)
    rng = log_range(values) if axis.log else linear_range(values, axis.zero)
    extra = {"exponentformat": "SI"} if axis.si else {}
    if axis.ticks is not None:
        extra.update(tickvals=list(axis.ticks), ticktext=[f"{t:g}" for t in axis.ticks])
    update = fig.update_xaxes if which == "x" else fig.update_yaxes
    update(title_text=axis.title, type="log" if axis.log else "linear", range=rng, autorange=False,
           tickformat=".0%" if axis.percent else None, row=row, col=col, **extra)
    return rng


def in_range(x: float, rng: list[float], log: bool) -> bool:
    """Whether the data value ``x`` falls inside an axis range (log10 units on a log axis)."""
    if log and x <= 0:
        return False
    pos = math.log10(x) if log else x
    return rng[0] <= pos <= rng[1]


def marker_line(fig, x: float, text: str, rng: list[float], *, log: bool, dash: str = "dash",
                row: int | None = None, col: int | None = None) -> None:
    """A vertical line at data value ``x`` labelled ``text`` at its top. A line off the axis range is
    not drawn: its label goes at the nearer edge, saying which way it lies."""
    if in_range(x, rng, log):
        pos = math.log10(x) if log else x
        near_right = (pos - rng[0]) / (rng[1] - rng[0]) > 0.7  # put the label on the side with room
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, xref="x", yref="y domain",
                      line=dict(dash=dash, color="#444", width=1), row=row, col=col)
        fig.add_annotation(x=pos, y=1, xref="x", yref="y domain", text=text, showarrow=False,
                           xanchor="right" if near_right else "left", xshift=-3 if near_right else 3,
                           yanchor="top", row=row, col=col)
        return
    right = (math.log10(x) if log and x > 0 else x) > rng[1]
    fig.add_annotation(x=1 if right else 0, y=1, xref="x domain", yref="y domain", showarrow=False,
                       text=f"{text} →" if right else f"← {text}", xanchor="right" if right else "left",
                       yanchor="top", row=row, col=col)
