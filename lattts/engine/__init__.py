"""The live engine: a small, readable generation engine that runs exactly what lattts predicts.

- ``model``: the decoder, built from a ModelSpec; ``forward`` is the step everything times;
- ``cache``: preallocated KV cache with a length per branch;
- ``weights``, ``tokenizer``, ``load``, ``fetch``: weights and text (random, safetensors, GGUF, SmolLM2);
- ``sampling``: temperature/top-p, per-branch generators, speculative acceptance;
- ``generate``: B branches, budget forcing, speculative decoding, with per-pass timings;
- ``timing``: the clock behind a small interface (CUDA synchronisation on GPU).
"""
