"""Cold-start time of `lattts predict --budget 60s --json` and search throughput on the default grid.

Run: python benchmarks/bench_predict.py. Prints one JSON object; quote it in notes. Times are of this
machine at this moment (the CPU drifts 20-40% over tens of minutes; compare runs taken together).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def cold_start_s(repeats: int = 5) -> list[float]:
    exe = shutil.which("lattts") or os.path.join(os.path.dirname(sys.executable), "lattts")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([exe, "predict", "--budget", "60s", "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return times


def search_rate(repeats: int = 5) -> dict:
    from lattts.plan import PlanRequest, build_plan
    from lattts.simulator import speculative
    from lattts.simulator.search import evaluate_grid

    plan = build_plan(PlanRequest())  # predict's defaults
    evaluate_grid(plan.problem)  # warm imports
    warm, cold = [], []
    for _ in range(repeats):
        speculative._expected_max_rounds_cached.cache_clear()
        speculative._rounds_cdf_exact.cache_clear()
        t = time.perf_counter()
        grid = evaluate_grid(plan.problem)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate_grid(plan.problem)
        warm.append(time.perf_counter() - t)
    n = len(grid)
    return {"configurations": n, "grid_s_median": statistics.median(cold),
            "configs_per_s": n / statistics.median(cold), "grid_s_median_cached_rounds": statistics.median(warm)}


if __name__ == "__main__":
    starts = cold_start_s()
    print(json.dumps({"cold_start_s": {"median": statistics.median(starts), "min": min(starts), "max": max(starts)},
                      "search": search_rate()}, indent=2))
