"""Servers of one model side by side, one per draft length: with llama.cpp, vLLM and SGLang the draft
length is a launch setting, so a validation over gamma 0..4 talks to one server per gamma."""

from __future__ import annotations

from lattts.backend import GenerationRequest, GenerationResult, RequestError
from lattts.errors import UserError


class ServerPool:
    """A ``Generator`` that sends each request to the server running its draft length."""

    def __init__(self, backends: list):
        if not backends:
            raise UserError("--server: give at least one server URL")
        by_gamma: dict[int, object] = {}
        for b in backends:
            if b.info.draft_len in by_gamma:
                raise UserError(f"{b.info.url} and {by_gamma[b.info.draft_len].info.url} both run draft length "
                                f"{b.info.draft_len}; give one server per draft length")
            by_gamma[b.info.draft_len] = b
        models = {b.info.model for b in backends}
        if len(models) > 1:
            raise UserError(f"the servers serve different models ({', '.join(sorted(models))}); validate one model")
        self.by_gamma = dict(sorted(by_gamma.items()))
        self.engine = backends[0].engine
        self.name = ", ".join(b.name for b in self.by_gamma.values())
        self.stop_ids: tuple[int, ...] = ()

    @property
    def gammas(self) -> tuple[int, ...]:
        return tuple(self.by_gamma)

    @property
    def plain(self):
        """The server without a draft (its passes are the target's own), or None."""
        return self.by_gamma.get(0)

    def first(self):
        return next(iter(self.by_gamma.values()))

    def generate(self, request: GenerationRequest, probe=None) -> GenerationResult:
        backend = self.by_gamma.get(request.draft_len)
        if backend is None:
            raise RequestError("draft_len", request.draft_len, f"no server here drafts {request.draft_len} tokens per "
                                                              f"round (these run {', '.join(map(str, self.gammas))})")
        return backend.generate(request, probe)
