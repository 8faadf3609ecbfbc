"""Which anchor timing follows the machine's speed best: the one before a run, or the mean of the
ones before and after it.

Against a llama.cpp server without a draft, runs a cycle of budget-forced requests (B = 1 and 4 at
L = 128, B = 8 at L = 64, on one cached prompt) with the calibration's anchor (``ANCHOR_POINT``,
timed as `lattts calibrate --server` times it) between every two of them, for ``--minutes``. For
each workload it reports how much its generated span (the server's ``predicted_ms``) varies over
the session, and how much is left after dividing by the anchor before the run or by the mean of
the anchors either side: the coefficient of variation, the 90th percentile of |x / median - 1| and
the correlation with the anchor.

Run: python benchmarks/bench_anchor_pairing.py --server URL [--minutes 8]. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

WORKLOADS = ((1, 128), (4, 128), (8, 64))  # (B, L)


def _stats(x: np.ndarray) -> dict:
    rel = x / np.median(x)  # (runs,)
    return {"cv": float(rel.std() / rel.mean()), "p90_abs_dev": float(np.quantile(np.abs(rel - 1.0), 0.9))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="a llama.cpp server without a draft")
    ap.add_argument("--minutes", type=float, default=8.0)
    args = ap.parse_args()

    from lattts.backend import GenerationRequest
    from lattts.calibrate.grid import ANCHOR_POINT
    from lattts.serving.connect import connect
    from lattts.serving.timing import SAMPLED, ServerPassRunner

    backend = connect(args.server, "llama.cpp")
    runner = ServerPassRunner(backend)
    prompt = runner._kept_prompt(50)
    runner.time_pass(ANCHOR_POINT, 0, 2)
    anchors = [runner.time_pass(ANCHOR_POINT, 1, 0)[0]]  # one between every two runs
    runs: list[tuple[int, float]] = []  # (workload index, generated span in s), in time order
    end, seed = time.time() + 60 * args.minutes, 0
    while time.time() < end:
        for k, (batch, tokens) in enumerate(WORKLOADS):
            seed += 1
            result = backend.generate(GenerationRequest.forced(prompt, batch, tokens, temperature=SAMPLED,
                                                               cached_prompt=True, seed=seed))
            runs.append((k, max(float(t["predicted_ms"]) for t in result.server["timings"]) / 1e3))
            anchors.append(runner.time_pass(ANCHOR_POINT, 1, 0)[0])
    a = np.array(anchors)  # (runs + 1,): a[i] before run i, a[i + 1] after it
    out = {"server": backend.info.to_json(), "minutes": args.minutes, "anchor": {"median_ms": float(np.median(a) * 1e3),
                                                                                 **_stats(a)}}
    for k, (batch, tokens) in enumerate(WORKLOADS):
        idx = np.array([i for i, (w, _) in enumerate(runs) if w == k])
        span = np.array([runs[i][1] for i in idx])  # (n,)
        before, around = a[idx], (a[idx] + a[idx + 1]) / 2
        out[f"B={batch} L={tokens}"] = {
            "runs": int(len(idx)), "raw": _stats(span),
            "over_anchor_before": {**_stats(span / before), "corr": float(np.corrcoef(span, before)[0, 1])},
            "over_mean_of_anchors_around": {**_stats(span / around), "corr": float(np.corrcoef(span, around)[0, 1])},
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
