"""SGLang's native server (``python -m sglang.launch_server``), from its documented interface.

``POST /generate`` takes ``input_ids`` and ``sampling_params`` (``n``, ``max_new_tokens``,
``min_new_tokens``, ``ignore_eos``, ``temperature``, ``top_p``) and returns one object per sample
with ``text``, ``output_ids`` and ``meta_info`` (``completion_tokens``, ``finish_reason``, and
``spec_verify_ct``, the verify passes of a speculative request: tokens per round = completion
tokens / verify passes). ``/get_server_info`` reports the launch settings, speculative ones
included (``speculative_algorithm``, ``speculative_num_steps``, ``speculative_eagle_topk``).
"""

from __future__ import annotations

from lattts.backend import AcceptanceCounts, BranchOutput, GenerationRequest, GenerationResult
from lattts.serving.base import ServerInfo, ServingBackend
from lattts.serving.http import Http, ServerError


class SglangServer(ServingBackend):
    engine = "sglang"

    def body(self, request: GenerationRequest) -> tuple[str, dict]:
        ids = list(request.prompts[0]) if request.shared_prompt else [list(p) for p in request.prompts]
        return "/generate", {"input_ids": ids, "sampling_params": {
            "n": request.branches if request.shared_prompt else 1, "max_new_tokens": request.max_tokens,
            "min_new_tokens": request.min_tokens, "ignore_eos": request.min_tokens >= request.max_tokens,
            "temperature": request.temperature, "top_p": request.top_p}}

    def parse(self, request: GenerationRequest, answer, wall_s: float, counters: dict | None) -> GenerationResult:
        items = answer if isinstance(answer, list) else [answer]
        if len(items) != request.branches:
            raise ServerError(f"{self.info.url}/generate returned {len(items)} results for {request.branches} branches")
        outputs, metas = [], []
        for item in items:
            meta = item.get("meta_info") or {}
            ids = tuple(int(t) for t in item.get("output_ids") or ())
            reason = meta.get("finish_reason") or {}
            outputs.append(BranchOutput(tokens=ids, text=item.get("text", ""),
                                        finished=(reason.get("type") if isinstance(reason, dict) else reason) == "stop",
                                        token_count=int(meta.get("completion_tokens", len(ids)))))
            metas.append(meta)
        counts = None
        verify = [int(m.get("spec_verify_ct", 0)) for m in metas]
        if request.draft_len and sum(verify):
            produced = sum(o.length for o in outputs)
            # each round verifies once and yields accepted + 1 tokens; the first token comes from prefill
            accepted = max(produced - len(outputs) - sum(verify), 0)
            counts = AcceptanceCounts(draft_len=request.draft_len, rounds=sum(verify),
                                      drafted=sum(verify) * request.draft_len, accepted=accepted,
                                      source=f"measured by the SGLang server at {self.info.url} (spec_verify_ct)")
        rounds = max(verify) if counts else max(o.length for o in outputs) - 1
        return GenerationResult(outputs=outputs, latency_s=wall_s, prompt_tokens=max(len(p) for p in request.prompts),
                                draft_len=request.draft_len, rounds=rounds, counts=counts,
                                server={"engine": self.engine, "meta_info": metas})


def server_info(http: Http, info: dict) -> ServerInfo:
    """What an SGLang server says about itself (its /get_server_info answer given)."""
    algorithm = info.get("speculative_algorithm")
    topk = info.get("speculative_eagle_topk") or 1
    draft_len = int(info.get("speculative_num_steps") or 0) if algorithm else 0
    if algorithm and topk != 1:
        raise ServerError(f"the SGLang server at {http.base_url} drafts a tree (speculative_eagle_topk {topk}); lattts "
                          f"models chains only: launch it with --speculative-eagle-topk 1")
    return ServerInfo(
        engine="sglang", url=http.base_url, version=str(info.get("version", "unknown")),
        model=str(info.get("model_path", "")), context_tokens=info.get("context_length"),
        slots=info.get("max_running_requests"), draft=info.get("speculative_draft_model_path") if algorithm else None,
        draft_len=draft_len, launch={k: info.get(k) for k in ("speculative_algorithm", "speculative_num_steps",
                                                              "speculative_eagle_topk", "speculative_num_draft_tokens",
                                                              "tp_size", "max_running_requests", "context_length")})
