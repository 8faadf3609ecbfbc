"""The engine's forward pass on this CPU: decode time against the memory-bandwidth bound, against
batch and context, and against Hugging Face transformers' own forward on the same shape.

Run: python benchmarks/bench_engine.py [--quick]. Prints one JSON object (quote it in notes).
Medians of repeated passes; the CPU drifts 20-40% over tens of minutes, so compare numbers taken
in the same run.
"""

from __future__ import annotations

import argparse
import json

import torch

from lattts.calibrate.machine import measure_machine
from lattts.engine.model import Transformer
from lattts.engine.timing import median_seconds
from lattts.models.registry import resolve_model


def ours_step(model: Transformer, batch: int, context: int, repeats: int) -> float:
    cache = model.new_cache(batch, context + 2)
    x = torch.randint(0, 1000, (batch, 1))

    def step():
        cache.set_lengths([context] * batch)
        model(x, cache, "last")

    with torch.inference_mode():
        return median_seconds(step, repeats)


def hf_step(spec, batch: int, context: int, repeats: int) -> float:
    import transformers

    cfg = {k: v for k, v in spec.to_hf_config().items() if k not in ("model_type", "architectures")}
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg)).eval()
    with torch.inference_mode():
        out = model(torch.randint(0, 1000, (batch, context)), use_cache=True)
        cache = out.past_key_values
        x = torch.randint(0, 1000, (batch, 1))

        def step():
            model(x, past_key_values=cache, use_cache=True)
            cache.crop(-1)  # drop the token just added: the context stays fixed across repeats

        return median_seconds(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": measure_machine(repeats=repeats)}
    read_bw = out["machine"]["read_bytes_per_s"]
    for name in ("cpu-medium", "SmolLM2-135M-Instruct"):
        spec = resolve_model(name)
        model = Transformer(spec).init_random(0).pack()
        weight_bytes = spec.weight_bytes("fp32")
        t1 = ours_step(model, 1, 128, repeats)
        entry = {
            "params": spec.n_params, "weight_bytes": weight_bytes, "kernels": model.kernels,
            "decode_b1_s128_s": t1, "bandwidth_bound_s": weight_bytes / read_bw,
            "efficiency_vs_bandwidth_bound": (weight_bytes / read_bw) / t1,
            "step_vs_batch_s": {b: ours_step(model, b, 128, repeats) for b in (1, 2, 4, 8, 16, 32, 64)},
            "step_vs_context_b1_s": {s: ours_step(model, 1, s, repeats) for s in (128, 512, 1024, 2048)},
            "step_vs_context_b8_s": {s: ours_step(model, 8, s, repeats) for s in (128, 512, 1024, 2048)},
        }
        vs = {}
        for b in (1, 4, 16):
            theirs = hf_step(spec, b, 128, repeats)
            ours = ours_step(model, b, 128, repeats)
            vs[b] = {"ours_s": ours, "transformers_s": theirs, "speedup": theirs / ours}
        entry["vs_transformers_s128"] = vs
        out[name] = entry
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
