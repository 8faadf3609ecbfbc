"""Times Hugging Face transformers' own forward pass (``LlamaForCausalLM`` / ``Qwen2ForCausalLM``
with its ``DynamicCache``) so a profile can be calibrated for that engine too: a prediction that
only works for lattts' own engine would be half a result. transformers is an optional dependency
(the ``dev`` extra); it is imported here only."""

from __future__ import annotations

import torch

from lattts.calibrate.grid import PassShape
from lattts.calibrate.sweep import OutOfMemory, is_out_of_memory
from lattts.dtypes import torch_dtype
from lattts.errors import UserError
from lattts.models.spec import ModelSpec


def hf_model(spec: ModelSpec, device: str = "cpu", dtype: str = "fp32", weights: str | None = None, seed: int = 0):
    """A transformers causal LM of this shape: random weights, or loaded from a Hugging Face folder."""
    try:
        import transformers
    except ImportError:
        raise UserError("the transformers engine needs the transformers package: pip install transformers") from None
    if weights:
        return transformers.AutoModelForCausalLM.from_pretrained(weights, dtype=torch_dtype(dtype)).to(device).eval()
    cls = transformers.Qwen2Config if spec.arch == "qwen2" else transformers.LlamaConfig
    cfg = cls(**{k: v for k, v in spec.to_hf_config().items() if k not in ("model_type", "architectures")})
    torch.manual_seed(seed)
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype(dtype))
    return model.eval()


class TransformersRunner:
    """``time_pass`` for transformers: a (B, q) step on top of a DynamicCache holding s tokens."""

    kernels = "transformers: torch F.linear (MKL on CPU), DynamicCache growing by concatenation"

    def __init__(self, spec: ModelSpec, device: str = "cpu", dtype: str = "fp32", seed: int = 0, clock=None):
        from lattts.engine.timing import clock_for

        self.spec, self.device = spec, device
        self.model = hf_model(spec, device, dtype, seed=seed)
        self.clock = clock or clock_for(device)
        self._kept = None  # ((batch, context), cache): paired timing calls time_pass once per pass

    def _cache(self, point: PassShape):
        from transformers import DynamicCache

        if self._kept and self._kept[0] == (point.batch, point.context):
            return self._kept[1]  # every pass is cropped back to the context, so it is as prefilled
        self._kept = None  # free the old one first
        cache = DynamicCache()
        if point.context:
            ids = torch.randint(0, self.spec.vocab_size, (1, point.context), device=self.device)
            self.model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            if point.batch > 1:
                cache.batch_repeat_interleave(point.batch)
        self._kept = ((point.batch, point.context), cache)
        return cache

    def time_pass(self, point: PassShape, repeats: int, warmup: int) -> list[float]:
        try:
            with torch.inference_mode():
                cache = self._cache(point)
                tokens = torch.randint(0, self.spec.vocab_size, (point.batch, point.query), device=self.device)
                times = []
                for i in range(warmup + repeats):
                    start = self.clock.now()
                    self.model(tokens, past_key_values=cache, use_cache=True, logits_to_keep=point.logit_positions)
                    elapsed = self.clock.now() - start
                    cache.crop(-point.query)  # back to s cached tokens for the next repeat
                    if i >= warmup:
                        times.append(elapsed)
                return times
        except Exception as exc:
            if is_out_of_memory(exc):
                self._kept = None
                raise OutOfMemory(str(exc).splitlines()[0]) from None
            raise
