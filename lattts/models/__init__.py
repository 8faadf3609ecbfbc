"""Model shapes: ``ModelSpec`` from a config.json, and the catalogue of named models."""

from lattts.models.registry import published_acceptance, resolve_draft, resolve_model
from lattts.models.spec import ModelSpec

__all__ = ["ModelSpec", "published_acceptance", "resolve_draft", "resolve_model"]
