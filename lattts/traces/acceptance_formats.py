"""Acceptance as other tools write it, and the check that keeps one kind from being read as another.

- **Per-position logs** (speculative-decoding benchmarks such as SpecDecode-Bench): JSONL, one row
  per generation, with a list ``acc_len`` holding one entry PER GENERATED POSITION: the accepted
  length (bonus token included) of a round starting there, so one accepted run of k reads k, k-1,
  ..., 1. The list sits at the top level or under one key per proposer (``acc_eagle: {acc_len}``,
  ``acc_ngram: {acc_len}``). Its first entry is the prefill's token (no draft exists for it). The draft
  length the log was recorded with caps the entries at gamma + 1; given, or inferred from the largest.
- **vLLM's Prometheus counters** (``vllm/v1/spec_decode/metrics.py``): per draft, num_drafts += 1,
  num_draft_tokens += proposed, num_accepted_tokens += accepted, and num_accepted_tokens_per_pos[i]
  += 1 for every position i < accepted (a prefix count). So with D drafts at k speculative tokens,
  P(accepted >= j) = per_pos[j-1] / D: a histogram of rounds at gamma = k. A file with one scrape is
  read as counts (a delta, or a server that ran only this workload); a file with two (a scrape before
  and one after, concatenated) is read as their difference.
- **Per-position read as per-round** (``looks_per_position``): a per-position list copied into
  ``accepted_per_round`` reads, below the draft cap, k-1, k-2, ..., 0 after every run of k. Among values
  2 <= x < gamma, the share followed by that complete descent is tested against the same rows with
  their values shuffled within each row (which keeps every row's histogram). Where rows carry their
  token count, rounds also cannot produce more tokens than the row has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from lattts.errors import UserError

PROPOSER_PREFIX = "acc_"
PERMUTATIONS = 50
DETECT_ROWS = 400  # rows the descent test looks at (plenty: 16 rows of 64 rounds already detect every misread file)


def per_position_rows(rows: list[dict], path: Path, proposer: str | None) -> tuple[list[list[int]], list[str], str]:
    """(acc_len lists, ids, proposer key) from per-position log rows; UserError names the fix."""
    keys = sorted({k for r in rows for k, v in r.items() if k.startswith(PROPOSER_PREFIX) and isinstance(v, dict)})
    if any("acc_len" in r for r in rows):
        key = None
    elif proposer is not None:
        key = proposer if proposer.startswith(PROPOSER_PREFIX) else PROPOSER_PREFIX + proposer
        if key not in keys:
            raise UserError(f"{path}: no proposer {proposer!r}; it has {', '.join(keys)}")
    elif len(keys) == 1:
        key = keys[0]
    else:
        raise UserError(f"{path} has per-position logs of {len(keys)} proposers ({', '.join(keys)}); pick one: "
                        f"`lattts acceptance {path} --proposer {keys[0][len(PROPOSER_PREFIX):]} --out acc.jsonl`, "
                        f"then --acceptance acc.jsonl")
    lists, ids = [], []
    for n, r in enumerate(rows, 1):
        acc = r.get("acc_len") if key is None else (r.get(key) or {}).get("acc_len")
        if acc is None:
            continue
        if not isinstance(acc, list) or not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in acc):
            raise UserError(f"{path}:{n}: 'acc_len' must be a list of integers >= 1 (accepted length per position, "
                            f"bonus token included)")
        lists.append(acc)
        ids.append(str(r.get("id", r.get("problem_id", n))))
    if not lists:
        raise UserError(f"{path}: no row has an 'acc_len' list")
    return lists, ids, key or "acc_len"


_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
_POSITION = re.compile(r'position="(\d+)"')
VLLM = "vllm:spec_decode_num_"


def is_prometheus(text: str) -> bool:
    return VLLM in text and not text.lstrip().startswith(("{", "["))


def vllm_histogram(text: str, path: Path) -> tuple[int, list[int], str]:
    """(gamma, rounds by accepted tokens 0..gamma, how) from vLLM's speculative counters in ``text``."""
    scrapes: list[dict] = [{}]
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or not m.group(1).startswith(VLLM):
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if (name, labels) in scrapes[-1]:
            scrapes.append({})  # the same series again: a second scrape
        try:
            scrapes[-1][(name, labels)] = float(value)
        except ValueError:
            raise UserError(f"{path}: {name} has value {value!r}, not a number") from None
    if len(scrapes) > 2:
        raise UserError(f"{path}: {len(scrapes)} scrapes of the vLLM counters; give one (a delta) or two (before and after)")

    def totals(scrape):
        drafts = sum(v for (n, _), v in scrape.items() if n == VLLM + "drafts_total")
        accepted = sum(v for (n, _), v in scrape.items() if n == VLLM + "accepted_tokens_total")
        per_pos: dict[int, float] = {}
        for (n, labels), v in scrape.items():
            pos = _POSITION.search(labels)
            if n == VLLM + "accepted_tokens_per_pos_total" and pos:
                per_pos[int(pos.group(1))] = per_pos.get(int(pos.group(1)), 0.0) + v
        return drafts, accepted, per_pos

    d1, a1, p1 = totals(scrapes[-1])
    how = "counters as read"
    if len(scrapes) == 2:
        d0, a0, p0 = totals(scrapes[0])
        d1, a1, p1 = d1 - d0, a1 - a0, {k: v - p0.get(k, 0.0) for k, v in p1.items()}
        how = "after minus before"
    if d1 <= 0 or not p1:
        raise UserError(f"{path}: needs {VLLM}drafts_total > 0 and {VLLM}accepted_tokens_per_pos_total{{position=...}}; "
                        f"scrape /metrics of a vLLM server launched with --speculative-config")
    gamma = max(p1) + 1
    tail = [d1] + [p1.get(j, 0.0) for j in range(gamma)]
    if any(tail[j + 1] > tail[j] + 0.5 for j in range(gamma)) or abs(sum(tail[1:]) - a1) > 0.5 + 1e-6 * a1:
        raise UserError(f"{path}: the per-position counts are not a prefix count of {VLLM}accepted_tokens_total "
                        f"(they must fall with position and sum to it); were the scrapes taken in order?")
    hist = [int(round(tail[a] - (tail[a + 1] if a < gamma else 0.0))) for a in range(gamma + 1)]
    return gamma, hist, f"vLLM speculative counters ({how}): {int(d1)} drafts at {gamma} speculative tokens"


def _descent_share(rows: list[np.ndarray], cap: int) -> tuple[float, int]:
    """Share of values 2 <= x < cap followed by x-1, ..., 0 in the same row, and how many were."""
    num = den = 0
    for x in rows:
        for v in range(2, cap):
            idx = np.flatnonzero(x[:max(len(x) - v, 0)] == v)
            if not len(idx):
                continue
            ok = np.ones(len(idx), dtype=bool)
            for j in range(1, v + 1):
                ok &= x[idx + j] == v - j
            den, num = den + len(idx), num + int(ok.sum())
    return (num / den if den else 0.0), num


def looks_per_position(rounds: list[list[int]], gamma: int, seed: int = 0) -> bool:
    """Do these accepted_per_round rows at draft length gamma read like a per-position log? (needs gamma >= 3)"""
    rows = [np.asarray(r) for r in rounds[:DETECT_ROWS] if len(r)]
    share, seen = _descent_share(rows, gamma)
    if gamma < 3 or seen < 5 or share < 0.2:  # genuine rounds give 0.01-0.09
        return False
    rng = np.random.default_rng(seed)
    null = np.array([_descent_share([rng.permutation(r) for r in rows], gamma)[0] for _ in range(PERMUTATIONS)])
    z = (share - null.mean()) / max(null.std(), 1e-9)
    return bool(share >= 0.2 and share >= 3 * null.mean() and z >= 6)


def per_position_fix(path: Path) -> str:
    return (f"{path}: its accepted_per_round lists read like a per-position log (every run of k followed by k-1, ..., 0: "
            f"one entry per generated position, not per round); give lattts the original per-position rows "
            f"(a list 'acc_len' per row, bonus token included), which it walks into rounds at each draft length")


def load_jsonl(text: str, path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not valid JSON ({exc.msg}); expected JSONL rows with draft_len and "
                            f"accepted_per_round (or acc_len), or one JSON object with draft_len and "
                            f"accepted_histogram") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object with draft_len and accepted_per_round")
        rows.append(row)
    return rows
