"""lattts' own engine as a backend: a loaded model (and its draft) that answers GenerationRequests."""

from __future__ import annotations

from dataclasses import dataclass

from lattts.backend import GenerationRequest, GenerationResult
from lattts.engine.generate import Draft, Probe, generate
from lattts.engine.load import Loaded, load, load_draft
from lattts.models.spec import ModelSpec


@dataclass
class LocalEngine:
    """The in-process torch engine on one model; ``draft`` runs the requests with draft_len > 0."""

    loaded: Loaded
    draft: Draft | None = None

    @property
    def name(self) -> str:
        return f"lattts engine ({self.spec.name})"

    @property
    def spec(self) -> ModelSpec:
        return self.loaded.model.spec

    @property
    def draft_spec(self) -> ModelSpec | None:
        """The draft's shape: the target's first N layers for self:N, else the draft model's own."""
        if self.draft is None:
            return None
        return self.spec.first_layers(self.draft.layers) if self.draft.layers else self.draft.model.spec

    @property
    def stop_ids(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.loaded.tokenizer.eos_ids)))

    @property
    def weights(self) -> str:
        return self.loaded.weights

    @property
    def real_text(self) -> bool:
        return self.loaded.real_text

    @property
    def context_tokens(self) -> int:
        return self.spec.max_position

    def encode(self, text: str, chat: bool = False) -> list[int]:
        """Token ids of ``text``, wrapped in the model's chat template when ``chat``."""
        tok = self.loaded.tokenizer
        return tok.encode(tok.chat(text) if chat else text)

    def generate(self, request: GenerationRequest, probe: Probe | None = None) -> GenerationResult:
        return generate(self.loaded.model, request, self.draft, self.loaded.tokenizer.decode, probe=probe)


def load_engine(model: str, device: str = "cpu", dtype: str = "fp32", draft: str | None = None,
                seed: int = 0) -> LocalEngine:
    """Load ``model`` (see ``engine.load.load``) and, if named, its draft ('self:N' or a model)."""
    loaded = load(model, device, dtype, seed)
    return LocalEngine(loaded, load_draft(draft, loaded, device, dtype) if draft else None)
