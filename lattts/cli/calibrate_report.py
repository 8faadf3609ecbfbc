"""What `lattts calibrate` prints: a live calibration's fitted parameters and errors, or a --from-csv
fit's parameters with their 95% intervals and standing, and its errors by token band and device count."""

from __future__ import annotations

from pathlib import Path

from lattts.cli.common import console, print_json


def _rate(value: float, unit: str) -> str:
    from lattts.units import format_rate

    return (format_rate(value, "B") if unit == "bytes/s" else format_rate(value, "FLOP") if unit == "FLOP/s"
            else f"{value * 1e6:.3g} us" if unit == "s" and value < 1e-3 else f"{value * 1e3:.3g} ms" if unit == "s"
            else f"{value:.3g}")


def report(result, json_out: bool, html: Path | None) -> None:
    from lattts.calibrate.fit import PARAMETERS, SERVER_PARAMETERS

    p = result.profile
    always = {name for name, *_ in PARAMETERS}  # a server's own parameters where it has them
    params = {name: {"value": getattr(p, name), "unit": unit} for name, *_, unit in SERVER_PARAMETERS
              if name in always or getattr(p, name)}
    if json_out:
        print_json({
            "profile": str(result.profile_file), "measurements": str(result.measurements_file),
            "device": p.name, "device_key": p.device_key, "dtype": p.dtype,
            "heldout_error": result.errors["heldout"], "in_sample_error": result.errors["in_sample"],
            "cross_model_error": result.errors.get("cross_model"), "rows_factor": result.errors.get("rows_factor"),
            "parameters": params,
            "drift": p.provenance.get("drift"), "machine": p.provenance.get("machine"), "sweep": result.sweep,
            "html": str(html) if html else None,
        })
        return
    from rich.table import Table

    from lattts.units import format_rate

    console.print(f"[bold]profile[/] of {p.name} ({p.dtype}) written to {result.profile_file}", highlight=False)
    console.print(f"  measurements: {result.measurements_file}", highlight=False)
    machine = p.provenance.get("machine") or {}
    t = Table(title="fitted parameters, beside what this machine streams and computes", title_justify="left")
    for col in ("parameter", "fitted", "machine (measured now)"):
        t.add_column(col, justify="right" if col != "parameter" else "left")
    for name, entry in params.items():
        value, unit = entry["value"], entry["unit"]
        text = _rate(value, unit) if unit != "s" else f"{value * 1e3:.3g} ms"
        ref = ""
        if machine.get("read_bytes_per_s") and unit == "bytes/s":
            ref = f"read {format_rate(machine['read_bytes_per_s'], 'B')}"
        elif machine.get("matmul_flops_per_s") and unit == "FLOP/s":
            ref = f"matmul {format_rate(machine['matmul_flops_per_s'], 'FLOP')}"
        t.add_row(name, text, ref)
    if p.sample_call_s or p.sample_s_per_logit:
        t.add_row("sample_call_s", f"{p.sample_call_s * 1e3:.3g} ms", "engine sampling, outside passes")
        t.add_row("sample_s_per_logit", f"{p.sample_s_per_logit * 1e9:.3g} ns", "")
    if p.request_overhead_s:
        t.add_row("request_overhead_s", f"{p.request_overhead_s * 1e3:.3g} ms", "a server's cost per request, outside passes")
    console.print(t)
    e = Table(title="how well it predicts forward-pass time (|predicted/measured - 1|)", title_justify="left")
    for col in ("check", "median", "p90", "max", "points"):
        e.add_column(col, justify="right" if col != "check" else "left")
    labels = {"in_sample": "in-sample", "heldout": "held-out (5-fold)", "cross_model": "cross-model (leave one shape out)"}
    for key, label in labels.items():
        s = result.errors.get(key)
        if s:
            e.add_row(label, f"{s['median']:.1%}", f"{s['p90']:.1%}", f"{s['max']:.1%}", str(s["points"]))
    console.print(e)
    rows = result.errors.get("rows_factor")
    if rows and rows["heldout_mean_with"] is not None:
        verdict = "used" if rows["used"] else "not used"
        console.print(f"  matmul correction by rows: {verdict} (held-out mean error {rows['heldout_mean_with']:.1%} "
                      f"with it, {rows['heldout_mean_without']:.1%} without)")
    drift = p.provenance.get("drift") or {}
    if drift.get("paired"):
        each = ", ".join(f"{kind} anchor {drift[f'{key}_min_s'] * 1e3:.1f}-{drift[f'{key}_max_s'] * 1e3:.1f} ms"
                         for kind, key in (("one-row", "anchor"), ("many-row", "rows_anchor")) if f"{key}_min_s" in drift)
        console.print(f"  device drift during the sweep: {each} (divided out by pairing)")
    if html:
        console.print(f"  figures written to {html}")


def report_csv_fit(fit, profile, json_out: bool, html: Path | None) -> None:
    """Parameters with intervals and standing; errors in-sample and held out, by token band and device count."""
    path = profile.provenance.get("file")
    if html and fit.data:
        from lattts.report.plots import calibration_figure, save_html

        save_html(calibration_figure(fit.data, profile), html)
    if json_out:
        print_json({"profile": path, "device": profile.name, "dtype": profile.dtype,
                    "parameters": {e.name: e.to_json() for e in fit.estimates}, "errors": fit.errors,
                    "not_fitted": profile.provenance.get("not_fitted"), "html": str(html) if html and fit.data else None})
        return
    from rich.table import Table

    console.print(f"[bold]profile[/] {profile.name} ({profile.dtype}) written to {path}", highlight=False)
    t = Table(title="fitted parameters (95% bootstrap interval)", title_justify="left")
    for col in ("parameter", "fitted", "95% interval", "standing"):
        t.add_column(col, justify="left" if col in ("parameter", "standing") else "right")
    for e in fit.estimates:
        span = f"{_rate(e.low, e.unit)} - {_rate(e.high, e.unit)}" if e.low is not None else "-"
        t.add_row(e.name, _rate(e.value, e.unit), span, e.status)
    console.print(t)
    console.print(f"  not fitted (from {profile.provenance.get('device_datasheet') and 'the datasheet row' or 'defaults'}): "
                  f"{', '.join(profile.provenance.get('not_fitted') or []) or 'none'}", highlight=False)
    e = Table(title="how well it predicts (|predicted/measured - 1|; bias = median of predicted/measured - 1)",
              title_justify="left")
    for col in ("group", "rows", "check", "median", "p90", "bias", "points"):
        e.add_column(col, justify="left" if col in ("group", "rows", "check") else "right")
    for group, errs in fit.errors.items():
        s = errs["in_sample"]
        e.add_row(group, "all", "in-sample", *_cells(s.get("all", s)))
        held = errs.get("heldout") or {}
        if "all" in held:
            how = f"held out ({errs['heldout_by']})"
            rows = [("all", held["all"])] + list(held.get("by_regime", {}).items())
            rows += [(f"{n} devices", v) for n, v in held.get("by_devices", {}).items()]
            for label, stats in rows:
                e.add_row(group, label, how, *_cells(stats))
        for check in ("heldout", "cross_model"):
            if errs.get(check) and "all" not in errs[check]:
                e.add_row(group, "all", check.replace("_", "-"), *_cells(errs[check]))
    console.print(e)
    if html and not fit.data:
        console.print("  no figure: --html draws whole-pass rows, and these files hold per-op rows only")


def _cells(s: dict) -> tuple[str, ...]:
    return (f"{s['median']:.1%}", f"{s['p90']:.1%}", f"{s['bias']:+.1%}" if "bias" in s else "", str(s["points"]))
