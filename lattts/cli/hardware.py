"""`lattts hardware`: the device table and what is detected on this machine."""

from __future__ import annotations

import typer

from lattts.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("hardware")(hardware)


@handle_errors
def hardware(json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")) -> None:
    """List the device table (datasheet figures and sources, and which rows predict from a measured profile)
    and detect this machine's GPUs and CPU."""
    from lattts.hardware.choose import FALLBACK_DEVICE, detect
    from lattts.hardware.devices import device_table, match_nvml_name
    from lattts.hardware.profiles import device_profile, profile_basis
    from lattts.hardware.store import gpu_device_key, saved_profiles

    detection = detect()
    gpus = []
    for gpu in detection.gpus:
        row = match_nvml_name(gpu.name)
        key = gpu_device_key(gpu.name)
        gpus.append({**gpu.to_dict(), "table_key": row.key if row else None,
                     "calibrations": [str(p) for p in saved_profiles(key)], "device_key": key})
    cpu = detection.cpu
    cpu_saved = [str(p) for p in saved_profiles(cpu.key)]
    profiles = {d.key: device_profile(d) for d in device_table() if d.kind == "gpu"}
    table = [{
        "key": d.key, "name": d.name, "kind": d.kind,
        "peak_flops": d.peak_flops or None, "mem_bw_bytes_per_s": d.mem_bw_bytes_per_s,
        "memory_bytes": d.memory_bytes, "interconnect_bytes_per_s": d.interconnect_bytes_per_s, "source": d.source,
        "profile": ({"kind": profiles[d.key].kind, "basis": profile_basis(profiles[d.key]),
                     "source": profiles[d.key].source} if d.key in profiles else None),
    } for d in device_table()]
    if json_out:
        print_json({"devices": table, "detected": {
            "gpus": gpus, "nvml_error": detection.nvml_error,
            "cpu": {**cpu.to_dict(), "calibrations": cpu_saved,
                    "note": None if cpu_saved else "bandwidth and FLOP/s unknown until calibrated (lattts calibrate --device cpu)"},
        }})
        return
    from rich.table import Table

    t = Table(title="device table (datasheet, dense, no sparsity) and the profile each row predicts with",
              title_justify="left")
    for col in ("key", "name", "bf16 TFLOP/s", "fp32 TFLOP/s", "bandwidth", "memory", "profile"):
        t.add_column(col, overflow="fold")
    for d in device_table():
        if d.kind == "cpu":
            t.add_row(d.key, d.name, "?", "?", "?", "?", "unknown until calibrated: lattts calibrate --device cpu")
            continue
        t.add_row(d.key, d.name, f"{d.peak_flops['bf16'] / 1e12:.0f}", f"{d.peak_flops['fp32'] / 1e12:.1f}",
                  f"{d.mem_bw_bytes_per_s / 1e12:.3g} TB/s", f"{d.memory_bytes / 2**30:.0f} GiB",
                  profile_basis(profiles[d.key]))
    console.print(t)
    console.print("[bold]detected here[/]")
    if detection.gpus:
        for g in gpus:
            match = g["table_key"] or f"not in the table (predictions fall back to {FALLBACK_DEVICE} until calibrated)"
            console.print(f"  GPU {g['index']}: {g['name']}, {g['memory_bytes'] / 2**30:.1f} GiB, driver {g['driver']}, "
                          f"SM clock max {g['sm_clock_max_mhz']} MHz -> {match}", highlight=False)
            for path in g["calibrations"]:
                console.print(f"    calibration: {path}")
    else:
        console.print(f"  GPU: none ({detection.nvml_error})", highlight=False)
    mem = f"{cpu.memory_bytes / 2**30:.1f} GiB" if cpu.memory_bytes else "? GiB"
    console.print(f"  CPU: {cpu.model}, {cpu.cores} cores / {cpu.threads} threads, {mem} RAM", highlight=False)
    if cpu_saved:
        for path in cpu_saved:
            console.print(f"    calibration: {path}")
    else:
        console.print("    bandwidth and FLOP/s unknown until calibrated: lattts calibrate --device cpu")
