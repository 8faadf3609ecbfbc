"""How well the GPU cost model predicts kernels of a model it never saw, and what it does to the answer.

Run: python benchmarks/bench_gpu_kernels.py. Prints one JSON object:
- ``lomo``: per GPU (H100 SXM, A100 SXM 80GB; Vidur's timings, microsoft/vidur@7d47513), leave-one-model-out
  |predicted/measured - 1| (median, p90, median bias) of the linear ops (each matmul, and the sum of a layer's
  four: the unit lattts' linear group prices), of a layer's element-wise kernels and of all-reduce (5-fold
  over message sizes: one topology file), overall, by token band and by tensor-parallel size; "before" is
  the datasheet model (90% bandwidth, 80% matmul, roofline max, no fixed times, 10 us + datasheet NVLink);
- ``parameters``: the shipped profiles' fitted values with their 95% bootstrap intervals;
- ``headline``: the default `lattts predict` (s1.1-32B + s1.1-7B, paper curve, 2x H100 SXM) at 10 s, 60 s and
  5 min on the datasheet profile, with each group of fitted terms alone, and on the measured profile.
The numbers are deterministic (no timing of this machine).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TERMS = {  # profile fields of each fitted term
    "linear": ("matmul_kernel_s", "weight_bw_bytes_per_s", "gemv_bw_bytes_per_s", "act_bw_bytes_per_s",
               "matmul_flops_per_s", "knee_sharpness"),
    "elementwise": ("elementwise_kernel_s", "elementwise_bw_bytes_per_s", "row_bw_bytes_per_s"),
    "comm": ("allreduce_latency_s", "interconnect_bytes_per_s", "allreduce_by_devices"),
}
CASES = {"datasheet": (), "datasheet + linear": ("linear",), "datasheet + elementwise": ("elementwise",),
         "datasheet + all-reduce": ("comm",), "measured (all three)": ("linear", "elementwise", "comm")}


def headline() -> dict:
    """Best configuration at 10 s, 60 s and 5 min for each mix of datasheet and fitted terms."""
    from lattts.hardware.devices import find_device
    from lattts.hardware.profiles import datasheet_profile, device_profile
    from lattts.plan import PlanRequest, build_plan
    from lattts.simulator.search import evaluate_grid, predict

    device = find_device("h100-sxm")
    old, new = datasheet_profile(device), device_profile(device)
    plan = build_plan(PlanRequest(device="h100-sxm"))
    out = {}
    for label, terms in CASES.items():
        profile = replace(old, **{f: getattr(new, f) for t in terms for f in TERMS[t]})
        problem = replace(plan.problem, deployment=replace(plan.problem.deployment, profile=profile))
        grid = evaluate_grid(problem)
        answers = {}
        for budget in (10.0, 60.0, 300.0):
            result = predict(problem, budget, grid)
            best = result.best
            answers[f"{budget:g}s"] = ({k: getattr(best, k) for k in ("branches", "draft_len", "max_tokens",
                                                                      "accuracy", "latency_s")}
                                       if best else {"none_within_budget": True, "fastest_s": result.fastest_s})
        out[label] = {"devices": problem.deployment.devices, **answers}
    return out


def main() -> None:
    from lattts.calibrate.shipped import GPU_FILES, lomo_tables
    from lattts.hardware.profiles import measured_profile

    report = {"lomo": {key: lomo_tables(key) for key in GPU_FILES},
              "parameters": {key: {name: {"value": e["value"], "unit": e["unit"], "interval_95": e["interval_95"]}
                                   for name, e in measured_profile(key).provenance["parameters"].items()}
                             for key in GPU_FILES},
              "headline": headline()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
