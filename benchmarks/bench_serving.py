"""llama.cpp's server (embedded xllamacpp) against the memory-bandwidth bound, beside lattts' own engine,
on SmolLM2-135M-Instruct: decode step against batch and context, and what a draft round costs.

Run: python benchmarks/bench_serving.py [--quick]. Prints one JSON object (quote it in notes).
The bound of a decode step is the bytes it must read once (the weights as stored: Q4_1/Q8_0 in the
GGUF, fp32 in lattts' engine; plus the fp16 / fp32 KV cache of B sequences at context s) over the
stream bandwidth measured here in the same run. Medians of repeated steps; the CPU drifts 20-40% over
tens of minutes, so compare numbers of one run only. Needs the server extra (pip install 'lattts[server]').
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys

BATCHES = (1, 2, 4, 8)
CONTEXTS = (64, 512)


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "lattts", "serve", "--model", "smollm2-135m", "--slots", str(max(BATCHES)),
           "--context", "1024", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"lattts serve did not start: {url!r}")
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def server_steps(url: str, repeats: int) -> dict:
    """Decode-step seconds of the served model per (B, s), through the calibration's own timer."""
    from lattts.calibrate.grid import PassShape
    from lattts.serving.connect import connect
    from lattts.serving.timing import ServerPassRunner

    runner = ServerPassRunner(connect(url, "llama.cpp"))
    return {(b, s): statistics.median(runner.time_pass(PassShape(b, 1, s), repeats, warmup=1))
            for s in CONTEXTS for b in BATCHES}


def engine_steps(spec, repeats: int) -> dict:
    """Decode-step seconds of lattts' fp32 engine on the same shape (random weights: time does not
    depend on their values)."""
    import torch

    from lattts.engine.model import Transformer
    from lattts.engine.timing import median_seconds

    torch.manual_seed(0)
    model = Transformer(spec).init_random(0).pack()
    out = {}
    for s in CONTEXTS:
        for b in BATCHES:
            cache, x = model.new_cache(b, s + 2), torch.randint(0, 1000, (b, 1))

            def step():
                cache.set_lengths([s] * b)
                model(x, cache, "last")

            with torch.inference_mode():
                out[(b, s)] = median_seconds(step, repeats)
    return out


def draft_rounds(url: str, batches: tuple[int, ...], tokens: int) -> dict:
    """Per draft round on a drafting server: seconds, draft tokens and accepted ones (its counters)."""
    from lattts.backend import GenerationRequest
    from lattts.serving.connect import connect

    backend = connect(url, "llama.cpp")
    prompt = backend.tokenize("Write a short story about a lighthouse.")
    out = {}
    for b in batches:
        res = backend.generate(GenerationRequest.forced(prompt, b, tokens, seed=1, draft_len=backend.info.draft_len))
        decode_s = max(float(t["predicted_ms"]) for t in res.server["timings"]) / 1e3
        rounds = res.counts.rounds / b  # the counters sum over the request's B sequences
        out[b] = {"round_s": decode_s / rounds, "rounds_per_sequence": rounds,
                  "accepted_per_round": res.counts.accepted / res.counts.rounds, "draft_len": backend.info.draft_len}
    return out


def bound(spec, weight_bytes: float, kv_dtype: str, b: int, s: int, read_bw: float) -> float:
    # weights once + the KV cache of b sequences at s positions, at the measured stream bandwidth
    return (weight_bytes + b * s * spec.kv_bytes_per_token(kv_dtype)) / read_bw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7

    from lattts.calibrate.machine import measure_machine
    from lattts.models.registry import resolve_model
    from lattts.serving.connect import connect, served_spec

    machine = measure_machine(repeats=repeats)
    read_bw = machine["read_bytes_per_s"]
    proc, url = start_server()
    try:
        served = served_spec(connect(url, "llama.cpp"), None)
        steps = server_steps(url, repeats)
    finally:
        stop(proc)
    spec = resolve_model("smollm2-135m")
    ours = engine_steps(spec, repeats)
    served_bytes, ours_bytes = served.weight_bytes("fp16"), spec.weight_bytes("fp32")
    rows = []
    for (b, s), t in steps.items():
        served_bound = bound(served, served_bytes, "fp16", b, s, read_bw)
        ours_bound = bound(spec, ours_bytes, "fp32", b, s, read_bw)
        rows.append({"B": b, "s": s, "llamacpp_step_s": t, "llamacpp_bound_s": served_bound,
                     "llamacpp_fraction_of_bound": served_bound / t, "engine_step_s": ours[(b, s)],
                     "engine_bound_s": ours_bound, "engine_fraction_of_bound": ours_bound / ours[(b, s)],
                     "llamacpp_speedup_over_engine": ours[(b, s)] / t})
    proc, url = start_server("--draft", "self:24", "--draft-len", "3")
    try:
        spec_rounds = draft_rounds(url, (1, 4) if args.quick else (1, 2, 4, 8), 64 if args.quick else 128)
    finally:
        stop(proc)
    print(json.dumps({"machine": machine, "served_weight_bytes": served_bytes, "engine_weight_bytes": ours_bytes,
                      "weights": served.weight_format.source if served.weight_format else None,
                      "decode_steps": rows, "draft_rounds_self24_gamma3": spec_rounds}, indent=2))


if __name__ == "__main__":
    main()
