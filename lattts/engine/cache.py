"""Preallocated KV cache with a length per sequence.

K and V of every layer live in (B, n_kv, max_len, h) tensors allocated once: a cache grown by
concatenation cost ~140k page faults per step at B=16, s=2048 on the 2-core development CPU and
doubled the step time. Each branch keeps its own length, so branches can hold different numbers of
accepted tokens; rolling back rejected draft tokens is only a length change. The host keeps a copy of the lengths so that no device sync is needed to
decide masks and slices.
"""

from __future__ import annotations

import torch
from torch import Tensor


class CacheFull(Exception):
    """A sequence would outgrow the preallocated cache."""


class KVCache:
    def __init__(self, keys: list[Tensor], values: list[Tensor], lengths: list[int]):
        self.keys, self.values = keys, values
        self.capacity = keys[0].shape[2]
        self.device = keys[0].device
        self.set_lengths(lengths)

    @classmethod
    def allocate(cls, n_layers: int, batch: int, n_kv: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device | str) -> "KVCache":
        shape = (batch, n_kv, max_len, head_dim)
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        return cls(keys, values, [0] * batch)

    @property
    def batch(self) -> int:
        return len(self.host_lengths)

    @property
    def n_layers(self) -> int:
        return len(self.keys)

    @property
    def uniform(self) -> bool:
        return min(self.host_lengths) == max(self.host_lengths)

    @property
    def max_length(self) -> int:
        return max(self.host_lengths)

    def set_lengths(self, lengths: list[int]) -> None:
        """Set every sequence's length (a rollback after rejected drafts is just this)."""
        self.host_lengths = [int(n) for n in lengths]
        if max(self.host_lengths) > self.capacity:
            raise CacheFull(f"a sequence needs {max(self.host_lengths)} positions, the cache holds {self.capacity}")
        self.lengths = torch.tensor(self.host_lengths, dtype=torch.long, device=self.device)

    def advance(self, q: int) -> None:
        self.host_lengths = [n + q for n in self.host_lengths]
        self.lengths = self.lengths + q

    def attention_mask(self, q: int, total: int) -> Tensor | None:
        """Which of ``total`` cached positions each of the q new tokens may attend to.

        None when every sequence has the same length and q == 1 (attend to all); otherwise a bool
        mask (1 or B, 1, q, total): new token i of sequence b sees positions < length_b + i + 1.
        """
        if self.uniform and q == 1:
            return None
        if total > self.capacity:
            raise CacheFull(f"a sequence needs {total} positions, the cache holds {self.capacity}")
        cols = torch.arange(total, device=self.device)
        rows = torch.arange(q, device=self.device)
        lengths = self.lengths[:1] if self.uniform else self.lengths
        limit = lengths[:, None] + rows[None, :] + 1  # (B, q)
        return (cols[None, None, :] < limit[:, :, None])[:, None]  # (B, 1, q, total)

    def write(self, layer: int, k: Tensor, v: Tensor, positions: Tensor, total: int) -> tuple[Tensor, Tensor]:
        """Store new K, V (B, n_kv, q, h) at ``positions`` (B, q); return the first ``total`` positions."""
        keys, values = self.keys[layer], self.values[layer]
        q = k.shape[2]
        if total > self.capacity:
            raise CacheFull(f"a sequence needs {total} positions, the cache holds {self.capacity}")
        if self.uniform:
            start = self.host_lengths[0]
            keys[:, :, start:start + q] = k
            values[:, :, start:start + q] = v
        else:
            rows = torch.arange(self.batch, device=self.device)[:, None]  # (B, 1)
            keys[rows, :, positions] = k.transpose(1, 2)  # advanced indices first: (B, q, n_kv, h)
            values[rows, :, positions] = v.transpose(1, 2)
        return keys[:, :, :total], values[:, :, :total]

    def adopt(self, row: int, other: "KVCache") -> None:
        """Copy sequence 0 of ``other`` (e.g. a separately prefilled prompt) into sequence ``row``."""
        n = other.host_lengths[0]
        for mine, theirs in zip(self.keys + self.values, other.keys + other.values):
            mine[row, :, :n] = theirs[0, :, :n]
        lengths = list(self.host_lengths)
        lengths[row] = n
        self.set_lengths(lengths)

    def fork(self, batch: int) -> "KVCache":
        """A cache of ``batch`` sequences that all start as copies of sequence 0 (shared prompt)."""
        n = self.host_lengths[0]
        keys, values = [], []
        for k, v in zip(self.keys, self.values):
            shape = (batch,) + tuple(k.shape[1:])
            nk, nv = torch.zeros(shape, dtype=k.dtype, device=k.device), torch.zeros(shape, dtype=v.dtype, device=v.device)
            nk[:, :, :n] = k[:1, :, :n]
            nv[:, :, :n] = v[:1, :, :n]
            keys.append(nk)
            values.append(nv)
        return KVCache(keys, values, [n] * batch)
