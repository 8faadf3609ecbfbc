"""The measurements file: one CSV row per timed point, appended as it is taken.

Columns: shape, batch, query_len, context_len, logits, latency_s (median), spread (interquartile
range / median of the point/anchor ratios when paired, else of the times), repeats, status ('ok', or 'oom' for a point the device could not hold), unix
time, anchor_s (median time of the anchor pass timed between this point's passes) and relative
(median over this point's passes of its time / the mean of the anchor times either side).
Every row is one write of a whole line followed by fsync, so an interrupted run leaves at most a
partial last line, which reading drops (that point is measured again). ``--from-csv`` files need
only batch, query_len, context_len and latency_s (seconds per forward pass); optional ``shape`` names the
model each row ran, ``group`` says the row times one op group of the pass (linear, elementwise or comm;
default pass: the whole forward pass) and ``devices`` the tensor-parallel device count (default 1).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from lattts.calibrate.grid import Anchors, engine_logits
from lattts.errors import UserError

COLUMNS = ("shape", "batch", "query_len", "context_len", "logits", "latency_s", "spread", "repeats", "status", "time",
           "anchor_s", "relative")
REQUIRED = ("batch", "query_len", "context_len", "latency_s")
ROW_GROUPS = ("pass", "linear", "elementwise", "comm")


@dataclass(frozen=True)
class Measurement:
    shape: str
    batch: int
    query_len: int
    context_len: int
    logits: int
    latency_s: float
    spread: float = 0.0
    repeats: int = 1
    status: str = "ok"
    time: float = 0.0
    anchor_s: float | None = None
    relative: float | None = None
    group: str = "pass"  # what latency_s times: the whole pass, or one op group of it
    devices: int = 1  # tensor-parallel devices the pass ran on

    @property
    def key(self) -> tuple:
        """(shape, B, q, s) and, as ``PassShape.key`` has them, logit positions other than the engine's rule."""
        own = self.logits != engine_logits(self.query_len, self.context_len)
        return (self.shape, self.batch, self.query_len, self.context_len) + ((self.logits,) if own else ())


def append(path: Path, m: Measurement) -> None:
    """Append one row durably (header first if the file is new)."""
    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if new:
        writer.writerow(COLUMNS)
    opt = ["" if v is None else f"{v:.9g}" for v in (m.anchor_s, m.relative)]
    writer.writerow([m.shape, m.batch, m.query_len, m.context_len, m.logits, f"{m.latency_s:.9g}", f"{m.spread:.4g}",
                     m.repeats, m.status, f"{m.time:.3f}", *opt])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, buf.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, default_shape: str | None = None) -> list[Measurement]:
    """Rows of a measurements CSV (ours or a user's); a partial last line is dropped, bad rows are named."""
    if not path.is_file():
        raise UserError(f"measurements file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # an interrupted append: that point was never complete
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a timings CSV needs "
                        f"{', '.join(REQUIRED)} (seconds per forward pass)")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            b, q, s = int(row["batch"]), int(row["query_len"]), int(row["context_len"])
            status = (row.get("status") or "ok").strip() or "ok"
            latency = float(row["latency_s"]) if status == "ok" else float("nan")
            if b < 1 or q < 1 or s < 0 or (status == "ok" and not latency > 0):
                raise ValueError
            logits = int(row["logits"]) if row.get("logits") else engine_logits(q, s)
            devices = int(row.get("devices") or 1)
            if devices < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise UserError(f"{path}:{line}: needs positive integers batch and query_len, context_len >= 0 and "
                            f"latency_s > 0; got {dict((k, row.get(k)) for k in REQUIRED)}") from None
        group = (row.get("group") or "pass").strip()
        if group not in ROW_GROUPS:
            raise UserError(f"{path}:{line}: group {group!r} is not one lattts fits from rows; use "
                            f"{', '.join(ROW_GROUPS)}")
        rows.append(Measurement(
            shape=row.get("shape") or default_shape or "model", batch=b, query_len=q, context_len=s, logits=logits,
            latency_s=latency, spread=float(row.get("spread") or 0.0), repeats=int(row.get("repeats") or 1),
            status=status, time=float(row.get("time") or 0.0),
            anchor_s=float(row["anchor_s"]) if row.get("anchor_s") else None,
            relative=float(row["relative"]) if row.get("relative") else None, group=group, devices=devices))
    return rows


def drift_corrected(rows: list[Measurement], anchors: Anchors | None = None) -> tuple[list[Measurement], dict]:
    """The 'ok' rows with the device's drift divided out, and a summary of the drift.

    Each point was timed between passes of a fixed anchor of its kind (``anchors.of``: one token row,
    or more; default ``grid.ANCHORS``); its time relative to the anchor, times that anchor's median
    over the whole sweep, is its time at the sweep's typical speed. The speed of this kind of machine
    switches by up to ~1.5x within seconds (another tenant's load), which pairing cancels and a median
    alone does not. Rows without an anchor are left as they are. The summary gives each anchor's
    point, reference (its median) and range, and the 90th percentile of |anchor / its reference - 1|
    over both.
    """
    from dataclasses import replace

    import numpy as np

    from lattts.calibrate.grid import ANCHORS, PassShape

    anchors = anchors or ANCHORS
    ok = [m for m in rows if m.status == "ok"]
    paired = [m for m in ok if m.anchor_s]
    if len(paired) < 2:
        return ok, {"paired": False}

    def kind(m: Measurement) -> PassShape:
        return anchors.of(PassShape(m.batch, m.query_len, m.context_len))

    times = {a: np.array([m.anchor_s for m in paired if kind(m) == a]) for a in anchors.points}
    refs = {a: float(np.median(t)) for a, t in times.items() if len(t)}
    fixed = [replace(m, latency_s=m.relative * refs[kind(m)]) if m.relative and kind(m) in refs else m for m in ok]
    out = {"paired": True}
    for prefix, a in (("anchor", anchors.one_row), ("rows_anchor", anchors.rows)):
        if a in refs:
            out |= {f"{prefix}_point": list(a.key), f"{prefix}_reference_s": refs[a],
                    f"{prefix}_min_s": float(times[a].min()), f"{prefix}_max_s": float(times[a].max())}
    off = np.concatenate([np.abs(times[a] / refs[a] - 1.0) for a in refs])
    return fixed, out | {"drift_p90": float(np.quantile(off, 0.9))}
