"""Models lattts knows by name, the paper's draft pairs, and draft/target compatibility.

Names and aliases resolve case-insensitively; anything that looks like a path resolves to the
``config.json`` it points at. The catalogue lives in ``catalog.json`` beside this file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lattts.errors import UserError, suggest
from lattts.models.spec import ModelSpec


@dataclass(frozen=True)
class CatalogEntry:
    """One named model: its shape file and where its numbers come from."""

    name: str
    hf_id: str
    config: str
    aliases: tuple[str, ...]
    base: str
    published_params: float | None
    params_source: str
    config_source: str
    draft_for: str | None = None


@dataclass(frozen=True)
class DraftPair:
    """A (target, draft) pair with a measured acceptance rate and its source."""

    target: str
    draft: str
    acceptance_rate: float
    source: str


def _package_file(*parts: str) -> Path:
    return Path(str(resources.files("lattts").joinpath(*parts)))


@lru_cache(maxsize=1)
def catalog() -> tuple[CatalogEntry, ...]:
    raw = json.loads(_package_file("models", "catalog.json").read_text(encoding="utf-8"))
    return tuple(CatalogEntry(
        name=m["name"], hf_id=m["hf_id"], config=m["config"], aliases=tuple(m.get("aliases", ())),
        base=m.get("base", ""), published_params=m.get("published_params"),
        params_source=m.get("params_source", ""), config_source=m.get("config_source", ""),
        draft_for=m.get("draft_for"),
    ) for m in raw["models"])


def _keys(entry: CatalogEntry) -> list[str]:
    short_id = entry.hf_id.split("/")[-1]
    return [k.lower() for k in (entry.name, entry.hf_id, short_id, *entry.aliases)]


def find_entry(name: str) -> CatalogEntry | None:
    """The catalogue entry whose name, Hugging Face id or alias equals ``name`` (any case)."""
    wanted = name.strip().lower()
    for entry in catalog():
        if wanted in _keys(entry):
            return entry
    return None


def _looks_like_path(name: str) -> bool:
    return name.endswith(".json") or "/" in name and Path(name).exists() or Path(name).is_dir()


def resolve_model(name: str) -> ModelSpec:
    """A ModelSpec for a catalogue name/alias, a path to a ``config.json`` (or its folder), or a GGUF file."""
    entry = find_entry(name)
    if entry is not None:
        spec = ModelSpec.from_file(_package_file("models", "configs", entry.config), name=entry.name)
        return spec
    if name.endswith(".gguf"):
        from lattts.models.gguf import read_gguf_spec

        return read_gguf_spec(name)
    if _looks_like_path(name):
        return ModelSpec.from_file(name)
    all_keys = [k for e in catalog() for k in (e.name, *e.aliases)]
    raise UserError(f"unknown model {name!r}{suggest(name, all_keys)}; "
                    f"run `lattts models` for the list, or pass a path to a config.json")


def self_draft_layers(name: str, target: ModelSpec) -> int | None:
    """N for a draft named 'self:N' (the target's first N layers and its head), None for other names."""
    if not name.lower().startswith("self:"):
        return None
    try:
        n = int(name.split(":", 1)[1])
    except ValueError:
        raise UserError(f"draft {name!r}: write self:N with N the number of target layers, e.g. self:4") from None
    if not 1 <= n < target.n_layers:
        raise UserError(f"self-draft needs 1..{target.n_layers - 1} of {target.name}'s {target.n_layers} layers, got {n}")
    return n


def resolve_draft(name: str, target: ModelSpec) -> ModelSpec:
    """A draft for ``target``: a model name/path, or 'self:N' (the target's first N layers)."""
    n = self_draft_layers(name, target)
    if n is not None:
        return target.first_layers(n)
    draft = resolve_model(name)
    check_draft_compatible(target, draft)
    return draft


def check_draft_compatible(target: ModelSpec, draft: ModelSpec) -> None:
    """Raise a UserError when ``draft`` cannot propose tokens ``target`` can verify."""
    if draft.is_draft_head:
        entry = find_entry(draft.name)
        if draft.vocab_size != target.vocab_size or draft.d_model != target.d_model:
            raise UserError(f"draft head {draft.name} maps to a {draft.vocab_size}-token vocabulary with width "
                            f"{draft.d_model}; target {target.name} has {target.vocab_size} tokens, width {target.d_model}")
        if entry and entry.draft_for and find_entry(target.name) and find_entry(target.name).name != entry.draft_for:
            raise UserError(f"draft head {draft.name} was trained for {entry.draft_for}, not {target.name}")
        return
    if draft.vocab_size != target.vocab_size:
        raise UserError(f"draft {draft.name} cannot draft for {target.name}: vocabularies differ "
                        f"({draft.vocab_size} vs {target.vocab_size} tokens); pick a draft from the same family")


@lru_cache(maxsize=1)
def draft_pairs() -> tuple[DraftPair, ...]:
    meta = json.loads(_package_file("models", "catalog.json").read_text(encoding="utf-8"))
    source = meta.get("acceptance_source", "")
    with _package_file("data", "paper", "acceptance_rates.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = []
    for row in rows:
        target, draft = find_entry(row["target"]), find_entry(row["draft"])
        pairs.append(DraftPair(target=target.name if target else row["target"],
                               draft=draft.name if draft else row["draft"],
                               acceptance_rate=float(row["acceptance_rate"]), source=source))
    return tuple(pairs)


def published_acceptance(target: ModelSpec, draft: ModelSpec) -> DraftPair | None:
    """The paper's acceptance rate for this (target, draft) pair, if it measured one."""
    t, d = find_entry(target.name), find_entry(draft.name)
    if t is None or d is None:
        return None
    for pair in draft_pairs():
        if pair.target == t.name and pair.draft == d.name:
            return pair
    return None

