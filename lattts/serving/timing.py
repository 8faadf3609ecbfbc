"""Forward passes of a served model, timed through the server's own clock.

A server runs whole generations, not single passes, so each pass shape is read off requests.

- A decode step (B, q=1, s) is the difference between the generated spans (llama.cpp's
  ``predicted_ms``, slowest sample) of two budget-forced requests of B samples, LEAD_TOKENS and
  LEAD_TOKENS + DECODE_TOKENS long, over DECODE_TOKENS, with those steps centred on s. One request's
  own ``predicted_per_token_ms`` can hold a start-up of a few hundred ms when n > 1, which a long
  generation does not pay per step (measured here at B=4: 43.4 ms per token over 24 tokens, 33.1 ms
  over 96; the difference of the two spans gave 29.8 ms). Samples are drawn from the whole
  vocabulary, as validation draws them: the step holds each sequence's sampling and bookkeeping.
  The client pins an n > 1 request's parent to slot 0 (``LlamaCppServer.body``), so the samples hold
  adjacent slots in calibration as in validation (slots with a gap cost a graph rebuild per step).
- A pass of q tokens on s cached ones (B=1, the shape of a verify pass) is the ``prompt_ms`` of a
  prompt that extends an s-token prompt the slot holds in its cache by q tokens. The server computes
  logits at the last of them only, so the point says logits = 1 and the fit adds the other rows'
  head. Beside the decode steps these give the fit the server's cost per sequence and pass
  (``seq_overhead_s``): at s=64 here a pass of q=5 took 26-31 ms where the decode step of B=5, the
  same rows, took 37-40 ms.
- A prefill (B, q=P, s=0) is the server's ``prompt_ms`` of a request of B samples of a P-token
  prompt (llama.cpp prefills it once for the B).
- A request's own cost beside its passes (``outside_costs``: HTTP, parsing, slot set-up) is its wall
  time less the server's spans (``request_overhead_s``, paid once per generation). Timing prefills
  as wall time less the span instead put that cost into the prefill passes, where the correction by
  rows carried it into every pass of 32 rows or more.

Prompts are random token ids. A prefill's are fresh, so no cache helps it; a decode step's prompt is
one per context, kept in the server's prompt cache between its requests (its prefill is not timed,
and at s=512 prefilling it for each of them took most of a quick calibration's time).
``ServerPassRunner`` has the calibration sweep's ``time_pass`` interface, so the sweep, its pairing
with an anchor and its resumable measurements file serve a server exactly as they serve the engine.
"""

from __future__ import annotations

import random
import statistics

from lattts.backend import GenerationRequest
from lattts.calibrate.grid import PassShape
from lattts.errors import UserError

DECODE_TOKENS = 24  # decode steps timed per point: the longer request's extra steps, centred on the point's s
LEAD_TOKENS = 8  # the shorter request: its span holds the start-up the difference removes
OUTSIDE_PROMPT_TOKENS, OUTSIDE_REPEATS = 64, 3
SAMPLED = 1.0  # temperature of every timed request: the whole vocabulary, as validation samples


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
        self.timer = f"span difference {LEAD_TOKENS}/{LEAD_TOKENS + decode_tokens} tokens, cached-prefix extension"
        self.rng = random.Random(seed)
        self._kept: dict[int, list[int]] = {}  # one prompt per length, reused so the server's cache holds it
        vocab = backend.info.launch.get("n_vocab") or 32000
        self.vocab = int(vocab)
        self.kernels = f"{backend.engine} {backend.info.version} at {backend.info.url}"

    def _prompt(self, n: int) -> list[int]:
        return [self.rng.randrange(100, self.vocab - 1) for _ in range(max(n, 1))]

    def _kept_prompt(self, n: int) -> list[int]:
        """The one prompt of ``n`` tokens this runner reuses (decode steps, cached prefixes)."""
        if n not in self._kept:  # not drawn again on every call: a prompt of s tokens is s draws
            self._kept[n] = self._prompt(n)
        return self._kept[n]

    def _once(self, point: PassShape) -> float:
        if point.query == 1 and point.context > 0:  # a decode step at context s
            length = max(point.context - LEAD_TOKENS - self.decode_tokens // 2, 1)
            prompt = self._kept_prompt(length)  # prefilled once, then cached
            short, long = (self._span_s(prompt, point.batch, n)
                           for n in (LEAD_TOKENS, LEAD_TOKENS + self.decode_tokens))
            return max(long - short, 1e-6) / self.decode_tokens
        if point.batch == 1 and point.context > 0 and point.logits == 1:  # q tokens on a cached prefix
            return self.backend.extension_ms(self._kept_prompt(point.context), self._prompt(point.query)) / 1e3
        if point.context == 0:  # a prefill of B x q tokens, on the server's clock
            return self._request(self._prompt(point.query), point.batch, 2)["prompt_ms"] / 1e3
        raise ValueError(f"a server cannot time a pass of B={point.batch} x q={point.query} on s={point.context} "
                         f"cached tokens with {point.logit_positions} logit positions")

    def _request(self, prompt: list[int], batch: int, tokens: int) -> dict:
        """One budget-forced request of ``batch`` samples: the server's prompt and generated spans (ms, the
        slowest sample's) and the wall time it took (s)."""
        request = GenerationRequest.forced(prompt, batch, tokens, temperature=SAMPLED, cached_prompt=True,
                                           seed=self.rng.randrange(1 << 30))
        result = self.backend.generate(request)
        timings = result.server["timings"]
        return {"prompt_ms": max(float(t.get("prompt_ms", 0.0)) for t in timings),
                "predicted_ms": max(float(t["predicted_ms"]) for t in timings), "wall_s": result.latency_s}

    def _span_s(self, prompt: list[int], batch: int, tokens: int) -> float:
        """The generated span of the slowest of ``batch`` samples of ``tokens`` tokens each (seconds)."""
        return self._request(prompt, batch, tokens)["predicted_ms"] / 1e3

    def outside_costs(self, repeats: int = OUTSIDE_REPEATS) -> tuple[dict, dict]:
        """A served generation's fixed cost beside its passes (HTTP, parsing, slot set-up) as the profile's
        ``request_overhead_s``: the wall time of a short request less the server's own prompt and
        generation spans, the median of ``repeats``; and the runs behind it. (Sampling is per sequence
        and step, inside the decode steps the fit reads: ``seq_overhead_s``.)"""
        runs = []
        for _ in range(repeats):
            r = self._request(self._prompt(OUTSIDE_PROMPT_TOKENS), 1, 2)
            runs.append({**r, "outside_s": r["wall_s"] - (r["prompt_ms"] + r["predicted_ms"]) / 1e3})
        fields = {"sample_call_s": 0.0, "sample_s_per_logit": 0.0,
                  "request_overhead_s": max(statistics.median(r["outside_s"] for r in runs), 0.0)}
        return fields, {"requests": runs, "method": "wall time less the server's prompt and generation spans"}

    def time_pass(self, point: PassShape, repeats: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            self._once(point)
        return [self._once(point) for _ in range(repeats)]


def server_grid(slots: int, context: int, quick: bool) -> list[PassShape]:
    """Decode steps over every B up to the slots (a server's kernels change with the rows) and over
    context; passes of q = gamma + 1 tokens on a cache (the verify shape, logits at the last: see the
    module docstring); prefills over prompt length (one per request: llama.cpp prefills a prompt once
    for its n samples)."""
    batches = [b for b in range(1, min(slots, 8) + 1) if not (quick and b == 7)] + [
        b for b in (12, 16, 24, 32) if b <= slots]
    decode = [(b, 64) for b in batches] + [(b, 512) for b in (1, 2, 4, 8) if b <= slots] + [(1, 1024)]
    # verify shapes: q = gamma + 1 up to gamma = 8, and the B x (gamma + 1) rows of batched rounds
    extend = [(q, 64) for q in (2, 3, 5, 9, 17, 33)] + [(q, 512) for q in (3, 5)]
    prefill = [32, 64, 128, 256, 512]
    if not quick:
        decode += [(b, 256) for b in batches] + [(1, 1800), (min(4, slots), 1024), (min(8, slots), 1024)]
        extend += [(q, s) for q in (2, 4, 7, 9, 17) for s in (256, 512)] + [(q, 1024) for q in (3, 5)]
        prefill += [16, 384, 1024]
    points = {PassShape(b, 1, s) for b, s in decode if s + DECODE_TOKENS < context}
    points |= {PassShape(1, q, s, logits=1) for q, s in extend if s + q + 2 < context}
    points |= {PassShape(1, p, 0) for p in prefill if p + 2 < context}
    return sorted(points)
