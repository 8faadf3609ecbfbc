"""Which configurations a validation runs: the quick and full grids, or a product the user writes."""

from __future__ import annotations

from lattts import limits
from lattts.errors import UserError
from lattts.simulator.search import Config

# speculative runs are shorter: a 24-of-30-layer self-draft accepted ~30% of the time makes them the slow ones
QUICK_GRID = [Config(b, 0, 64) for b in (1, 4, 16)] + [Config(b, g, 48) for b in (1, 4) for g in (2, 4)] + [
    Config(1, 0, 128), Config(8, 0, 128), Config(8, 3, 48), Config(1, 3, 64), Config(2, 2, 64)]
FULL_GRID = [Config(b, g, L) for b in (1, 2, 4, 8, 16) for g in (0, 2, 4) for L in (32, 128, 512)]
# servers: B up to 8 slots, draft lengths 0, 2 and 4 (one server each: a launch setting), L 32-256
SERVER_QUICK_GRID = ([Config(b, 0, L) for b, L in ((1, 32), (2, 64), (4, 128), (8, 256), (1, 256), (8, 32))]
                     + [Config(b, g, L) for b, g, L in ((1, 2, 64), (4, 2, 32), (2, 4, 128), (8, 4, 64), (1, 4, 256),
                                                        (4, 2, 256))])
SERVER_FULL_GRID = [Config(b, g, L) for b in (1, 2, 4, 8) for g in (0, 2, 4) for L in (32, 128, 256)]


def parse_grid(text: str, servers: bool = False) -> list[Config]:
    """'quick', 'full' (the server grids with ``servers``), or 'B=1,2;g=0,2;L=32,128' (every combination)."""
    if text in ("quick", "full"):
        grids = {"quick": (QUICK_GRID, SERVER_QUICK_GRID), "full": (FULL_GRID, SERVER_FULL_GRID)}
        return list(grids[text][servers])
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
    for key, name, allowed in (("b", "B", limits.LIVE_BRANCHES), ("g", "g", limits.DRAFT_LEN), ("l", "L", limits.TOKENS)):
        bad = [v for v in parts[key] if v not in allowed]
        if bad:
            raise UserError(f"--grid {text!r}: {name}={bad[0]} is out of range: give {allowed.text()}")
    return [Config(b, g, L) for b in parts["b"] for g in parts["g"] for L in parts["l"]]
