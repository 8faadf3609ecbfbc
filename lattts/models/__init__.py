"""Model shapes: ``ModelSpec`` from a config.json, and the catalogue of named models."""

from lattts.models.registry import published_acceptance, resolve_draft, resolve_model
from lattts.models.spec import DTYPE_BYTES, ModelSpec, canonical_dtype

__all__ = ["DTYPE_BYTES", "ModelSpec", "canonical_dtype", "published_acceptance", "resolve_draft", "resolve_model"]
