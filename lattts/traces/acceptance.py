"""Speculative-decoding acceptance measured on hardware, as an ``AcceptanceModel``.

Two formats, detected from the file:

- JSONL, one row per generated sample, with ``draft_len`` (int >= 1, the draft length gamma) and
  ``accepted_per_round`` (list of ints in 0..draft_len: draft tokens accepted in each round);
  ``lattts measure --draft`` writes these. Other fields are ignored.
- One JSON object with ``draft_len`` and ``accepted_histogram`` (counts of rounds that accepted
  0, 1, ..., draft_len draft tokens), at the top level or under the key ``acceptance`` (as in the
  output of ``lattts generate --json``).

If JSONL rows use several draft lengths, the draft length with the most rounds is used and the
source says how many rounds at other lengths were left out: acceptance of position j is not
pooled across draft lengths, because with adaptive drafting it can depend on gamma.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lattts.errors import UserError
from lattts.simulator.speculative import AcceptanceModel


@dataclass(frozen=True)
class AcceptanceMeasurement:
    """Rounds of one draft length, counted by how many draft tokens were accepted."""

    draft_len: int
    histogram: tuple[int, ...]  # histogram[a] = rounds with a accepted draft tokens, a = 0..draft_len
    source: str
    rounds_dropped: int = 0  # rounds at other draft lengths, not used

    @property
    def rounds(self) -> int:
        return sum(self.histogram)

    @property
    def mean_accepted(self) -> float:
        """Mean draft tokens accepted per round."""
        return float(np.dot(np.arange(len(self.histogram)), self.histogram) / self.rounds)

    @property
    def tokens_per_round(self) -> float:
        """Mean tokens produced per verification round: accepted draft tokens plus the target's one."""
        return self.mean_accepted + 1.0

    def model(self) -> AcceptanceModel:
        return AcceptanceModel.from_histogram(list(self.histogram), self.source)

    def to_json(self) -> dict:
        m = self.model()
        return {"source": self.source, "draft_len": self.draft_len, "rounds": self.rounds,
                "rounds_dropped": self.rounds_dropped, "alpha": m.alpha,
                "conditional_acceptance": list(m.conditional), "mean_accepted": self.mean_accepted,
                "tokens_per_round": self.tokens_per_round, "histogram": list(self.histogram)}


def load_acceptance(path: str | Path) -> AcceptanceModel:
    """The acceptance model measured in ``path`` (either format)."""
    return read_acceptance(path).model()


def read_acceptance(path: str | Path) -> AcceptanceMeasurement:
    """The rounds recorded in ``path``, checked (UserError names the file, line and field)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"acceptance file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; expected JSON or JSONL acceptance measurements") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # several lines: JSONL
    if isinstance(whole, dict) and ("accepted_histogram" in whole or "acceptance" in whole):
        return _from_histogram(whole.get("acceptance", whole), path)
    return _from_rounds(path, text)


def _from_histogram(obj: Any, path: Path) -> AcceptanceMeasurement:
    where = f"{path}"
    if not isinstance(obj, dict):
        raise UserError(f"{where}: field 'acceptance' must be an object with draft_len and accepted_histogram")
    _require(obj, ("draft_len", "accepted_histogram"), where)
    gamma = _draft_len(obj["draft_len"], where)
    hist = obj["accepted_histogram"]
    if not isinstance(hist, list) or not all(_is_count(h) for h in hist):
        raise UserError(f"{where}: field 'accepted_histogram' must be a list of non-negative integers")
    if len(hist) != gamma + 1:
        raise UserError(f"{where}: field 'accepted_histogram' has {len(hist)} counts; draft_len {gamma} "
                        f"needs {gamma + 1} (0..{gamma} accepted)")
    if sum(hist) == 0:
        raise UserError(f"{where}: field 'accepted_histogram' counts no rounds")
    return AcceptanceMeasurement(draft_len=gamma, histogram=tuple(hist),
                                 source=f"measured: {path} ({sum(hist)} rounds at draft length {gamma})")


def _from_rounds(path: Path, text: str) -> AcceptanceMeasurement:
    by_gamma: dict[int, Counter] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.msg}); expected JSONL rows with draft_len and "
                            f"accepted_per_round, or one JSON object with draft_len and accepted_histogram") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object with draft_len and accepted_per_round")
        _require(row, ("draft_len", "accepted_per_round"), where)
        gamma = _draft_len(row["draft_len"], where)
        rounds = row["accepted_per_round"]
        if not isinstance(rounds, list):
            raise UserError(f"{where}: field 'accepted_per_round' must be a list of integers")
        for a in rounds:
            if not _is_count(a) or a > gamma:
                raise UserError(f"{where}: field 'accepted_per_round' has {a!r}; each round accepts 0..{gamma} "
                                f"draft tokens (draft_len {gamma})")
        by_gamma.setdefault(gamma, Counter()).update(rounds)
    totals = {g: sum(c.values()) for g, c in by_gamma.items()}
    if not totals or max(totals.values()) == 0:
        raise UserError(f"{path}: no speculative rounds recorded (accepted_per_round lists are empty or missing)")
    gamma = max(totals, key=lambda g: (totals[g], g))
    dropped = sum(totals.values()) - totals[gamma]
    source = f"measured: {path} ({totals[gamma]} rounds at draft length {gamma}"
    if dropped:
        others = ", ".join(f"{totals[g]} at {g}" for g in sorted(totals) if g != gamma)
        source += f"; left out {others}"
    hist = tuple(by_gamma[gamma].get(a, 0) for a in range(gamma + 1))
    return AcceptanceMeasurement(draft_len=gamma, histogram=hist, source=source + ")", rounds_dropped=dropped)


def _require(obj: dict, keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in obj:
            raise UserError(f"{where}: missing field {key!r} (expected {' and '.join(keys)})")


def _draft_len(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: field 'draft_len' must be an integer >= 1, got {value!r}")
    return value


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
