"""llama.cpp's server (``llama-server``, or the same server embedded in PyPI ``xllamacpp``).

What this client relies on (checked against xllamacpp 2026.10.11549, llama.cpp's server of October
2026): ``POST /completion`` takes the prompt as token ids, ``n`` samples of one prompt (at most the
server's slots; the prompt is prefilled once and its KV copied to the children), ``n_predict`` and
``ignore_eos`` (so exactly L tokens), and returns one object per sample with its own ``timings``
(``prompt_ms``, ``predicted_ms``, ``predicted_per_token_ms`` = the decode step, and ``draft_n`` /
``draft_n_accepted`` when drafting), ``stop_type`` (limit, eos, word) and ``truncated``. ``/props``
gives the slots, the context per slot and the model file; ``/metrics`` (when enabled) counts drafts,
draft tokens and accepted tokens per draft position. The draft length is a launch setting: requests
cannot change it or switch drafting off, so a server runs one draft length (read from its
per-position counters).
"""

from __future__ import annotations

from lattts.backend import BranchOutput, GenerationRequest, GenerationResult, RequestError
from lattts.serving.base import ServerInfo, ServingBackend, counts_from_counters, prometheus
from lattts.serving.http import Http, ServerError, run

PREFIX = "llamacpp:"


class LlamaCppServer(ServingBackend):
    engine = "llama.cpp"
    _slot0_prefix: list[int] | None = None  # what ``extension_ms`` last left cached in slot 0

    def check(self, request: GenerationRequest) -> None:
        super().check(request)
        if 0 < request.min_tokens < request.max_tokens:
            raise RequestError("min_tokens", request.min_tokens,
                               "llama.cpp's server cannot ban end-of-sequence until a count: use min_tokens 0 "
                               "(stop freely) or min_tokens = max_tokens (budget forcing)")

    def body(self, request: GenerationRequest) -> tuple[str, dict]:
        prompt = list(request.prompts[0]) if request.shared_prompt else [list(p) for p in request.prompts]
        body = {
            "prompt": prompt, "n": request.branches if request.shared_prompt else 1,
            "n_predict": request.max_tokens, "ignore_eos": request.min_tokens >= request.max_tokens,
            "temperature": request.temperature, "top_p": request.top_p, "top_k": 0, "min_p": 0.0,
            # no prefix cache unless asked: every run pays its prefill, as a new question does
            "seed": request.seed, "cache_prompt": request.cached_prompt, "return_tokens": True, "stream": False,
        }
        if body["n"] > 1:
            # n samples run in the parent slot and the n-1 lowest free ones; parent 0 makes them slots
            # 0..n-1. Slots with a gap between them (parent 7, children 0..n-2, where a fresh server puts
            # them) cost llama.cpp a graph rebuild every step: "graphs reused" rose by one per request,
            # not per token, and a step took 20.5 ms against 15.8 at n=2, 33.6 against 26.4 at n=4.
            # lattts sends one request at a time, so pinning slot 0 never waits for another request.
            body["id_slot"] = 0
            self._slot0_prefix = None  # the parent slot's cache is this request's now
        return "/completion", body

    async def _tokenize(self, text: str, chat: bool) -> list[int]:
        if chat:
            r = await self.http.post("/apply-template", {"messages": [{"role": "user", "content": text}]})
            if r.status != 200:
                raise ServerError(f"{r.url} could not apply the chat template ({r.status}); pass raw token ids")
            text = r.json().get("prompt", text)
        r = await self.http.post("/tokenize", {"content": text, "add_special": True, "parse_special": True})
        if r.status != 200:
            raise ServerError(f"{r.url} could not tokenize ({r.status})")
        return [int(t) for t in r.json().get("tokens", [])]

    def extension_ms(self, prefix: list[int], extension: list[int]) -> float:
        """Milliseconds of the one pass that adds ``extension`` (q tokens, logits at the last) on top of
        ``prefix`` cached in slot 0: the server's ``prompt_ms`` of prefix + extension. The prefix is
        prefilled first where the slot does not hold it (another request took the slot since)."""
        return run(self._extension_ms(list(prefix), list(extension)))

    async def _extension_ms(self, prefix: list[int], extension: list[int]) -> float:
        body = {"n_predict": 1, "temperature": 0.0, "cache_prompt": True, "id_slot": 0, "return_tokens": False}
        for attempt in range(2):
            if attempt or self._slot0_prefix != prefix:
                await self._post_ok("/completion", {**body, "prompt": prefix})
                self._slot0_prefix = prefix
            answer = await self._post_ok("/completion", {**body, "prompt": prefix + extension})
            timings = answer.json().get("timings") or {}
            if int(timings.get("prompt_n", -1)) == len(extension):
                return float(timings["prompt_ms"])
        raise ServerError(f"the llama.cpp server at {self.info.url} did not reuse its cached prompt (it processed "
                          f"{timings.get('prompt_n')} tokens for {len(extension)} new); start it with prompt caching "
                          f"on (the default) and run nothing else on it while it is calibrated")

    async def counters(self) -> dict | None:
        if not self.info.launch.get("metrics"):
            return None
        r = await self.http.get("/metrics")
        return prometheus(r.text, PREFIX) if r.status == 200 else None

    def parse(self, request: GenerationRequest, answer, wall_s: float, counters: dict | None) -> GenerationResult:
        items = sorted(answer if isinstance(answer, list) else [answer], key=lambda a: a.get("index", 0))
        if len(items) != request.branches:
            raise ServerError(f"{self.info.url}/completion returned {len(items)} results for {request.branches} branches")
        outputs, timings = [], []
        for item in items:
            tokens = tuple(int(t) for t in item.get("tokens") or ())
            outputs.append(BranchOutput(tokens=tokens, text=item.get("content", ""),
                                        finished=item.get("stop_type") in ("eos", "word"),
                                        token_count=int(item.get("tokens_predicted", len(tokens)))))
            timings.append(item.get("timings") or {})
        counts = None
        if request.draft_len:
            counts = self._acceptance(request, timings, counters)
        longest = max(o.length for o in outputs)
        rounds = max(map(_rounds, timings)) if request.draft_len else longest - 1
        return GenerationResult(outputs=outputs, latency_s=wall_s, prompt_tokens=max(len(p) for p in request.prompts),
                                draft_len=request.draft_len, rounds=rounds, counts=counts,
                                server={"engine": self.engine, "timings": timings})

    def _acceptance(self, request: GenerationRequest, timings: list[dict], counters: dict | None):
        """Per-position counters over the request where the server exports them (a histogram), else the
        totals in each response's timings."""
        from lattts.backend import AcceptanceCounts

        source = f"measured by the llama.cpp server at {self.info.url}"
        if counters:
            counts = counts_from_counters(counters, PREFIX, request.draft_len, source + " (/metrics counters)")
            if counts is not None:
                return counts
        drafted = sum(int(t.get("draft_n", 0)) for t in timings)
        accepted = sum(int(t.get("draft_n_accepted", 0)) for t in timings)
        return AcceptanceCounts(draft_len=request.draft_len, rounds=sum(map(_rounds, timings)), drafted=drafted,
                                accepted=accepted, source=source + " (per-response timings)")


def _rounds(timings: dict) -> int:
    """Speculative rounds of one sample: each gives its accepted drafts plus one token, and the prefill
    gives the first, so rounds = tokens - 1 - accepted. Not draft_n / gamma: llama.cpp drafts at most
    the tokens left less one, so a run's last rounds draft fewer (measured: 32 tokens at gamma 4 with
    none accepted drafted 114 = 27 x 4 + 3 + 2 + 1 + 0 over 31 rounds)."""
    return max(int(timings.get("predicted_n", 0)) - 1 - int(timings.get("draft_n_accepted", 0)), 0)


async def server_info(http: Http, props: dict) -> ServerInfo:
    """What a llama.cpp server says about itself (its /props answer given), including its draft length."""
    settings = props.get("default_generation_settings") or {}
    metrics = (await http.get("/metrics")).status == 200
    slots = await http.get("/slots")  # /props shows default settings only; a slot says whether it drafts
    drafting = slots.status == 200 and any(s.get("speculative") for s in slots.json() if isinstance(s, dict))
    draft_len = 0
    if drafting:
        draft_len = await _draft_len(http) if metrics else 0
        if not draft_len:
            raise ServerError(f"the llama.cpp server at {http.base_url} drafts but its draft length cannot be read "
                              f"without /metrics; restart it with metrics enabled (--metrics)")
    spec_types = "draft" if drafting else "none"
    models = await http.get("/v1/models")
    meta = ((models.json().get("data") or [{}])[0].get("meta") or {}) if models.status == 200 else {}
    return ServerInfo(
        engine="llama.cpp", url=http.base_url, version=str(props.get("build_info", "unknown")),
        model=str(props.get("model_path") or props.get("model_alias") or ""),
        context_tokens=settings.get("n_ctx"), slots=props.get("total_slots"),
        draft=spec_types if draft_len else None, draft_len=draft_len,
        launch={"speculative.types": spec_types, "slots": props.get("total_slots"), "n_ctx_per_slot": settings.get("n_ctx"),
                "model_ftype": props.get("model_ftype"), "metrics": metrics,
                "n_vocab": meta.get("n_vocab"), "n_params": meta.get("n_params")})


async def _draft_len(http: Http) -> int:
    """The draft length, as the number of draft positions the per-position counters carry (a short
    greedy request fills them first if no request has drafted yet)."""
    def positions(text: str) -> int:
        names = [n for n in prometheus(text, PREFIX) if "accepted_tokens_per_pos" in n]
        return len(names)

    n = positions((await http.get("/metrics")).text)
    if n == 0:
        await http.post("/completion", {"prompt": [1, 2, 3, 4], "n_predict": 8, "temperature": 0.0,
                                        "ignore_eos": True, "cache_prompt": False})
        n = positions((await http.get("/metrics")).text)
    return n
