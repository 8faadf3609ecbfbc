"""How well the calibrated profile prices llama.cpp's speculative rounds, apart from acceptance.

Runs budget-forced requests of B = 1, 2, 4, 8 samples on the validation prompt against running
servers, one per draft length (one of them without a draft: the one `lattts calibrate --server`
timed), and predicts each run from the saved calibration of that plain server with the run's own
rounds (each sample's rounds from its timings: tokens - 1 - accepted), so acceptance is no longer a
source of error. Two ratios per run:

- predicted / measured: the profile's whole error on that run, drift included;
- that ratio over the plain run's at the same B (run just before it): the error of the round's
  pricing (draft and verify passes) once the per-step error and drift shared with plain decoding
  cancel.

It also reports the plain runs' own predicted/measured by B (median over cycles).

Run: python benchmarks/bench_llamacpp_rounds.py --server URL --server URL ... [--tokens L] [--cycles N]
(e.g. the servers of README's validation example). Prints one JSON object (quote it in notes).
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

BATCHES = (1, 2, 4, 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", action="append", required=True, help="a server URL (one of them without a draft)")
    ap.add_argument("--draft", default="self:24", help="the speculative servers' draft (as passed to validate)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--cycles", type=int, default=1)
    args = ap.parse_args()

    from lattts.backend import GenerationRequest, schedule_of
    from lattts.calibrate.server import SERVER_KV_DTYPE, server_target
    from lattts.hardware.profiles import load_profile
    from lattts.hardware.store import profile_path
    from lattts.models.registry import resolve_draft
    from lattts.serving.connect import connect, served_spec
    from lattts.serving.llamacpp import _rounds
    from lattts.serving.pool import ServerPool
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.generation import Workload, latency_at_rounds
    from lattts.simulator.speculative import AcceptanceModel
    from lattts.validate.run import DEFAULT_PROMPT

    pool = ServerPool([connect(url, "llama.cpp") for url in args.server])
    if pool.plain is None:
        raise SystemExit("one --server must run without a draft (the calibrated one)")
    saved = profile_path(server_target(pool.plain).key, SERVER_KV_DTYPE, pool.plain.engine)
    deploy = Deployment.on(load_profile(saved), SERVER_KV_DTYPE)
    target = served_spec(pool.plain, None)
    draft = resolve_draft(args.draft, target)
    prompt = pool.plain.tokenize(DEFAULT_PROMPT)

    def one(gamma: int, batch: int, seed: int) -> dict:
        result = pool.by_gamma[gamma].generate(GenerationRequest.forced(prompt, batch, args.tokens, seed=seed,
                                                                        draft_len=gamma))
        timings = result.server["timings"]
        rounds = np.array([_rounds(t) if gamma else args.tokens - 1 for t in timings], float)  # (B,)
        counts = result.counts  # the client's acceptance totals (None without a draft)
        accepted = counts.accepted / counts.drafted if counts and counts.drafted else 0.0
        work = Workload(target, len(prompt), draft, AcceptanceModel.iid(max(accepted, 1e-3), "this run"),
                        schedule=schedule_of("llama.cpp"))
        own = np.array([rounds.mean()]) if gamma else None
        predicted = float(np.ravel(latency_at_rounds(work, deploy, batch, gamma, np.array([rounds.max()]), own))[0])
        return {"measured_s": result.latency_s, "predicted_s": predicted, "ratio": predicted / result.latency_s,
                "rounds_slowest": int(rounds.max()), "rounds_mean": float(rounds.mean()), "acceptance": accepted}

    runs, plain_ratios = [], {b: [] for b in BATCHES}
    for cycle in range(args.cycles):
        for batch in BATCHES:
            plain = one(0, batch, cycle)
            plain_ratios[batch].append(plain["ratio"])
            for gamma in (g for g in pool.gammas if g):  # each right after its plain run: shared drift
                spec = one(gamma, batch, cycle)
                runs.append({"B": batch, "gamma": gamma, "cycle": cycle, "plain_ratio": round(plain["ratio"], 3),
                             **{k: round(v, 3) if isinstance(v, float) else v for k, v in spec.items()},
                             "ratio_over_plain": round(spec["ratio"] / plain["ratio"], 3)})
    summary = {f"B={b} gamma={g}": statistics.median(r["ratio_over_plain"] for r in runs if (r["B"], r["gamma"]) == (b, g))
               for b in BATCHES for g in pool.gammas if g}
    # the plain runs' own error by B: per-step cost and drift, which the ratios above divide out
    plain_by_b = {f"B={b}": round(statistics.median(plain_ratios[b]), 3) for b in BATCHES}
    print(json.dumps({"profile": str(saved), "calibrated_at": deploy.profile.provenance.get("created"),
                      "tokens": args.tokens, "prompt_tokens": len(prompt), "runs": runs,
                      "median_ratio_over_plain": summary, "median_plain_ratio": plain_by_b}, indent=1))


if __name__ == "__main__":
    main()
