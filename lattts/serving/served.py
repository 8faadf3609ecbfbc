"""A serving engine in the role lattts' engine plays for ``lattts measure``: text in and out
through the server's own tokenizer and chat template, generation through its client."""

from __future__ import annotations

from dataclasses import dataclass

from lattts.backend import GenerationRequest, GenerationResult, RequestError


@dataclass
class ServedEngine:
    """A server seen as an engine: ``encode`` (its tokenizer), ``generate``, and what it runs."""

    backend: object  # a ServingBackend

    @classmethod
    def at(cls, url: str, draft_len: int, engine: str | None = None) -> "ServedEngine":
        from lattts.serving.connect import connect

        backend = connect(url, engine)
        if backend.info.draft_len != draft_len:
            now = f"drafts {backend.info.draft_len} tokens per round" if backend.info.draft_len else "has no draft"
            raise RequestError("draft_len", draft_len, f"the server at {url} {now} (a launch setting); "
                                                        f"measure with its draft length or launch another server")
        return cls(backend)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def draft(self):
        return self.backend.info.draft if self.backend.info.draft_len else None

    @property
    def stop_ids(self) -> tuple[int, ...]:
        return ()

    @property
    def weights(self) -> str:
        info = self.backend.info
        return f"{info.model} as served by {info.engine} {info.version} at {info.url}"

    @property
    def real_text(self) -> bool:
        return True

    @property
    def context_tokens(self) -> int:
        return self.backend.info.context_tokens or 1 << 30

    def encode(self, text: str, chat: bool = False) -> list[int]:
        return self.backend.tokenize(text, chat)

    def generate(self, request: GenerationRequest, probe=None) -> GenerationResult:
        return self.backend.generate(request, probe)
