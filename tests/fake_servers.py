"""Loopback stand-ins for vLLM's and SGLang's servers, answering in the shapes their documentation
gives (vLLM: /version, /v1/models, /v1/completions, /tokenize, Prometheus /metrics with the
spec_decode counters; SGLang: /get_server_info, /generate with meta_info.spec_verify_ct). Each
speculative round of a fake accepts exactly ``accepted`` draft tokens, so what a client reads back
is known exactly."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeConfig:
    engine: str  # 'vllm' or 'sglang'
    model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    draft_len: int = 0
    accepted: int = 1  # draft tokens accepted per round
    stop_early_at: int | None = None  # finish a choice with "stop" after this many tokens
    slots: int = 8
    context: int = 4096
    counters: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)


def _rounds(tokens: int, cfg: FakeConfig) -> int:
    """Rounds one branch needs for ``tokens`` (the first comes from the prefill)."""
    return math.ceil(max(tokens - 1, 0) / (cfg.accepted + 1))


class _Handler(BaseHTTPRequestHandler):
    cfg: FakeConfig

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        cfg = self.cfg
        if cfg.engine == "vllm" and self.path == "/version":
            return self._send(200, {"version": "0.11.0"})
        if cfg.engine == "vllm" and self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": cfg.model, "object": "model", "root": cfg.model,
                                                                "max_model_len": cfg.context}]})
        if cfg.engine == "vllm" and self.path == "/metrics":
            lines = [f"{k} {v}" for k, v in cfg.counters.items()]
            return self._send(200, "# HELP vllm metrics\n" + "\n".join(lines) + "\n", "text/plain")
        if cfg.engine == "sglang" and self.path == "/get_server_info":
            spec = {"speculative_algorithm": "STANDALONE", "speculative_num_steps": cfg.draft_len,
                    "speculative_eagle_topk": 1, "speculative_num_draft_tokens": cfg.draft_len + 1,
                    "speculative_draft_model_path": "Qwen/Qwen2.5-0.5B-Instruct"} if cfg.draft_len else {
                        "speculative_algorithm": None}
            return self._send(200, {"model_path": cfg.model, "version": "0.5.4", "context_length": cfg.context,
                                    "max_running_requests": cfg.slots, "tp_size": 1, **spec})
        return self._send(404, {"error": {"message": "Not Found", "code": 404}})

    def do_POST(self):
        cfg = self.cfg
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        cfg.requests.append((self.path, body))
        if cfg.engine == "vllm" and self.path == "/v1/completions":
            return self._send(200, self._vllm(body))
        if cfg.engine == "vllm" and self.path == "/tokenize":
            text = body.get("prompt") or body["messages"][0]["content"]
            return self._send(200, {"tokens": [100 + i for i in range(len(text.split()))], "count": len(text.split())})
        if cfg.engine == "sglang" and self.path == "/generate":
            return self._send(200, self._sglang(body))
        return self._send(404, {"error": {"message": "Not Found", "code": 404}})

    def _length(self, max_tokens: int) -> int:
        stop = self.cfg.stop_early_at
        return min(max_tokens, stop) if stop is not None else max_tokens

    def _count(self, branches: int, tokens: int) -> int:
        cfg = self.cfg
        rounds = _rounds(tokens, cfg) * branches
        if cfg.draft_len:
            c = cfg.counters
            for name, add in (("num_drafts", rounds), ("num_draft_tokens", rounds * cfg.draft_len),
                              ("num_accepted_tokens", rounds * cfg.accepted)):
                key = f"vllm:spec_decode_{name}_total"
                c[key] = c.get(key, 0) + add
            for k in range(cfg.draft_len):
                key = f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{position="{k}"}}'
                c[key] = c.get(key, 0) + (rounds if k < cfg.accepted else 0)
        return rounds

    def _vllm(self, body: dict) -> dict:
        n, L = body.get("n", 1), body["max_tokens"]
        tokens = self._length(L)
        self._count(n, tokens)
        choices = [{"index": i, "text": "x " * tokens, "token_ids": list(range(tokens)), "logprobs": None,
                    "finish_reason": "length" if tokens == L else "stop"} for i in range(n)]
        return {"id": "cmpl-1", "object": "text_completion", "model": self.cfg.model, "choices": choices,
                "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": n * tokens}}

    def _sglang(self, body: dict) -> list:
        sp = body["sampling_params"]
        n, L = sp.get("n", 1), sp["max_new_tokens"]
        tokens = self._length(L)
        verify = _rounds(tokens, self.cfg) if self.cfg.draft_len else 0
        return [{"text": "x " * tokens, "output_ids": list(range(tokens)), "meta_info": {
            "prompt_tokens": len(body["input_ids"]), "completion_tokens": tokens,
            "finish_reason": {"type": "length" if tokens == L else "stop", "length": tokens},
            **({"spec_verify_ct": verify} if self.cfg.draft_len else {})}} for _ in range(n)]


class FakeServer:
    """A fake serving engine on a free loopback port; use as a context manager."""

    def __init__(self, cfg: FakeConfig):
        self.cfg = cfg
        handler = type("Handler", (_Handler,), {"cfg": cfg})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FakeServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
