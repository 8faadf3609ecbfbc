"""What every serving-engine client shares: what the server says about itself (``ServerInfo``), the
checks of a request against it, and the ``Generator`` interface (``generate(GenerationRequest)``)
that validate, measure and calibrate use exactly as they use lattts' own engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lattts.backend import GenerationRequest, GenerationResult, RequestError
from lattts.serving.http import Http, ServerError, run


@dataclass(frozen=True)
class ServerInfo:
    """A running server as it describes itself.

    ``draft_len`` is the draft length the server runs when it was launched with a draft (0 = none);
    ``draft_len_per_request`` says whether a request can choose another (none of the three engines
    this version knows does). ``slots`` is how many sequences one request may ask for (None: not
    limited by the server's API). ``launch`` keeps the settings the server reported, for provenance.
    """

    engine: str  # 'llama.cpp', 'vllm' or 'sglang'
    url: str
    version: str
    model: str  # what the server serves: a path or a model id
    context_tokens: int | None  # per sequence
    slots: int | None
    draft: str | None = None
    draft_len: int = 0
    draft_len_per_request: bool = False
    launch: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"engine": self.engine, "url": self.url, "version": self.version, "model": self.model,
                "context_tokens": self.context_tokens, "slots": self.slots, "draft": self.draft,
                "draft_len": self.draft_len, "launch": self.launch}


class ServingBackend:
    """A client of one running server; subclasses say how to ask and how to read the answer."""

    engine = ""

    def __init__(self, http: Http, info: ServerInfo):
        self.http, self.info = http, info
        self.name = f"{info.engine} at {info.url}"
        self.stop_ids: tuple[int, ...] = ()  # the server knows its end-of-sequence tokens

    # ---- what subclasses provide ------------------------------------------------------------
    def body(self, request: GenerationRequest) -> tuple[str, dict]:
        """(path, JSON body) of the request."""
        raise NotImplementedError

    def parse(self, request: GenerationRequest, answer, wall_s: float, counters: dict | None) -> GenerationResult:
        """The result from the server's answer; ``counters`` is the change in its speculative counters
        over the request (None where it has none)."""
        raise NotImplementedError

    async def counters(self) -> dict | None:
        """The server's speculative counters now (for deltas around a run), where it exports them."""
        return None

    async def _tokenize(self, text: str, chat: bool) -> list[int]:
        raise ServerError(f"the {self.info.engine} client cannot tokenize through the server; give token ids")

    def tokenize(self, text: str, chat: bool = True) -> list[int]:
        """The server's token ids of ``text`` (in its chat template when ``chat``)."""
        return run(self._tokenize(text, chat))

    # ---- shared ------------------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        """RequestError for what this server cannot run as asked (before anything is sent)."""
        request.check()
        info = self.info
        if info.slots is not None and request.branches > info.slots:
            raise RequestError("branches", request.branches,
                               f"more than the {info.slots} slots of the {info.engine} server at {info.url}; "
                               f"restart it with more slots (lattts serve --slots {request.branches})")
        if request.draft_len != info.draft_len and not info.draft_len_per_request:
            now = f"drafts {info.draft_len} tokens per round" if info.draft_len else "runs without a draft"
            raise RequestError("draft_len", request.draft_len,
                               f"the {info.engine} server at {info.url} {now}, set when it was launched; "
                               f"ask for draft_len {info.draft_len}, or launch a server for this one")
        if request.continuation is not None:
            raise RequestError("continuation", "(given)", f"{info.engine} has no continuation on early stops; "
                                                          f"use budget forcing (min_tokens = max_tokens)")
        if info.context_tokens is not None:
            need = max(len(p) for p in request.prompts) + request.max_tokens + request.draft_len + 1
            if need > info.context_tokens:
                raise RequestError("max_tokens", request.max_tokens,
                                   f"with the prompt ({max(len(p) for p in request.prompts)} tokens) needs {need} "
                                   f"positions, more than the {info.context_tokens} per sequence the server has; "
                                   f"lower it or restart the server with a larger context")

    def generate(self, request: GenerationRequest, probe=None) -> GenerationResult:
        """Send the request and read the answer; ``probe`` cannot run inside a server's generation and
        is ignored (validation re-times its anchor between runs instead)."""
        self.check(request)
        return run(self._generate(request))

    async def _post_ok(self, path: str, body: dict):
        """The server's answer to ``body`` at ``path``; a ServerError with its message if it refused."""
        response = await self.http.post(path, body)
        if response.status != 200:
            raise ServerError(f"{self.info.engine} at {response.url} refused the request ({response.status}: "
                              f"{error_message(response.text)})")
        return response

    async def _generate(self, request: GenerationRequest) -> GenerationResult:
        path, body = self.body(request)
        before = await self.counters() if request.draft_len else None
        start = time.perf_counter()
        response = await self._post_ok(path, body)
        wall = time.perf_counter() - start
        counters = None
        if before is not None:
            after = await self.counters()
            counters = delta(after, before) if after is not None else None
        result = self.parse(request, response.json(), wall, counters)
        check_lengths(self.info, request, result)
        return result


def error_message(text: str) -> str:
    """The message of an error answer ({"error": {"message": ...}} or {"message": ...}), else its start."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:160]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err)[:300]
    return str(err)[:300]


def check_lengths(info: ServerInfo, request: GenerationRequest, result: GenerationResult) -> None:
    """A server that stopped a branch before ``min_tokens`` broke budget forcing: say why and how to fix it."""
    short = [o for o in result.outputs if o.length < request.min_tokens]
    if short:
        o = short[0]
        why = "an end-of-sequence token" if o.finished else "its context limit"
        raise ServerError(f"the {info.engine} server at {info.url} stopped a branch after {o.length} of "
                          f"{request.min_tokens} forced tokens ({why}); give it a larger context per sequence "
                          f"(fewer slots or a larger -c), or lower max_tokens")


def delta(after: dict, before: dict | None) -> dict:
    return {k: v - (before or {}).get(k, 0.0) for k, v in after.items()}


def prometheus(text: str, prefix: str) -> dict[str, float]:
    """Sample lines of a Prometheus text exposition whose name starts with ``prefix``: {name{labels}: value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            continue
    return out


def counts_from_counters(d: dict, prefix: str, draft_len: int, source: str):
    """AcceptanceCounts from a delta of the speculative counters vLLM and llama.cpp export: drafts
    (rounds), draft tokens, accepted tokens, and accepted tokens per draft position (position k counts
    the rounds that accepted at least k + 1 tokens, so the histogram follows)."""
    from lattts.backend import AcceptanceCounts

    rounds = int(round(d.get(f"{prefix}spec_decode_num_drafts_total", 0.0)))
    if rounds <= 0:
        return None
    tails = [rounds] + [int(round(d.get(f'{prefix}spec_decode_num_accepted_tokens_per_pos_total{{position="{k}"}}', -1)))
                        for k in range(draft_len)]
    histogram = None
    if all(t >= 0 for t in tails) and all(a >= b for a, b in zip(tails, tails[1:])):
        histogram = tuple(tails[a] - (tails[a + 1] if a < draft_len else 0) for a in range(draft_len + 1))
    return AcceptanceCounts(draft_len=draft_len, rounds=rounds,
                            drafted=int(round(d.get(f"{prefix}spec_decode_num_draft_tokens_total", 0.0))),
                            accepted=int(round(d.get(f"{prefix}spec_decode_num_accepted_tokens_total", 0.0))),
                            histogram=histogram, source=source)
