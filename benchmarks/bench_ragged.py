"""What a pass costs when the branches of a batch hold different numbers of tokens (ragged), as they do
in speculative decoding with B > 1 (each branch accepts its own prefix every round), against the same
pass over equal lengths, which is what calibration times.

On the full CPU grid (issue 14) the engine's verify passes at B >= 4, L = 512 ran 12-32% above their
calibrated prediction and its draft passes 6-16% above, while plain decoding at the same B and L was
within a few percent. A ragged cache changes three things in ``Transformer.forward``: the attention
takes a (B, 1, q, total) mask instead of none (q = 1) or one shared row (q > 1); new K/V are written by
advanced indexing instead of a slice; and every branch attends over the longest branch's length.
This times equal lengths, lengths spread over 32 tokens, and equal lengths but one branch a token
short (the mask and indexed writes without the longer span), on SmolLM2-135M's shape with random
weights (time does not depend on their values).

Run: python benchmarks/bench_ragged.py [--quick]. Prints one JSON object (quote it in notes). Medians
of repeated passes, uniform and ragged interleaved so that drift hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from lattts.engine.model import Transformer
from lattts.models.registry import resolve_model


def pass_seconds(model: Transformer, lengths: list[int], q: int, repeats: int, clock=None) -> list[float]:
    """Times of one forward pass of q new tokens per branch on top of ``lengths`` cached ones."""
    from lattts.engine.timing import HostClock

    clock = clock or HostClock()
    cache = model.new_cache(len(lengths), max(lengths) + q + 1)
    x = torch.randint(0, 1000, (len(lengths), q))
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            cache.set_lengths(lengths)
            start = clock.now()
            model(x, cache, "all" if q > 1 else "last")
            if i:  # the first is a warm-up
                times.append(clock.now() - start)
    return times


def ragged_lengths(batch: int, context: int, spread: int) -> list[int]:
    """``batch`` lengths spread evenly over context - spread .. context (the longest is ``context``)."""
    if batch == 1:
        return [context]
    return [context - round(spread * (batch - 1 - b) / (batch - 1)) for b in range(batch)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 5 if args.quick else 11
    torch.manual_seed(0)
    spec = resolve_model("SmolLM2-135M-Instruct")
    model = Transformer(spec).init_random(0).pack()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "model": spec.name, "rows": []}
    for batch in (4, 16):
        for context in (128, 512):
            for q in (1, 3):
                uniform, ragged, one_short = [], [], []
                for _ in range(3):  # interleaved blocks
                    uniform += pass_seconds(model, [context] * batch, q, repeats)
                    ragged += pass_seconds(model, ragged_lengths(batch, context, 32), q, repeats)
                    # equal lengths, except one branch one token short: the mask and indexed writes of a
                    # ragged batch, with every branch attending over the same span
                    one_short += pass_seconds(model, [context] * (batch - 1) + [context - 1], q, repeats)
                u, r, one = (statistics.median(t) for t in (uniform, ragged, one_short))
                out["rows"].append({"batch": batch, "context": context, "query": q, "uniform_s": u,
                                    "ragged_32_s": r, "one_short_s": one, "ragged_over_uniform": r / u,
                                    "one_short_over_uniform": one / u})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
