"""How far a validation run's time follows the anchor that `lattts validate --server` re-times beside it.

Validation scales each run's prediction by the device's speed: its anchor passes (timed as
calibration times them) re-timed before and after the run, median of five each, the mean of the
two, over the calibration's reference. This benchmark measures the one-row anchor (``ANCHOR_POINT``)
alone, as validation used it until it had a second, many-row anchor. If a run's wall time moved in proportion, log(run time)
would rise one for one with log(factor). This benchmark measures the slope: for ``--minutes`` it runs
the server quick grid (the runs `validate --server --quick` makes: B 1-8, gamma 0-4, L 32-256) over
and over, each cycle in a new shuffled order, through ``drift_corrected_runs`` (the code validation
uses), and regresses log(wall time) on log(factor) within each configuration (a configuration's own
mean removed from both), pooled. It prints the slope with a bootstrap interval over cycles, and the
spread of the runs' times left after dividing by factor^slope for slope 0, 1 and the fitted one.

Run: python benchmarks/bench_drift_elasticity.py --server URL [--server URL ...] [--minutes 12]
[--out runs.json]; the first server must run without a draft, one server per draft length.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np


def _within(configs: list, x: np.ndarray) -> np.ndarray:
    """``x`` less the mean of its configuration's entries (runs,)."""
    out = x.copy()
    for c in set(configs):
        idx = np.array([i for i, k in enumerate(configs) if k == c])
        out[idx] -= x[idx].mean()
    return out


def slope(configs: list, log_time: np.ndarray, log_factor: np.ndarray) -> float:
    """Least-squares slope of log time on log factor, within configurations."""
    x, y = _within(configs, log_factor), _within(configs, log_time)
    return float(x @ y / (x @ x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", action="append", required=True, help="llama.cpp servers, the first without a draft")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--out", help="also write every run (config, wall time, factor) here as JSON")
    args = ap.parse_args()

    from lattts.calibrate.grid import ANCHOR_POINT
    from lattts.serving.connect import connect
    from lattts.serving.pool import ServerPool
    from lattts.serving.timing import ServerPassRunner
    from lattts.validate.grid import SERVER_QUICK_GRID
    from lattts.validate.run import DEFAULT_PROMPT
    from lattts.validate.session import Anchor, drift_corrected_runs, run_config

    pool = ServerPool([connect(url, "llama.cpp") for url in args.server])
    runner = ServerPassRunner(pool.plain)
    runner.time_pass(ANCHOR_POINT, 0, 2)
    anchor = Anchor(runner, one_row=(ANCHOR_POINT, 1.0))  # the slope does not depend on the reference
    grid = [c for c in SERVER_QUICK_GRID if c.draft_len in pool.gammas]
    run = partial(run_config, pool, pool.first().tokenize(DEFAULT_PROMPT))
    rows, cycle, end = [], 0, time.time() + 60 * args.minutes
    while time.time() < end:
        for config, result, speed in drift_corrected_runs(grid, anchor, partial(run, seed=cycle), cycle, []):
            rows.append({"cycle": cycle, "config": [config.branches, config.draft_len, config.max_tokens],
                         "wall_s": result.latency_s, "factor": speed.one_row})
        cycle += 1

    configs = [tuple(r["config"]) for r in rows]
    y, x = np.log([r["wall_s"] for r in rows]), np.log([r["factor"] for r in rows])  # (runs,)
    fitted = slope(configs, y, x)
    rng, cycles = np.random.default_rng(0), np.array([r["cycle"] for r in rows])
    boot = []
    for _ in range(1000):  # resample whole cycles
        pick = np.concatenate([np.flatnonzero(cycles == c) for c in rng.choice(cycle, cycle)])
        boot.append(slope([configs[i] for i in pick], y[pick], x[pick]))
    left = {f"slope {b:.2f}": float(np.std(_within(configs, y - b * x))) for b in (0.0, 1.0, fitted)}
    out = {"servers": [b.info.to_json() for b in pool.by_gamma.values()], "minutes": args.minutes, "cycles": cycle,
           "runs": len(rows), "slope": fitted, "slope_90_interval": [float(np.quantile(boot, q)) for q in (0.05, 0.95)],
           "factor_range": [float(np.exp(x.min())), float(np.exp(x.max()))], "log_time_sd_left": left}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
