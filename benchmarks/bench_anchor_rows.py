"""Does one anchor follow the machine's speed for every batch size, or do one-row and many-row steps drift apart?

Calibration and validation once divided the machine's speed out with one anchor: a decode step of
B=1 (``ANCHOR_POINT``), a one-row pass. On a CPU a one-row matmul runs a different kernel (a vector
dot product, bound by memory) from a many-row one (blocked, bound by compute), and a neighbour on
the host can slow one and not the other; this benchmark is why they now have two (``grid.Anchors``).
For ``--minutes``, against a llama.cpp server without a draft, it runs plain budget-forced requests
of B = 1, 2, 4, 8 (L = 64, shuffled each cycle) with two anchors timed between every two runs: the
one-row anchor and a decode step of ``--rows-anchor`` rows (default: the many-row anchor's, B=4),
both timed as `lattts calibrate --server` times a point. Per
batch size it reports how much the runs' generated spans vary, what is left after dividing by the
mean of either anchor around the run, and the least-squares loadings of log span on both log anchors
together (within a batch size): a run that follows the one-row anchor loads on it, one that follows
the many-row anchor on that.

Run: python benchmarks/bench_anchor_rows.py --server URL [--minutes 10] [--out runs.json].
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

BATCHES, TOKENS = (1, 2, 4, 8), 64


def _cv(x: np.ndarray) -> float:
    return float(x.std() / x.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="a llama.cpp server without a draft")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rows-anchor", type=int, default=None, help="B of the second anchor's decode step (default 4)")
    ap.add_argument("--out", help="also write every run and anchor timing here as JSON")
    args = ap.parse_args()

    from lattts.backend import GenerationRequest
    from lattts.calibrate.grid import ANCHOR_POINT, ANCHORS, PassShape
    from lattts.serving.connect import connect
    from lattts.serving.timing import SAMPLED, ServerPassRunner

    backend = connect(args.server, "llama.cpp")
    runner = ServerPassRunner(backend)
    anchors = (ANCHOR_POINT, PassShape(args.rows_anchor, 1, ANCHOR_POINT.context) if args.rows_anchor else ANCHORS.rows)
    prompt = runner._kept_prompt(50)
    for point in anchors:
        runner.time_pass(point, 0, 2)

    def time_anchors() -> list[float]:
        return [runner.time_pass(point, 1, 0)[0] for point in anchors]

    timed = [time_anchors()]  # timed[i] before run i, timed[i + 1] after it
    runs: list[tuple[int, float]] = []  # (B, generated span in s), in time order
    rng, seed, end = random.Random(0), 0, time.time() + 60 * args.minutes
    while time.time() < end:
        for batch in rng.sample(BATCHES, len(BATCHES)):
            seed += 1
            result = backend.generate(GenerationRequest.forced(prompt, batch, TOKENS, temperature=SAMPLED,
                                                               cached_prompt=True, seed=seed))
            runs.append((batch, max(float(t["predicted_ms"]) for t in result.server["timings"]) / 1e3))
            timed.append(time_anchors())
    a = np.array(timed)  # (runs + 1, 2)
    around = (a[:-1] + a[1:]) / 2  # (runs, 2): mean of the anchors either side of each run
    names = [f"B={p.batch} anchor" for p in anchors]
    out = {"server": backend.info.to_json(), "minutes": args.minutes,
           "anchors": {n: {"median_ms": float(np.median(a[:, j]) * 1e3), "cv": _cv(a[:, j])} for j, n in enumerate(names)},
           "anchor_correlation": float(np.corrcoef(np.log(a[:, 0]), np.log(a[:, 1]))[0, 1])}
    for batch in BATCHES:
        idx = np.array([i for i, (b, _) in enumerate(runs) if b == batch])
        span = np.array([runs[i][1] for i in idx])  # (n,)
        y = np.log(span) - np.log(span).mean()
        x = np.log(around[idx]) - np.log(around[idx]).mean(axis=0)  # (n, 2)
        loadings = np.linalg.lstsq(x, y, rcond=None)[0]
        out[f"B={batch} L={TOKENS}"] = {
            "runs": int(len(idx)), "raw_cv": _cv(span),
            **{f"cv_over_{n}": _cv(span / around[idx, j]) for j, n in enumerate(names)},
            **{f"corr_{n}": float(np.corrcoef(y, x[:, j])[0, 1]) for j, n in enumerate(names)},
            "loadings": dict(zip(names, map(float, loadings))),
        }
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"runs": runs, "anchors": timed}, f)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
