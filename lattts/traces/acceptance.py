"""Speculative-decoding acceptance measured on hardware, as an ``AcceptanceModel``.

Formats, detected from the file:

- JSONL, one row per generated sample (one branch), with ``draft_len`` (int >= 1, the draft length
  gamma) and ``accepted_per_round`` (list of ints in 0..draft_len: draft tokens accepted in each round,
  in order); ``lattts measure --draft`` writes these (``problem_id`` names the prompt). Rows at several
  draft lengths are each used at their own gamma.
- JSONL per-position logs (rows with ``acc_len``, possibly under per-proposer keys such as
  ``acc_eagle``): walked into rounds at each draft length up to the one they were logged with
  (``acceptance_formats``).
- One JSON object with ``draft_len`` and ``accepted_histogram`` (counts of rounds that accepted
  0, 1, ..., draft_len draft tokens), at the top level or under the key ``acceptance``; the output of
  ``lattts generate --json`` is read from its branches' rounds in order (``outputs[].accepted_per_round``).
- vLLM's Prometheus counters (``vllm:spec_decode_num_*``), one scrape or a scrape before and after.

Per draft length the model says where its rates come from (``AcceptanceModel.basis``): measured at
that gamma; derived (from rounds in order by run-chaining, or from a histogram by truncation); or
extrapolated beyond the largest gamma measured (the last conditional rate reused). Ordered rounds
of at least two branches also give the model's variation (``acceptance_fit``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lattts.errors import UserError
from lattts.simulator.speculative import AcceptanceModel, conditional_from_histogram
from lattts.traces import acceptance_formats as formats
from lattts.traces.acceptance_fit import Branch, equal_token_histogram, fit_variation, run_chain, walk

MAX_DRAFT_LEN = 16  # rates are derived or walked for draft lengths up to here
POSITIONS_FIT_GAMMA = 3  # per-position logs: the variation is fitted on their rounds at this draft length


@dataclass(frozen=True)
class AcceptanceMeasurement:
    """What a file recorded: rounds by accepted draft tokens per draft length (``histograms``), the
    draft length with the most rounds (``draft_len``, ``histogram``), and where the file had them,
    each branch's rounds in order."""

    draft_len: int
    histogram: tuple[int, ...]  # histogram[a] = rounds with a accepted draft tokens, a = 0..draft_len
    source: str
    rounds_dropped: int = 0  # rounds not used (none today: every draft length is used at its own)
    kind: str = "histogram"  # 'rounds', 'positions', 'histogram' or 'counters'
    histograms: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (gamma, histogram) per measured draft length
    branches: tuple[Branch, ...] = field(default=(), repr=False)
    logged_draft_len: int | None = None  # per-position logs: the draft length they were recorded with

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
        """Rates at every measured draft length (the largest is the model's own), derived ones below it,
        and the variation where branches were recorded in order."""
        measured = dict(self.histograms or ((self.draft_len, self.histogram),))
        taus = {g: [np.asarray(b.taus) for b in self.branches if b.draft_len == g] for g in measured}
        rates = {g: conditional_from_histogram(equal_token_histogram(taus[g], g) if taus[g] else h)
                 for g, h in measured.items()}
        top = max(measured)
        table = [(g, rates[g], "measured") for g in sorted(measured) if g != top]
        if self.kind == "rounds":  # below a measured gamma: run-chain the next larger one's rounds
            for g in range(1, top):
                if g not in measured:
                    src = min(m for m in measured if m > g)
                    walked = [walk(run_chain(t, src), g, start=0) for t in taus[src]]
                    table.append((g, conditional_from_histogram(equal_token_histogram(walked, g)), "derived"))
        fit_gamma = min(top, POSITIONS_FIT_GAMMA) if self.kind == "positions" else self.draft_len
        variation = fit_variation(list(self.branches), fit_gamma, rates[fit_gamma]) if self.branches else None
        hist = np.asarray(measured[top], float)
        tail = hist[::-1].cumsum()[::-1]
        return AcceptanceModel(conditional=rates[top], source=self.source, pooled_alpha=float(tail[1:].sum() / tail[:-1].sum()),
                               draft_len=top, by_draft_len=tuple(sorted(table)), variation=variation)

    def to_json(self) -> dict:
        m = self.model()
        gammas = range(1, max(8, m.draft_len) + 1)
        out = {"source": self.source, "kind": self.kind, "draft_len": self.draft_len, "rounds": self.rounds,
               "rounds_dropped": self.rounds_dropped, "alpha": m.alpha, "conditional_acceptance": list(m.conditional),
               "mean_accepted": self.mean_accepted, "tokens_per_round": self.tokens_per_round,
               "histogram": list(self.histogram),
               "per_draft_len": [{"draft_len": g, "tokens_per_round": m.tokens_per_round(g), "basis": m.basis(g)}
                                 for g in gammas]}
        v = m.variation
        out["variation"] = None if v is None else {
            "effect_sd": v.effect_sd, "shared_fraction": v.shared_fraction, "vif": v.vif,
            "position_offsets": dict(zip(map(str, v.bin_starts), v.bin_offsets)), "source": v.source}
        return out


def load_acceptance(path: str | Path) -> AcceptanceModel:
    """The acceptance model measured in ``path`` (any format)."""
    return read_acceptance(path).model()


def read_acceptance(path: str | Path, proposer: str | None = None, logged_draft_len: int | None = None) -> AcceptanceMeasurement:
    """The rounds recorded in ``path``, checked (UserError names the file, line and field). ``proposer``
    picks one of a per-position log's proposers; ``logged_draft_len`` is the draft length it was
    logged with (default: inferred from its largest entry)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"acceptance file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; expected JSON or JSONL acceptance measurements") from None
    if formats.is_prometheus(text):
        gamma, hist, how = formats.vllm_histogram(text, path)
        return AcceptanceMeasurement(gamma, tuple(hist), f"measured: {path} ({how})", kind="counters")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # several lines: JSONL
    outputs = whole.get("outputs") if isinstance(whole, dict) else None
    if isinstance(outputs, list) and outputs and all(isinstance(o, dict) and "accepted_per_round" in o for o in outputs):
        gamma = whole.get("draft_len")  # `lattts generate --json`: every branch's rounds in order
        return _from_rounds([{"draft_len": gamma, "accepted_per_round": o["accepted_per_round"], "tokens": o.get("tokens"),
                              "problem_id": "prompt"} for o in outputs], path)
    if isinstance(whole, dict) and ("accepted_histogram" in whole or "acceptance" in whole):
        return _from_histogram(whole.get("acceptance", whole), path)
    rows = formats.load_jsonl(text, path)
    if any("acc_len" in r or any(k.startswith(formats.PROPOSER_PREFIX) for k in r) for r in rows) and \
            not any("accepted_per_round" in r for r in rows):
        return _from_positions(rows, path, proposer, logged_draft_len)
    return _from_rounds(rows, path)


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


def _from_rounds(rows: list[dict], path: Path) -> AcceptanceMeasurement:
    branches: list[Branch] = []
    for n, row in enumerate(rows, 1):
        where = f"{path}:{n}"
        _require(row, ("draft_len", "accepted_per_round"), where)
        gamma = _draft_len(row["draft_len"], where)
        rounds = row["accepted_per_round"]
        if not isinstance(rounds, list):
            raise UserError(f"{where}: field 'accepted_per_round' must be a list of integers")
        for a in rounds:
            if not _is_count(a) or a > gamma:
                raise UserError(f"{where}: field 'accepted_per_round' has {a!r}; each round accepts 0..{gamma} "
                                f"draft tokens (draft_len {gamma})")
        tokens = row.get("tokens")
        if _is_count(tokens) and sum(rounds) + len(rounds) > tokens + gamma:
            raise UserError(formats.per_position_fix(path) + f" (line {n}: its rounds give {sum(rounds) + len(rounds)} "
                            f"tokens, the row has {tokens})")
        branches.append(Branch(str(row.get("problem_id", n)), gamma, tuple(a + 1 for a in rounds)))
    return from_branches(branches, f"measured: {path}", path)


def from_branches(branches: list[Branch], what: str, path: Path | None = None) -> AcceptanceMeasurement:
    """A measurement from branches' rounds in order (``what`` opens its source); refuses per-position data."""
    by_gamma: dict[int, list[list[int]]] = {}
    for b in branches:
        by_gamma.setdefault(b.draft_len, []).append([t - 1 for t in b.taus])
    hists = {g: np.bincount([a for r in rs for a in r], minlength=g + 1).tolist() for g, rs in by_gamma.items()}
    totals = {g: sum(h) for g, h in hists.items()}
    if not totals or max(totals.values()) == 0:
        raise UserError(f"{path or what}: no speculative rounds recorded (accepted_per_round lists are empty or missing)")
    for g, rs in by_gamma.items():
        if formats.looks_per_position(rs, g):
            raise UserError(formats.per_position_fix(path or what))
    gamma = max(totals, key=lambda g: (totals[g], g))
    others = ", ".join(f"{totals[g]} at {g}" for g in sorted(totals) if g != gamma)
    source = (f"{what} ({totals[gamma]} rounds at draft length {gamma}" + (f"; {others}, each used at "
              f"its own draft length" if others else "") + f"; {len(branches)} branch{'es' if len(branches) != 1 else ''} in order)")
    return AcceptanceMeasurement(draft_len=gamma, histogram=tuple(hists[gamma]), source=source, kind="rounds",
                                 histograms=tuple((g, tuple(h)) for g, h in sorted(hists.items()) if sum(h)),
                                 branches=tuple(b for b in branches if b.taus))


def _from_positions(rows: list[dict], path: Path, proposer: str | None, logged: int | None) -> AcceptanceMeasurement:
    lists, ids, key = formats.per_position_rows(rows, path, proposer)
    stated = {r.get("logged_draft_len") for r in rows} - {None}
    if logged is None and len(stated) == 1 and _is_count(next(iter(stated))):
        logged = next(iter(stated))  # as `lattts acceptance --out` writes it
    top = max(max(a) for a in lists if a)
    if logged is not None and top > logged + 1:
        raise UserError(f"{path}: an entry of {top} exceeds draft length {logged} + 1; give the draft length the log "
                        f"was recorded with (or leave it out to infer it from the largest entry)")
    K = logged if logged is not None else top - 1
    if K < 1:
        raise UserError(f"{path}: every entry is 1 (nothing was ever accepted); no draft length can be inferred")
    how = "given" if logged is not None else "inferred from the largest entry"
    gammas = range(1, min(K, MAX_DRAFT_LEN) + 1)
    branches = [Branch(i, g, tuple(walk(a, g))) for g in gammas for a, i in zip(lists, ids)]
    hists = {g: np.bincount([t - 1 for b in branches if b.draft_len == g for t in b.taus], minlength=g + 1).tolist()
             for g in gammas}
    source = (f"measured: per-position log {path} ({len(lists)} generations, {key}, logged at draft length {K}, {how}; "
              f"walked into rounds at draft lengths 1..{max(gammas)} from the second entry)")
    return AcceptanceMeasurement(draft_len=max(gammas), histogram=tuple(hists[max(gammas)]), source=source,
                                 kind="positions", histograms=tuple((g, tuple(h)) for g, h in hists.items()),
                                 branches=tuple(b for b in branches if b.taus), logged_draft_len=K)


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


def write_acceptance(m: AcceptanceMeasurement, path: Path, out: Path, proposer: str | None) -> Path:
    """What ``predict --acceptance`` reads for a file another tool wrote: one proposer's per-position
    rows (with the draft length they were logged at), or vLLM counters as a histogram object."""
    from lattts.paths import write_json_atomic

    out = Path(out)
    if m.kind == "counters":
        write_json_atomic(out, {"draft_len": m.draft_len, "accepted_histogram": list(m.histogram), "source": m.source})
        return out
    if m.kind != "positions":
        raise UserError(f"{path} is already a lattts acceptance file; pass it to predict --acceptance as it is")
    rows = formats.load_jsonl(Path(path).read_text(encoding="utf-8"), Path(path))
    lists, ids, _ = formats.per_position_rows(rows, Path(path), proposer)
    text = "".join(json.dumps({"id": i, "acc_len": a, "logged_draft_len": m.logged_draft_len}) + "\n" for a, i in zip(lists, ids))
    out.write_text(text, encoding="utf-8")
    return out
