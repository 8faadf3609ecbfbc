"""vLLM's OpenAI-compatible server (``vllm serve``), from its documented interface.

``POST /v1/completions`` takes the prompt as token ids, ``n`` samples, ``max_tokens`` with
``min_tokens`` / ``ignore_eos`` (budget forcing) and returns ``choices`` (``text``,
``finish_reason``; ``token_ids`` where the version returns them). Speculative decoding is a launch
setting (``--speculative-config``); acceptance comes from the Prometheus counters
``vllm:spec_decode_num_drafts_total``, ``..._num_draft_tokens_total``, ``..._num_accepted_tokens_total``
and ``..._num_accepted_tokens_per_pos_total{position}``, taken as deltas around a request. vLLM
suppresses per-request metrics when n > 1, so the wall time of the request is what is timed.
"""

from __future__ import annotations

from lattts.backend import BranchOutput, GenerationRequest, GenerationResult
from lattts.serving.base import ServerInfo, ServingBackend, counts_from_counters, prometheus
from lattts.serving.http import Http, ServerError

PREFIX = "vllm:"


class VllmServer(ServingBackend):
    engine = "vllm"

    def body(self, request: GenerationRequest) -> tuple[str, dict]:
        prompt = list(request.prompts[0]) if request.shared_prompt else [list(p) for p in request.prompts]
        return "/v1/completions", {
            "model": self.info.model, "prompt": prompt, "n": request.branches if request.shared_prompt else 1,
            "max_tokens": request.max_tokens, "min_tokens": request.min_tokens,
            "ignore_eos": request.min_tokens >= request.max_tokens, "temperature": request.temperature,
            "top_p": request.top_p, "seed": request.seed, "return_token_ids": True,
        }

    async def _tokenize(self, text: str, chat: bool) -> list[int]:
        body = {"model": self.info.model}
        body |= {"messages": [{"role": "user", "content": text}], "add_generation_prompt": True} if chat else {"prompt": text}
        r = await self.http.post("/tokenize", body)
        if r.status != 200:
            raise ServerError(f"{r.url} could not tokenize ({r.status})")
        return [int(t) for t in r.json().get("tokens", [])]

    async def counters(self) -> dict | None:
        r = await self.http.get("/metrics")
        return prometheus(r.text, PREFIX) if r.status == 200 else None

    def parse(self, request: GenerationRequest, answer, wall_s: float, counters: dict | None) -> GenerationResult:
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != request.branches:
            raise ServerError(f"{self.info.url}/v1/completions returned {len(choices)} choices for {request.branches} branches")
        outputs = []
        for c in choices:
            ids = tuple(int(t) for t in c.get("token_ids") or ())
            # vLLM refuses prompt + max_tokens beyond its context up front, so "length" means max_tokens
            count = len(ids) if ids else (request.max_tokens if c.get("finish_reason") == "length" else None)
            if count is None:
                raise ServerError(f"{self.info.url}: a choice stopped ({c.get('finish_reason')}) without token ids, "
                                  f"so its length is unknown; budget-force it (min_tokens = max_tokens)")
            outputs.append(BranchOutput(tokens=ids, text=c.get("text", ""), finished=c.get("finish_reason") == "stop",
                                        token_count=count))
        counts = None
        if request.draft_len and counters:
            counts = counts_from_counters(counters, PREFIX, request.draft_len,
                                          f"measured by the vLLM server at {self.info.url} (/metrics counters)")
        rounds = max(o.length for o in outputs) - 1
        if counts is not None:
            rounds = -(-counts.rounds // request.branches)  # per branch, if they ran alike
        return GenerationResult(outputs=outputs, latency_s=wall_s, prompt_tokens=max(len(p) for p in request.prompts),
                                draft_len=request.draft_len, rounds=rounds, counts=counts,
                                server={"engine": self.engine, "usage": answer.get("usage")})


async def server_info(http: Http, version: dict) -> ServerInfo:
    """What a vLLM server says about itself: its version, the model it serves, its context, and its
    draft length (the number of draft positions its per-position counters carry)."""
    models = (await http.get("/v1/models")).json()
    data = (models.get("data") or [{}])[0]
    metrics = prometheus((await http.get("/metrics")).text, PREFIX)
    draft_len = len([n for n in metrics if "accepted_tokens_per_pos" in n])
    spec = any(n.startswith(f"{PREFIX}spec_decode_num_drafts") for n in metrics)
    if spec and not draft_len:
        raise ServerError(f"the vLLM server at {http.base_url} drafts but has not counted any draft position yet; "
                          f"send it one request first, or pass its num_speculative_tokens")
    return ServerInfo(engine="vllm", url=http.base_url, version=str(version.get("version", "unknown")),
                      model=str(data.get("id", "")), context_tokens=data.get("max_model_len"), slots=None,
                      draft="speculative (see the server's --speculative-config)" if draft_len else None,
                      draft_len=draft_len, launch={"max_model_len": data.get("max_model_len"), "root": data.get("root")})
