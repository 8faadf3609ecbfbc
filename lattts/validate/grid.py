"""Which configurations a validation runs: the quick and full grids, or a product the user writes."""

from __future__ import annotations

from lattts.errors import UserError
from lattts.simulator.search import Config

# speculative runs are shorter: a 24-of-30-layer self-draft accepted ~30% of the time makes them the slow ones
QUICK_GRID = [Config(b, 0, 64) for b in (1, 4, 16)] + [Config(b, g, 48) for b in (1, 4) for g in (2, 4)] + [
    Config(1, 0, 128), Config(8, 0, 128), Config(8, 3, 48), Config(1, 3, 64), Config(2, 2, 64)]
FULL_GRID = [Config(b, g, L) for b in (1, 2, 4, 8, 16) for g in (0, 2, 4) for L in (32, 128, 512)]


def parse_grid(text: str) -> list[Config]:
    """'quick', 'full', or 'B=1,2;g=0,2;L=32,128' (every combination)."""
    if text in ("quick", "full"):
        return list(QUICK_GRID if text == "quick" else FULL_GRID)
    usage = f"--grid {text!r}: write quick, full, or B=1,2;g=0,2;L=32,128 (every combination is run)"
    parts = {}
    for chunk in text.split(";"):
        key, _, values = chunk.partition("=")
        key = {"gamma": "g"}.get(key.strip().lower(), key.strip().lower())
        try:
            parts[key] = sorted({int(v) for v in values.split(",") if v.strip()})
        except ValueError:
            raise UserError(usage) from None
    if set(parts) != {"b", "g", "l"} or not all(parts.values()):
        raise UserError(usage)
    if min(parts["b"]) < 1 or min(parts["l"]) < 1 or min(parts["g"]) < 0:
        raise UserError(f"--grid {text!r}: B and L must be at least 1, g at least 0")
    return [Config(b, g, L) for b in parts["b"] for g in parts["g"] for L in parts["l"]]
