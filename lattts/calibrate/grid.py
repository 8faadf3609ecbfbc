"""Which forward passes a calibration times.

A point is (batch B, new tokens per sequence q, cached tokens s); rows B*q decide the matmul
regime. Points are densest where the step changes regime: the single-row GEMV case (B*q = 1),
the memory-to-compute knee of the matmuls (8 to 64 rows on a small CPU, a few hundred on a GPU),
and the context length at which the KV cache starts to matter; flat stretches get a few points.
"""

from __future__ import annotations

from dataclasses import dataclass


def engine_logits(query: int, context: int) -> int:
    """Positions that get logits in the engine's pass of q tokens on s cached: all q when it verifies
    drafts (q up to 16 on a cache), else the last."""
    return query if 1 < query <= 16 and context > 0 else 1


@dataclass(frozen=True, order=True)
class PassShape:
    """One forward pass to time: B sequences, each adding q tokens on top of s cached ones.

    ``logits`` 0 leaves the positions that get logits to the engine's rule (``logit_positions``); a
    runner that can only time another count says which (a server extends a cached prompt: one)."""

    batch: int
    query: int
    context: int
    logits: int = 0

    @property
    def rows(self) -> int:
        return self.batch * self.query

    @property
    def logit_positions(self) -> int:
        """Positions that get logits: the runner's count where given, else the engine's rule."""
        return self.logits or engine_logits(self.query, self.context)

    @property
    def key(self) -> tuple[int, ...]:
        """(B, q, s), and the logit positions where they are not the engine's rule (as ``Measurement.key``)."""
        own = self.logits and self.logits != engine_logits(self.query, self.context)
        return (self.batch, self.query, self.context) + ((self.logits,) if own else ())


@dataclass(frozen=True)
class Anchors:
    """The passes re-timed beside every timed pass (calibration) and every run (validation), so the
    machine's speed can be divided out: a decode step of one token row (a vector kernel) and one of
    several rows (a blocked matmul). A point or a pass is taken against the anchor of its kind
    (``of``), since another tenant of the host can slow one kind and not the other
    (``simulator.deployment.DeviceSpeed``). ``rows`` None: a device that cannot run one (a server of
    one slot), whose passes are all taken against the one-row anchor."""

    one_row: PassShape = PassShape(1, 1, 64)
    rows: PassShape | None = PassShape(4, 1, 64)

    def of(self, point: PassShape) -> PassShape:
        """The anchor ``point`` is taken against."""
        return self.rows if self.rows is not None and point.rows > 1 else self.one_row

    @property
    def points(self) -> tuple[PassShape, ...]:
        return (self.one_row,) + ((self.rows,) if self.rows is not None else ())

    @classmethod
    def within(cls, batch: int) -> "Anchors":
        """The anchors of a device that runs at most ``batch`` sequences at once (a server's slots)."""
        rows = cls().rows
        return cls(rows=PassShape(min(rows.batch, batch), rows.query, rows.context) if batch > 1 else None)


ANCHORS = Anchors()
ANCHOR_POINT = ANCHORS.one_row


def cpu_grid(quick: bool = False, max_cached_tokens: int = 32768) -> list[PassShape]:
    """Points for a CPU: decode over B (dense through the knee) and s, verify shapes (q = 2..9), prefill."""
    if quick:
        decode = [(b, s) for b in (1, 2, 4, 8, 16, 32, 64) for s in (128,)] + [(1, 1024), (8, 1024), (1, 2048), (16, 512)]
        verify = [(1, 3, 256), (4, 3, 256), (2, 5, 512), (8, 5, 256), (1, 9, 1024)]
        prefill = [64, 256]
    else:
        decode = [(b, s) for b in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96) for s in (64, 512)]
        decode += [(b, s) for b in (1, 2, 4, 8, 16, 32) for s in (1024, 2048)]
        verify = [(b, q, s) for b in (1, 2, 4, 8, 16) for q in (2, 3, 5, 9) for s in (256, 1024)]
        prefill = [16, 64, 128, 256, 512]
    points = [PassShape(b, 1, s) for b, s in decode] + [PassShape(b, q, s) for b, q, s in verify] + [PassShape(1, p, 0) for p in prefill]
    return sorted(p for p in set(points) if p.batch * (p.context + p.query) <= max_cached_tokens)


def gpu_grid(quick: bool = False) -> list[PassShape]:
    """Points for a GPU: decode B up to 512 (the knee is near the ridge, ~100-300 rows), verify, prefill."""
    batches = (1, 2, 4, 8, 16, 32, 64, 128, 256) if quick else (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    contexts = (256, 2048) if quick else (128, 1024, 4096)
    decode = [PassShape(b, 1, s) for b in batches for s in contexts]
    verify = [PassShape(b, q, 1024) for b in (1, 4, 16, 64) for q in ((3, 6) if quick else (2, 4, 6, 9))]
    prefill = [PassShape(1, p, 0) for p in ((256, 2048) if quick else (128, 512, 1024, 2048, 4096))]
    return sorted(set(decode + verify + prefill))
