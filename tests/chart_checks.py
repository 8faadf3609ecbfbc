"""What the browser test reads from a live plotly chart, and the checks it holds each chart to.

``READ_CHART_JS`` runs in the page and returns, for every axis that carries data, its type, title and
range as plotly laid it out (``gd._fullLayout``), the extent of the data on it (every trace, shown or
hidden in the legend, with its error bars and bars' bases) and where each annotation and shape sits.
Positions are in plotly's linearised units (log10 of the value on a log axis), the units of
``axis.range``. ``problems`` turns one such reading into the list of what is wrong with it.
"""

from __future__ import annotations

import math
import re

READY_JS = "(() => { const gd = document.querySelector('.js-plotly-plot'); return gd && gd._fullLayout && gd.calcdata; })()"

READ_CHART_JS = r"""
(() => {
  const gd = document.querySelector('.js-plotly-plot');
  const L = gd._fullLayout;
  const axisName = (ref) => (ref[0] === 'x' ? 'xaxis' : 'yaxis') + ref.slice(1);
  const axes = {};
  const entry = (name) => {
    if (!axes[name]) {
      const ax = L[name];
      const given = (gd.layout[name] || {}).title;  // what the figure set: plotly fills in a placeholder
      axes[name] = {type: ax.type, title: (given && (typeof given === 'string' ? given : given.text)) || '', range: ax.range.map(r => ax.r2l(r)),
                    offset_px: ax._offset, length_px: ax._length, data: [], items: []};
    }
    return axes[name];
  };
  const finite = (v) => typeof v === 'number' && isFinite(v);
  const lin = (ax, v) => { const l = ax.d2l(v); return finite(l) ? l : null; };
  gd._fullData.forEach((t, i) => {
    const label = t.name || `trace ${i}`;
    const shown = t.visible === true ? 'shown' : String(t.visible);
    for (const dim of ['x', 'y']) {
      const name = axisName(t[dim + 'axis']);
      const ax = L[name], e = entry(name);
      const vals = Array.from(t[dim] || []);
      const pts = [];
      vals.forEach((v, k) => {
        if (v === null || v === undefined) return;
        const l = lin(ax, v);
        pts.push(l);
        const err = t['error_' + dim];
        if (err && err.visible && err.type === 'data' && finite(Number(v))) {
          const hi = (err.array || [])[k], lo = err.symmetric ? hi : (err.arrayminus || [])[k];
          if (finite(hi)) pts.push(lin(ax, Number(v) + hi));
          if (finite(lo)) pts.push(lin(ax, Number(v) - lo));
        }
      });
      const valueDim = t.orientation === 'h' ? 'x' : 'y';
      if (t.type === 'bar' && dim === valueDim) pts.push(lin(ax, 0));
      e.data.push({trace: label, visible: shown, n: vals.length, unplottable: pts.filter(p => p === null).length,
                   min: Math.min(...pts.filter(p => p !== null)), max: Math.max(...pts.filter(p => p !== null))});
    }
  });
  const annotationNodes = Array.from(gd.querySelectorAll('g.annotation'));
  const box = gd.getBoundingClientRect();
  (L.annotations || []).forEach((a, i) => {
    const node = annotationNodes.find(n => n.getAttribute('data-index') === String(i));
    const r = node ? node.getBoundingClientRect() : null;
    const px = r ? {left: r.left - box.left, right: r.right - box.left, top: r.top - box.top, bottom: r.bottom - box.top} : null;
    for (const dim of ['x', 'y']) {
      const ref = a[dim + 'ref'];
      if (!/^[xy]\d*( domain)?$/.test(ref)) continue;  // paper-placed: layout text such as subplot titles
      const name = axisName(ref.split(' ')[0]);
      const ax = L[name];
      const domain = ref.endsWith('domain');
      const pos = domain ? ax.range[0] + a[dim] * (ax.range[1] - ax.range[0]) : ax.r2l(a[dim]);
      entry(name).items.push({kind: 'annotation', text: a.text, position: pos, pixels: px, axis_ref: ref});
    }
  });
  (L.shapes || []).forEach((s, i) => {
    for (const dim of ['x', 'y']) {
      const ref = s[dim + 'ref'];
      if (!/^[xy]\d*( domain)?$/.test(ref)) continue;
      const name = axisName(ref.split(' ')[0]);
      const ax = L[name];
      for (const end of ['0', '1']) {
        const v = s[dim + end];
        const pos = ref.endsWith('domain') ? ax.range[0] + v * (ax.range[1] - ax.range[0])
                                           : (ax.type === 'log' ? ax.d2l(v) : ax.r2l(v));
        entry(name).items.push({kind: 'shape', text: `shape ${i} ${dim}${end}`, position: pos});
      }
    }
  });
  return {title: (L.title && L.title.text) || '', width_px: L.width, height_px: L.height, axes};
})()
"""

UNIT = re.compile(r"\([^)]+\)|\b(s|ms|seconds?|tokens?|FLOP|bytes?|sequences|%)\b|/s\b")
DECADE = 1.0  # log10 units: a log axis may run at most one decade past its data on either side


def problems(chart: dict) -> list[str]:
    """Each way the chart breaks the rules: an axis without a title with units, a range that is not
    finite, misses data, or runs more than a decade past it (log axes: in log10 units; linear axes:
    a span over ten times the data's), and an annotation or shape outside its axis range."""
    out = []
    for name, ax in chart["axes"].items():
        where = f"{name} ({ax['title'] or 'untitled'})"
        if not ax["title"].strip():
            out.append(f"{name}: no title")
        elif not UNIT.search(ax["title"]):
            out.append(f"{where}: title names no unit")
        lo, hi = ax["range"]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)):
            out.append(f"{where}: range {ax['range']} is not finite")
            continue
        lo, hi = min(lo, hi), max(lo, hi)
        for d in ax["data"]:
            if d["unplottable"]:
                out.append(f"{where}: {d['unplottable']} point(s) of {d['trace']} cannot be drawn on a {ax['type']} axis")
        extents = [d for d in ax["data"] if d["n"] and d["min"] is not None and math.isfinite(d["min"])]
        if not extents:
            continue
        dmin, dmax = min(d["min"] for d in extents), max(d["max"] for d in extents)
        tol = 1e-9 * max(1.0, abs(dmin), abs(dmax))
        for d in extents:
            if d["min"] < lo - tol or d["max"] > hi + tol:
                out.append(f"{where}: {d['trace']} ({d['visible']}) spans {_fmt(ax, d['min'])} to {_fmt(ax, d['max'])}, "
                           f"outside the range {_fmt(ax, lo)} to {_fmt(ax, hi)}")
        if ax["type"] == "log":
            if lo < dmin - DECADE - tol or hi > dmax + DECADE + tol:
                out.append(f"{where}: range {_fmt(ax, lo)} to {_fmt(ax, hi)} runs more than a decade past the data "
                           f"({_fmt(ax, dmin)} to {_fmt(ax, dmax)})")
        elif ax["type"] == "linear":
            span = dmax - dmin if dmax > dmin else max(abs(dmax), 1e-12)
            if hi - lo > 10 * span + tol:
                out.append(f"{where}: range {_fmt(ax, lo)} to {_fmt(ax, hi)} is over ten times the data's span "
                           f"({_fmt(ax, dmin)} to {_fmt(ax, dmax)})")
        for item in ax["items"]:
            pos = item["position"]
            if pos is None or not math.isfinite(pos) or pos < lo - tol or pos > hi + tol:
                out.append(f"{where}: {item['kind']} {item['text']!r} at {_fmt(ax, pos)} is outside the range "
                           f"{_fmt(ax, lo)} to {_fmt(ax, hi)}")
            px = item.get("pixels")
            if px and name.startswith("x") and (px["left"] < ax["offset_px"] - 1
                                               or px["right"] > ax["offset_px"] + ax["length_px"] + 1):
                out.append(f"{where}: {item['kind']} {item['text']!r} is drawn past the plot area "
                           f"({px['left']:.0f}-{px['right']:.0f} px, plot {ax['offset_px']:.0f}-"
                           f"{ax['offset_px'] + ax['length_px']:.0f} px)")
    return out


def _fmt(ax: dict, l) -> str:
    """A linearised position as the value a reader sees on the axis."""
    if l is None or not isinstance(l, (int, float)) or not math.isfinite(l):
        return str(l)
    if ax["type"] == "log":
        return f"{10 ** l:.3g}" if abs(l) < 300 else f"1e{l:.0f}"
    return f"{l:.3g}"
