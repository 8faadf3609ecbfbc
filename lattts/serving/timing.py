"""Forward passes of a served model, timed through the server's own clock.

A server runs whole generations, not single passes, so each pass shape is read off requests.

- A decode step (B, q=1, s) is the difference between the generated spans (llama.cpp's
  ``predicted_ms``, slowest sample) of two budget-forced requests of B samples, LEAD_TOKENS and
  LEAD_TOKENS + DECODE_TOKENS long, over DECODE_TOKENS, with those steps centred on s. One request's
  own ``predicted_per_token_ms`` holds a start-up of a few hundred ms when n > 1, which a long
  generation does not pay per step (measured here at B=4: 43.4 ms per token over 24 tokens, 33.1 ms
  over 96; the difference of the two spans gave 29.8 ms).
- A prefill (B, q=P, s=0) is the time to the first token of a request of B samples of a P-token
  prompt (wall time minus the decode span: it holds the request's own overhead, which a served
  generation pays once too).

Prompts are fresh random token ids, so no prefix cache helps.
``ServerPassRunner`` has the calibration sweep's ``time_pass`` interface, so the sweep, its pairing
with an anchor and its resumable measurements file serve a server exactly as they serve the engine.
"""

from __future__ import annotations

import random
import time

from lattts.backend import GenerationRequest
from lattts.calibrate.grid import PassShape
from lattts.errors import UserError

DECODE_TOKENS = 24  # decode steps timed per point: the longer request's extra steps, centred on the point's s
LEAD_TOKENS = 8  # the shorter request: its span holds the start-up the difference removes


class ServerPassRunner:
    """``time_pass`` against a served model (see the module docstring); ``kernels`` names the engine."""

    def __init__(self, backend, seed: int = 0, decode_tokens: int = DECODE_TOKENS):
        if backend.info.draft_len:
            raise UserError(f"the {backend.engine} server at {backend.info.url} drafts ({backend.info.draft_len} tokens "
                            f"per round): calibrate a server launched without a draft, whose passes are its own")
        if backend.engine != "llama.cpp":
            raise UserError(f"calibrating through {backend.engine} needs per-step timings it does not report; "
                            f"time it with --from-csv instead, or calibrate a llama.cpp server")
        self.backend, self.decode_tokens = backend, decode_tokens
        # the method in one string, part of a calibration's resume key: points timed another way (one
        # request's predicted_per_token_ms, before this timer) are not resumed into a run of this one
        self.timer = f"span difference {LEAD_TOKENS}/{LEAD_TOKENS + decode_tokens} tokens"
        self.rng = random.Random(seed)
        vocab = backend.info.launch.get("n_vocab") or 32000
        self.vocab = int(vocab)
        self.kernels = f"{backend.engine} {backend.info.version} at {backend.info.url}"

    def _prompt(self, n: int) -> list[int]:
        return [self.rng.randrange(100, self.vocab - 1) for _ in range(max(n, 1))]

    def _once(self, point: PassShape) -> float:
        if point.query == 1 and point.context > 0:  # a decode step at context s
            prompt = max(point.context - LEAD_TOKENS - self.decode_tokens // 2, 1)
            short, long = (self._span_s(self._prompt(prompt), point.batch, n)
                           for n in (LEAD_TOKENS, LEAD_TOKENS + self.decode_tokens))
            return max(long - short, 1e-6) / self.decode_tokens
        if point.context == 0:  # a prefill of B x q tokens
            start = time.perf_counter()
            request = GenerationRequest.forced(self._prompt(point.query), point.batch, 2, temperature=1.0,
                                               seed=self.rng.randrange(1 << 30))
            result = self.backend.generate(request)
            decode = max(float(t.get("predicted_ms", 0.0)) for t in result.server["timings"]) / 1e3
            return max(time.perf_counter() - start - decode, 1e-6)
        raise ValueError(f"a server cannot time a pass of q={point.query} on s={point.context} cached tokens")

    def _span_s(self, prompt: list[int], batch: int, tokens: int) -> float:
        """The generated span of the slowest of ``batch`` samples of ``tokens`` tokens each (seconds)."""
        request = GenerationRequest.forced(prompt, batch, tokens, temperature=1.0, seed=self.rng.randrange(1 << 30))
        result = self.backend.generate(request)
        return max(float(t["predicted_ms"]) for t in result.server["timings"]) / 1e3

    def time_pass(self, point: PassShape, repeats: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            self._once(point)
        return [self._once(point) for _ in range(repeats)]


def server_grid(slots: int, context: int, quick: bool) -> list[PassShape]:
    """Decode steps over every B up to the slots (a server's kernels change with the rows) and over
    context; prefills over prompt length (one per request: llama.cpp prefills a prompt once for its
    n samples)."""
    batches = list(range(1, min(slots, 8) + 1)) + [b for b in (12, 16, 24, 32) if b <= slots]
    decode = [(b, 64) for b in batches] + [(b, 512) for b in (1, 2, 4, 8) if b <= slots] + [(1, 1024)]
    prefill = [32, 64, 128, 256, 512]
    if not quick:
        decode += [(b, 256) for b in batches] + [(1, 1800), (min(4, slots), 1024), (min(8, slots), 1024)]
        prefill += [16, 384, 1024]
    points = {PassShape(b, 1, s) for b, s in decode if s + DECODE_TOKENS < context}
    points |= {PassShape(1, p, 0) for p in prefill if p + 2 < context}
    return sorted(points)
