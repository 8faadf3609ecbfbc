"""Where llama.cpp puts the n samples of one request, and what a decode step costs for it.

An n=B request runs in a parent slot and the B-1 lowest free slots. With the parent in slot 0 the
samples hold slots 0..B-1; with the parent in the last slot (where a fresh server's first request
lands, and where its prompt cache keeps sending the same prompt) they hold 0..B-2 and the last one.
This times a decode step both ways on one fresh server, alternating, as the calibration's timer
does: the difference of the generated spans of a 32- and an 8-token request, over 24.

Run: python benchmarks/bench_llamacpp_slots.py [--repeats N]. Prints one JSON object (quote it in
notes). Needs the server extra (pip install 'lattts[server]').
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

from bench_serving import start_server, stop

SLOTS = 8
BATCHES = (2, 4, 6)


def step_ms(server, prompt: list[int], batch: int, parent: int, rng: random.Random) -> float:
    """One decode step of ``batch`` samples whose parent slot is ``parent`` (milliseconds): the client's
    own request body (``LlamaCppServer.body``) with its slot set to ``parent``."""
    import httpx

    from lattts.backend import GenerationRequest

    def span(tokens: int) -> float:
        path, body = server.body(GenerationRequest.forced(prompt, batch, tokens, temperature=1.0, cached_prompt=True,
                                                          seed=rng.randrange(1 << 30)))
        answer = httpx.post(server.info.url + path, json={**body, "id_slot": parent}, timeout=300).json()
        return max(item["timings"]["predicted_ms"] for item in (answer if isinstance(answer, list) else [answer]))

    return (span(32) - span(8)) / 24


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(0)
    prompt = [rng.randrange(100, 49000) for _ in range(44)]
    proc, url = start_server()
    try:
        from lattts.serving.connect import connect

        server, out = connect(url, "llama.cpp"), {}
        for b in BATCHES:
            times = {"slots 0..B-1": [], "slots 0..B-2 and the last": []}
            for _ in range(args.repeats):  # alternate, so drift falls on both alike
                times["slots 0..B-1"].append(step_ms(server, prompt, b, 0, rng))
                times["slots 0..B-2 and the last"].append(step_ms(server, prompt, b, SLOTS - 1, rng))
            med = {k: statistics.median(v) for k, v in times.items()}
            out[f"B={b}"] = {**{k: round(v, 2) for k, v in med.items()},
                             "ratio": round(med["slots 0..B-2 and the last"] / med["slots 0..B-1"], 3)}
    finally:
        stop(proc)
    print(json.dumps({"model": "smollm2-135m (Q4_1)", "slots": SLOTS, "context": 64, "unit": "ms per decode step",
                      "steps": out}, indent=1))


if __name__ == "__main__":
    main()
