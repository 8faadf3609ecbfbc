"""Plotly figures. The CLI's --html and the notebooks call these same functions.

plotly is imported inside each function so importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lattts.paths import write_atomic
from lattts.report.axes import Axis, log_range, marker_line, set_axis
from lattts.units import format_duration

INTENSITY = Axis("arithmetic intensity (FLOP/byte)", log=True)
ATTAINED = Axis("attained (FLOP/s)", log=True, si=True)


def save_html(fig: Any, path: str | Path) -> Path:
    """Write a standalone interactive HTML file atomically (plotly.js inlined, works offline), into a
    folder that exists (the CLI checks ``path`` with ``check_output_file`` before any work)."""
    return write_atomic(path, fig.to_html(include_plotlyjs=True, full_html=True), make_parents=False)


def frontier_figure(grid, prediction, title: str, budget_s: float | None = None):
    """Accuracy against latency for every configuration, the Pareto frontier, the budget and the strategies."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fits = grid.fits
    hover = [f"B={b} γ={g} L={l}<br>{t:.3g} s, {a:.1%}" for b, g, l, t, a in
             zip(grid.branches, grid.draft_len, grid.max_tokens, grid.latency_s, grid.accuracy)]
    for gamma in np.unique(grid.draft_len):
        sel = (grid.draft_len == gamma) & fits
        fig.add_trace(go.Scatter(x=grid.latency_s[sel], y=grid.accuracy[sel], mode="markers", name=f"γ={gamma}",
                                 text=[hover[i] for i in np.flatnonzero(sel)], hoverinfo="text",
                                 marker=dict(size=6, opacity=0.6)))
    if (~fits).any():
        sel = ~fits
        fig.add_trace(go.Scatter(x=grid.latency_s[sel], y=grid.accuracy[sel], mode="markers",
                                 name="exceeds memory", marker=dict(symbol="x", color="lightgrey", size=5),
                                 text=[hover[i] for i in np.flatnonzero(sel)], hoverinfo="text", visible="legendonly"))
    front = prediction.frontier
    fig.add_trace(go.Scatter(x=[p.latency_s for p in front], y=[p.accuracy for p in front], mode="lines",
                             name="Pareto frontier", line=dict(color="black", width=2), line_shape="hv"))
    marks = {"best": prediction.best, **prediction.baselines}
    symbols = {"best": "star", "baseline": "circle-open", "branch_wise": "square-open", "sequence_wise": "diamond-open"}
    for name, point in marks.items():
        if point is None:
            continue
        fig.add_trace(go.Scatter(x=[point.latency_s], y=[point.accuracy], mode="markers", name=name.replace("_", "-"),
                                 marker=dict(symbol=symbols[name], size=16, line=dict(width=2)),
                                 text=[f"{name}: B={point.branches} γ={point.draft_len} L={point.max_tokens}"],
                                 hoverinfo="text"))
    xs = list(grid.latency_s) + [p.latency_s for p in front] + [p.latency_s for p in marks.values() if p is not None]
    ys = list(grid.accuracy) + [p.accuracy for p in front] + [p.accuracy for p in marks.values() if p is not None]
    positive = [x for x in xs if x > 0]
    if budget_s and positive and min(positive) / 5 <= budget_s <= max(positive) * 5:
        xs.append(budget_s)  # the line shows when the axis, margin included, stays within a decade of the data
    x_range = set_axis(fig, "x", Axis("predicted latency (s)", log=True), xs)
    set_axis(fig, "y", Axis("predicted accuracy (%)", percent=True), ys)
    if budget_s:
        marker_line(fig, budget_s, f"budget {format_duration(budget_s)}", x_range, log=True)
    fig.update_layout(title=title, template="plotly_white")
    return fig


def roofline_figure(rows: list[dict], title: str, ridge: float | None = None):
    """Three panels, as the paper's Figure 3: roofline (attainable FLOP/s vs intensity), throughput and
    latency per forward pass against batch size. ``rows`` are ``SweepRow.to_json()`` dicts (``lattts.simulator.roofline.batch_sweep``)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=3, subplot_titles=("roofline", "throughput vs batch", "latency per pass vs batch"))
    batch = [r["batch"] for r in rows]
    intensity = [r["intensity_flop_per_byte"] for r in rows]
    attained = [r["attained_flops_per_s"] for r in rows]
    bound = [r["bound"] for r in rows]
    text = [f"B={b}, {k}-bound" for b, k in zip(batch, bound)]
    roof_x, roof_y = [], []
    if ridge:
        peak = rows[0]["peak_flops_per_s"]
        bw = peak / ridge
        roof_x = np.logspace(np.log10(min(intensity) / 2), np.log10(max(max(intensity), ridge) * 4), 200)
        roof_y = np.minimum(roof_x * bw, peak)
        fig.add_trace(go.Scatter(x=roof_x, y=roof_y, mode="lines", name="roofline",
                                 line=dict(color="black")), row=1, col=1)
    fig.add_trace(go.Scatter(x=intensity, y=attained, mode="markers+lines", name="forward pass", text=text,
                             hoverinfo="text+x+y"), row=1, col=1)
    tokens_per_s = [r["tokens_per_s"] for r in rows]
    fig.add_trace(go.Scatter(x=batch, y=tokens_per_s, mode="markers+lines", name="tokens/s", text=text), row=1, col=2)
    ms = [r["time_s"] * 1e3 for r in rows]
    fig.add_trace(go.Scatter(x=batch, y=ms, mode="markers+lines", name="ms per pass", text=text), row=1, col=3)
    measured = [(r["batch"], r["measured_s"] * 1e3) for r in rows if r.get("measured_s") is not None]
    if measured:
        fig.add_trace(go.Scatter(x=[b for b, _ in measured], y=[t for _, t in measured], mode="markers",
                                 name="measured", marker=dict(symbol="x", size=9)), row=1, col=3)
    x_range = set_axis(fig, "x", INTENSITY, [*intensity, *roof_x], 1, 1)
    set_axis(fig, "y", ATTAINED, [*attained, *roof_y], 1, 1)
    if ridge:
        marker_line(fig, ridge, f"ridge {ridge:.0f} FLOP/byte", x_range, log=True, dash="dot", row=1, col=1)
    set_axis(fig, "x", Axis("batch B (sequences)", log=True).with_ticks(batch), batch, 1, 2)
    set_axis(fig, "y", Axis("throughput (tokens/s)", zero=True), tokens_per_s, 1, 2)
    set_axis(fig, "x", Axis("batch B (sequences)", log=True).with_ticks(batch), batch, 1, 3)
    set_axis(fig, "y", Axis("latency per pass (ms)", zero=True), ms + [t for _, t in measured], 1, 3)
    fig.update_layout(title=title, template="plotly_white", showlegend=False)
    return fig


def accuracy_figure(points, title: str):
    """Majority-vote accuracy against branches B (one line per budget L) and against L (one line per
    B), with the bootstrap interval as error bars; pass@k dotted (hidden until clicked in the legend);
    extrapolated points hollow. ``points`` are ``lattts.traces.curve.CurvePoint``s."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    shown = [p for p in points if p.measured]
    budgets = sorted({p.max_tokens for p in shown}, key=lambda L: -1 if L is None else L)
    branches = sorted({p.branches for p in shown})
    two = len(budgets) > 1
    fig = make_subplots(rows=1, cols=2 if two else 1,
                        subplot_titles=("accuracy vs branches B", "accuracy vs length budget L") if two else None)

    def trace(pts, x, name, col, group):
        fig.add_trace(go.Scatter(
            x=[x(p) for p in pts], y=[p.accuracy for p in pts], mode="lines+markers", name=name, legendgroup=group,
            error_y=dict(type="data", symmetric=False, array=[p.ci_high - p.accuracy for p in pts],
                         arrayminus=[p.accuracy - p.ci_low for p in pts]),
            marker=dict(size=8, symbol=["circle-open" if p.extrapolated else "circle" for p in pts]),
            text=[f"B={p.branches} L={p.max_tokens or '-'}: {p.accuracy:.1%} ({p.ci_low:.1%}-{p.ci_high:.1%})"
                  + (" extrapolated" if p.extrapolated else "") + (" interpolated" if p.interpolated else "")
                  for p in pts], hoverinfo="text"), row=1, col=col)

    for L in budgets:
        pts = [p for p in shown if p.max_tokens == L]
        label = f"L={L}" if L is not None else "traces"
        trace(pts, lambda p: p.branches, label, 1, label)
        fig.add_trace(go.Scatter(x=[p.branches for p in pts], y=[p.pass_at_k for p in pts], mode="lines",
                                 line=dict(dash="dot"), name=f"pass@k {label}", visible="legendonly"), row=1, col=1)
    if two:
        for b in branches:
            trace([p for p in shown if p.branches == b], lambda p: p.max_tokens, f"B={b}", 2, f"B={b}")
        lengths = [p.max_tokens for p in shown]
        set_axis(fig, "x", Axis("length budget L (tokens)", log=True).with_ticks(lengths), lengths, 1, 2)
    set_axis(fig, "x", Axis("branches B (samples in the vote)", log=True).with_ticks(branches), branches, 1, 1)
    # both panels show the same quantity: one scale, in %, covering the intervals and pass@k
    ys = [v for p in shown for v in (p.accuracy, p.ci_low, p.ci_high, p.pass_at_k)]
    for col in (1, 2) if two else (1,):
        set_axis(fig, "y", Axis("majority-vote accuracy (%)", percent=True), ys, 1, col)
    fig.update_layout(title=title, template="plotly_white")
    return fig


def calibration_figure(data, profile):
    """Measured against fitted: per shape, decode latency against batch at each measured context
    (markers measured, lines the fitted profile), and the roofline with every measured point."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import forward_pass, pass_time

    n = len(data)
    fig = make_subplots(rows=1, cols=n + 1, subplot_titles=[d.spec.name for d in data] + ["roofline, measured points"])
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    contexts = sorted({m.context_len for d in data for m in d.rows if m.query_len == 1})
    for col, d in enumerate(data, start=1):
        decode = [m for m in d.rows if m.query_len == 1]
        xs, ys = [], []
        for s in sorted({m.context_len for m in decode}):
            pts = sorted((m.batch, m.latency_s * 1e3) for m in decode if m.context_len == s)
            color = palette[contexts.index(s) % len(palette)]  # one colour per context in every panel
            fig.add_trace(go.Scatter(x=[b for b, _ in pts], y=[t for _, t in pts], mode="markers",
                                     name=f"s={s} measured", legendgroup=f"s={s}", showlegend=col == 1,
                                     text=[f"{d.spec.name} B={b} s={s}: {t:.3g} ms measured" for b, t in pts],
                                     hoverinfo="text", marker=dict(color=color)), row=1, col=col)
            bs = np.unique(np.geomspace(1, max(b for b, _ in pts), 60).round())
            fitted = pass_time(d.spec, Deployment.on(profile, d.dtype), bs, 1, s, 1) * 1e3
            fig.add_trace(go.Scatter(x=bs, y=fitted, mode="lines", name=f"s={s} fitted", legendgroup=f"s={s}",
                                     showlegend=col == 1, line=dict(color=color)), row=1, col=col)
            xs += [b for b, _ in pts] + list(bs)
            ys += [t for _, t in pts] + list(fitted)
        batches = Axis("batch B (sequences, decode q = 1)", log=True).with_ticks(m.batch for m in decode)
        set_axis(fig, "x", batches, xs, 1, col)
        set_axis(fig, "y", Axis("latency per pass (ms)"), ys, 1, col)
    xs, ys, texts = [], [], []
    for d in data:
        for m in d.rows:
            cost = forward_pass(d.spec, Deployment.on(profile, d.dtype), m.batch, m.query_len, m.context_len, m.logits)
            xs.append(cost.flops / cost.bytes)
            ys.append(cost.flops / m.latency_s)
            texts.append(f"{d.spec.name} B={m.batch} q={m.query_len} s={m.context_len}")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="measured passes", text=texts, hoverinfo="text+x+y",
                             marker=dict(size=5, opacity=0.6, color="#7f7f7f")), row=1, col=n + 1)
    grid = np.geomspace(min(xs) / 2, max(xs) * 2, 100)
    roof = np.minimum(grid * profile.weight_bw_bytes_per_s, profile.matmul_flops_per_s)
    fig.add_trace(go.Scatter(x=grid, y=roof, mode="lines", name="fitted roofline (weight bandwidth, matmul FLOP/s)",
                             line=dict(color="black")), row=1, col=n + 1)
    set_axis(fig, "x", INTENSITY, [*xs, *grid], 1, n + 1)
    set_axis(fig, "y", ATTAINED, [*ys, *roof], 1, n + 1)
    fig.update_layout(title=f"calibration of {profile.name}: measured against fitted", template="plotly_white")
    return fig


def validation_figure(out: dict):
    """Predicted against measured for every live run (log-log, with the y = x line), and per
    configuration the measured time of each term beside its prediction."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    runs = out["runs"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("predicted vs measured", "time per term: measured beside predicted"))
    labels = [f"B={r['branches']} γ={r['draft_len']} L={r['max_tokens']}" for r in runs]
    meas = [r["measured_s"] for r in runs]
    pred = [r["predicted_s"] for r in runs]
    with_acc = [r["predicted_with_measured_acceptance_s"] for r in runs]
    fig.add_trace(go.Scatter(x=meas, y=pred, mode="markers", name="lattts engine",
                             text=[f"{l}: {r['error']:+.1%}" for l, r in zip(labels, runs)], hoverinfo="text"), row=1, col=1)
    fig.add_trace(go.Scatter(x=meas, y=with_acc, mode="markers", name="with measured acceptance", marker=dict(symbol="x"),
                             visible="legendonly"), row=1, col=1)
    seconds = meas + pred + with_acc
    tr = out.get("transformers")
    if tr and tr["runs"]:
        tr_meas, tr_pred = [r["measured_s"] for r in tr["runs"]], [r["predicted_s"] for r in tr["runs"]]
        fig.add_trace(go.Scatter(x=tr_meas, y=tr_pred, mode="markers", name="transformers generate",
                                 marker=dict(symbol="diamond")), row=1, col=1)
        seconds += tr_meas + tr_pred
    # one range on both axes, so the y = x line is the diagonal, drawn corner to corner
    lo, hi = (10 ** v for v in log_range(seconds))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="grey", dash="dot")),
                  row=1, col=1)
    set_axis(fig, "x", Axis("measured latency (s)", log=True), [lo, hi], 1, 1)
    set_axis(fig, "y", Axis("predicted latency (s)", log=True), [lo, hi], 1, 1)
    bars = []
    for term in ("prefill", "decode", "draft", "verify", "other"):
        measured = [r["terms"].get(term, {}).get("measured_s", 0.0) for r in runs]
        if any(measured):
            predicted = [r["terms"].get(term, {}).get("predicted_s", 0.0) for r in runs]
            fig.add_trace(go.Bar(x=labels, y=measured, name=f"{term} measured"), row=1, col=2)
            fig.add_trace(go.Bar(x=labels, y=predicted, name=f"{term} predicted", marker=dict(pattern_shape="/")),
                          row=1, col=2)
            bars += measured + predicted
    fig.update_xaxes(title_text="configuration (B branches, γ draft length, L tokens)", type="category",
                     range=[-0.5, len(labels) - 0.5], autorange=False, row=1, col=2)
    set_axis(fig, "y", Axis("time in the term (s)", zero=True), bars, 1, 2)
    fig.update_layout(title=f"lattts validate: {out['model']}", template="plotly_white", barmode="group")
    return fig


def panels_figure(panels: list[dict], title: str):
    """Side-by-side line charts. Each panel: {'title', 'x_title', 'y_title', 'x_log' (bool), 'y_percent'
    (bool), 'series': [{'name', 'x', 'y', 'text' (optional)}]}. The notebooks' scaling and
    concurrency figures (the paper's Figures 1, 2, 5, 6) are drawn with it."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p["title"] for p in panels])
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for col, panel in enumerate(panels, start=1):
        for k, s in enumerate(panel["series"]):
            fig.add_trace(go.Scatter(x=s["x"], y=s["y"], mode="lines+markers", name=s["name"], text=s.get("text"),
                                     legendgroup=s["name"], showlegend=col == 1,
                                     line=dict(color=palette[k % len(palette)])), row=1, col=col)
        set_axis(fig, "x", Axis(panel["x_title"], log=bool(panel.get("x_log"))),
                 [x for s in panel["series"] for x in s["x"]], 1, col)
        set_axis(fig, "y", Axis(panel["y_title"], percent=bool(panel.get("y_percent"))),
                 [y for s in panel["series"] for y in s["y"]], 1, col)
    fig.update_layout(title=title, template="plotly_white")
    return fig
