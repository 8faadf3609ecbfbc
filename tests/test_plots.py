"""The figures behind every --html, checked without a browser: each axis the figure sets carries a
title with units and an explicit range that holds its data (within a decade), and every marker line
and label sits where its axis reads it (log10 units for an annotation on a log axis). The same rules
are checked in Chromium by test_charts_browser.py; here they run from the figure objects alone."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chart_checks import problems
from lattts.report import plots
from lattts.report.axes import Axis, linear_range, log_range, marker_line, set_axis

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_PROFILE = ROOT / "tests" / "data" / "golden" / "cpu-profile.json"


def reading(fig) -> dict:
    """What chart_checks.READ_CHART_JS reads in the browser, taken from the figure as written: each
    axis's own range (None when left to plotly's autorange), data extents, annotations and shapes."""
    layout = fig.layout
    axes: dict = {}
    categories: dict = {}

    def axis(name):
        if name not in axes:
            ax = layout[name]
            kind = ax.type or "linear"
            rng = list(ax.range) if ax.range is not None and ax.autorange is False else [None, None]
            axes[name] = {"type": kind, "title": ax.title.text or "", "range": rng, "data": [], "items": [],
                          "offset_px": 0, "length_px": 0}
        return axes[name]

    def lin(name, v):
        kind = axis(name)["type"]
        if kind == "category" or isinstance(v, str):  # plotly types an axis of labels as categories
            seen = categories.setdefault(name, [])
            if v not in seen:
                seen.append(v)
            return float(seen.index(v))
        v = float(v)
        if kind == "log":
            return math.log10(v) if v > 0 else None
        return v if math.isfinite(v) else None

    for k, t in enumerate(fig.data):
        for dim in ("x", "y"):
            name = ("xaxis" if dim == "x" else "yaxis") + ((t[f"{dim}axis"] or dim)[1:])
            vals = [v for v in (t[dim] if t[dim] is not None else []) if v is not None]
            pts = [lin(name, v) for v in vals]
            err = getattr(t, f"error_{dim}", None)
            if err is not None and err.array is not None:
                minus = err.arrayminus if err.arrayminus is not None else err.array
                pts += [lin(name, float(v) + e) for v, e in zip(vals, err.array)]
                pts += [lin(name, float(v) - e) for v, e in zip(vals, minus)]
            if t.type == "bar" and dim == "y":
                pts.append(lin(name, 0.0))
            good = [p for p in pts if p is not None]
            axis(name)["data"].append({"trace": t.name or f"trace {k}", "visible": str(t.visible), "n": len(vals),
                                       "unplottable": len(pts) - len(good),
                                       "min": min(good) if good else None, "max": max(good) if good else None})
    for i, item in enumerate([*layout.annotations, *layout.shapes]):
        is_shape = i >= len(layout.annotations)
        for dim in ("x", "y"):
            ref = item[f"{dim}ref"] or ""
            if not ref or ref == "paper":
                continue
            name = ("xaxis" if dim == "x" else "yaxis") + ref.split(" ")[0][1:]
            ax = axis(name)
            ends = (item[f"{dim}0"], item[f"{dim}1"]) if is_shape else (item[dim],)
            for v in ends:
                if ref.endswith("domain"):
                    pos = None if None in ax["range"] else ax["range"][0] + v * (ax["range"][1] - ax["range"][0])
                elif is_shape and ax["type"] == "log":
                    pos = math.log10(v)  # a shape's position is the value; an annotation's is the range unit
                else:
                    pos = v
                ax["items"].append({"kind": "shape" if is_shape else "annotation", "position": pos,
                                    "text": getattr(item, "text", None) or f"shape {dim}"})
    return {"axes": axes}


def explicit_range_problems(fig) -> list[str]:
    """problems() of the figure as written, where a range left to plotly reads as none."""
    chart = reading(fig)
    unset = [f"{name} ({ax['title'] or 'untitled'}): no explicit range" for name, ax in chart["axes"].items()
             if None in ax["range"]]
    return unset + [p for p in problems(chart) if "is not finite" not in p]


@pytest.fixture(scope="module")
def prediction():
    from lattts.plan import PlanRequest, build_plan
    from lattts.simulator.search import run_prediction

    plan = build_plan(PlanRequest(device="h100-sxm"))
    return run_prediction(plan.problem, 60.0)


def roofline_rows():
    from lattts.hardware.choose import choose_profile
    from lattts.models.registry import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import batch_sweep

    prof = choose_profile("h100-sxm", None, None).profile
    rows = [r.to_json() for r in batch_sweep(resolve_model("s1.1-32B"), Deployment.on(prof), [1, 4, 16, 64, 256, 1024], 1, 1024)]
    return rows, prof.ridge_flop_per_byte


def curve(lengths=(1024, 2048, 4096), branches=(1, 2, 4, 8, 16)):
    from lattts.traces.curve import CurvePoint

    return [CurvePoint(b, L, acc, acc - 0.1, min(acc + 0.1, 1.0), min(acc + 0.05, 1.0), b > 8, False, True)
            for L in lengths for b in branches for acc in [0.4 + 0.1 * math.log2(b) / 4 + (L or 2048) / 10_000]]


def calibration_inputs():
    from lattts.calibrate.fit import ShapeData
    from lattts.calibrate.grid import cpu_grid
    from lattts.calibrate.measurements import Measurement
    from lattts.hardware.profiles import load_profile
    from lattts.models.registry import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import pass_time

    prof = load_profile(str(GOLDEN_PROFILE))
    data = []
    for name in ("cpu-small", "cpu-wide"):
        spec = resolve_model(name)
        rows = tuple(Measurement(name, p.batch, p.query, p.context, p.logit_positions,
                                 1.1 * float(pass_time(spec, Deployment.on(prof), p.batch, p.query, p.context,
                                                       p.logit_positions))) for p in cpu_grid(quick=True))
        data.append(ShapeData(spec, rows, "fp32"))
    return data, prof


def validation_out():
    runs = []
    for b, g, t in ((1, 0, 0.3), (4, 0, 0.9), (16, 2, 4.0)):
        runs.append({"branches": b, "draft_len": g, "max_tokens": 64, "measured_s": t, "predicted_s": t * 0.8,
                     "predicted_with_measured_acceptance_s": t * 0.9, "error": -0.2,
                     "terms": {"prefill": {"measured_s": t / 10, "predicted_s": t / 12},
                               "decode": {"measured_s": t * 0.9, "predicted_s": t * 0.7}}})
    return {"model": "cpu-small", "runs": runs}


def every_figure(prediction):
    grid, result = prediction
    rows, ridge = roofline_rows()
    data, prof = calibration_inputs()
    return {"frontier": plots.frontier_figure(grid, result, "t", 60.0),
            "roofline": plots.roofline_figure(rows, "t", ridge),
            "accuracy": plots.accuracy_figure(curve(), "t"),
            "accuracy, one length": plots.accuracy_figure(curve(lengths=(None,)), "t"),
            "calibration": plots.calibration_figure(data, prof),
            "validation": plots.validation_figure(validation_out())}


def test_every_figure_sets_titled_ranges_that_hold_its_data(prediction):
    found = {name: explicit_range_problems(fig) for name, fig in every_figure(prediction).items()}
    assert not any(found.values()), found


def test_the_budget_label_sits_at_the_budget_on_the_log_latency_axis(prediction):
    grid, result = prediction
    fig = plots.frontier_figure(grid, result, "t", 60.0)
    (label,) = [a for a in fig.layout.annotations if "budget" in a.text]
    assert label.xref == "x" and label.x == pytest.approx(math.log10(60.0))  # plotly reads log10 here
    lo, hi = fig.layout.xaxis.range
    assert lo < math.log10(60.0) < hi and hi - lo < 3  # latencies of about 10-400 s: not 1 s to 1e63 s
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == pytest.approx(60.0)  # a shape on a log axis takes the value itself


@pytest.mark.parametrize("budget_s,edge", [(1.0, 0), (3600.0, 1), (1e6, 1)])
def test_a_budget_far_from_the_configurations_is_named_at_the_edge(prediction, budget_s, edge):
    grid, result = prediction  # configurations take about 11-360 s
    fig = plots.frontier_figure(grid, result, "t", budget_s)
    (label,) = [a for a in fig.layout.annotations if "budget" in a.text]
    assert label.xref == "x domain" and label.x == edge and ("→" in label.text) == (edge == 1)
    assert not fig.layout.shapes  # no line drawn off the axis
    lo, hi = fig.layout.xaxis.range
    assert math.log10(min(grid.latency_s)) - 1 < lo and hi < math.log10(max(grid.latency_s)) + 1


def test_the_ridge_label_sits_at_the_ridge():
    rows, ridge = roofline_rows()
    fig = plots.roofline_figure(rows, "t", ridge)
    (label,) = [a for a in fig.layout.annotations if "ridge" in a.text]
    assert label.x == pytest.approx(math.log10(ridge))
    assert all(math.isfinite(v) for v in fig.layout.xaxis.range)


def test_both_accuracy_panels_read_percent_on_one_scale():
    fig = plots.accuracy_figure(curve(), "t")
    left, right = fig.layout.yaxis, fig.layout.yaxis2
    assert left.tickformat == right.tickformat == ".0%"
    assert right.title.text == left.title.text and "%" in right.title.text
    assert list(right.range) == list(left.range)


def test_ranges_hold_the_data_with_a_small_margin():
    lo, hi = log_range([10.0, 400.0])
    assert lo < 1 < math.log10(400) < hi and hi - lo < math.log10(40) + 0.3
    assert log_range([0, -1, float("nan"), 5.0])[0] < math.log10(5.0)  # what a log axis cannot show is left out
    assert linear_range([2.0, 3.0], zero=True)[0] == 0.0
    lo, hi = linear_range([24.0, 24.0])
    assert lo < 24 < hi and hi - lo < 2  # a flat line keeps a readable scale


def test_marker_line_label_takes_the_side_with_room():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 100], y=[0, 1]))
    rng = set_axis(fig, "x", Axis("t (s)", log=True), [1, 100])
    marker_line(fig, 90.0, "late", rng, log=True)
    marker_line(fig, 2.0, "early", rng, log=True)
    late, early = fig.layout.annotations
    assert late.xanchor == "right" and early.xanchor == "left"


def test_the_checks_catch_what_the_old_charts_did():
    # the shape of the old predict chart: a log axis run to 1e63 by a label at x=60, an accuracy axis without units
    old = {"axes": {
        "xaxis": {"type": "log", "title": "predicted latency (s)", "range": [-2.5, 63.9], "offset_px": 80,
                  "length_px": 1100, "items": [{"kind": "annotation", "text": "budget 60 s", "position": 60}],
                  "data": [{"trace": "γ=0", "visible": "shown", "n": 9, "unplottable": 0, "min": 1.04, "max": 2.56}]},
        "yaxis": {"type": "linear", "title": "accuracy", "range": [0.74, 0.94], "offset_px": 100, "length_px": 470,
                  "items": [], "data": [{"trace": "γ=0", "visible": "shown", "n": 9, "unplottable": 0,
                                         "min": 0.75, "max": 0.93}]}}}
    found = problems(old)
    assert any("more than a decade" in p for p in found) and any("no unit" in p for p in found)
    old["axes"]["xaxis"]["range"] = [0.9, 2.7]
    assert any("annotation 'budget 60 s'" in p for p in problems(old))  # the label at log10 position 60
    old["axes"]["yaxis"]["title"] = ""
    assert any(p == "yaxis: no title" for p in problems(old))
    old["axes"]["yaxis"]["range"] = [0.8, 0.9]
    assert any("outside the range" in p for p in problems(old))
