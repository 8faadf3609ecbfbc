"""Vidur's published GPU profiles (microsoft/vidur@7d47513, MIT; see lattts/data/vidur/README.md) as op rows.

``*_mlp.csv`` times every kernel of ONE decoder layer, fp16, per token count N and tensor-parallel shard:
the four matmuls become one 'linear' row each (their weight shapes differ, which separates the fixed time
per kernel from the streaming rate); the element-wise kernels of a layer become one 'elementwise' row,
the unit the simulator prices. ``*_all_reduce.csv`` rows become 'comm' rows, one call each; only rows
within one node are kept (a device profile describes one node).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lattts.calibrate.oprows import OpRows
from lattts.errors import UserError

BYTES = 2  # fp16, as Vidur profiles
CONFIG = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp")
MLP_COLUMNS = CONFIG + ("num_tokens", "num_tensor_parallel_workers")
ALLREDUCE_COLUMNS = ("num_workers", "size", "devices_per_node", "time_stats.all_reduce.median")
LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
# element-wise kernels of a layer; the embedding gather runs once per pass, not per layer, and is left out
ELEMENTWISE_OPS = ("input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add")


def is_vidur(columns) -> bool:
    cols = set(columns)
    return any(c.startswith("time_stats.") for c in cols)


def source_name(path: Path) -> str:
    """The model (or topology) a file profiles: 'Llama-2-7b-hf' from vidur_h100_Llama-2-7b-hf_mlp.csv."""
    match = re.match(r"vidur_[a-z0-9]+_(.+?)_(mlp|all_reduce)$", path.stem)
    return match.group(1) if match else path.stem


def read(path: Path) -> list[OpRows]:
    """The op rows of one Vidur CSV (per-op layer profile or all-reduce profile)."""
    import pandas as pd

    frame = pd.read_csv(path)
    if all(c in frame.columns for c in ALLREDUCE_COLUMNS):
        return [_allreduce(frame, source_name(path))]
    missing = [c for c in MLP_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: a Vidur profile needs columns {', '.join(missing)} (an mlp.csv) or "
                        f"{', '.join(ALLREDUCE_COLUMNS)} (an all_reduce.csv)")
    medians = [c for c in frame.columns if c.startswith("time_stats.") and c.endswith(".median")]
    # a few (N, shard) points are profiled twice: keep the mean of their medians
    frame = frame[list(MLP_COLUMNS) + medians].groupby(list(MLP_COLUMNS), as_index=False).mean()
    ops = {c.split(".")[1] for c in medians}
    return [_linear(frame, ops, source_name(path)), _elementwise(frame, ops, source_name(path))]


def _shapes(frame) -> dict:
    """Per-shard widths of one layer (tensor parallelism divides heads and d_ff)."""
    tp = frame.num_tensor_parallel_workers.to_numpy(float)
    d, heads, kv_heads = (frame[c].to_numpy(float) for c in ("n_embd", "n_head", "n_kv_head"))
    head_dim = d / heads
    d_ff = frame.n_expanded_embd.to_numpy(float)
    gated = frame.use_gated_mlp.astype(bool).to_numpy()
    return {"tp": tp, "d": d, "q": heads * head_dim / tp, "kv": kv_heads * head_dim / tp, "d_ff": d_ff / tp,
            "gated": gated, "N": frame.num_tokens.to_numpy(float)}


def _linear(frame, ops: set, source: str) -> OpRows:
    s = _shapes(frame)
    d, q, kv, dff = s["d"], s["q"], s["kv"], s["d_ff"]
    # (K in, M out) of each matmul's weight shard: fused QKV, O, fused gate+up (up alone if not gated), down
    shapes = {"attn_pre_proj": (d, q + 2 * kv), "attn_post_proj": (q, d),
              "mlp_up_proj": (d, np.where(s["gated"], 2 * dff, dff)), "mlp_down_proj": (dff, d)}
    parts = []
    for op in LINEAR_OPS:
        if op not in ops:
            continue
        K, M = shapes[op]
        t = frame[f"time_stats.{op}.median"].to_numpy(float) * 1e-3
        N = s["N"]
        # (N, K) x (K, M): weights K*M read once, activations N*K read and N*M written, 2*N*K*M FLOP
        parts.append(dict(time_s=t, nbytes=K * M * BYTES, act_bytes=N * (K + M) * BYTES, flops=2.0 * N * K * M,
                          rows=N, devices=s["tp"], op=np.full(len(t), op)))
    return _rows("linear", parts, source)


def _elementwise(frame, ops: set, source: str) -> OpRows:
    s = _shapes(frame)
    d, q, kv, dff, gated = s["d"], s["q"], s["kv"], s["d_ff"], s["gated"]
    # bytes read and written per token row: a norm reads and writes d; RoPE reads and writes q and k;
    # SiLU(gate)*up reads 2 d_ff and writes d_ff (GELU reads and writes d_ff); the add reads 2d and writes d
    # (phi-2's add joins attention, MLP and residual: 3 read, 1 written)
    per_row = {"input_layernorm": 2 * d, "post_attention_layernorm": 2 * d, "attn_rope": 2 * (q + kv),
               "mlp_act": np.where(gated, 3 * dff, 2 * dff), "add": np.where(gated, 3 * d, 4 * d)}
    present = [op for op in ELEMENTWISE_OPS if op in ops]
    if not present:
        raise UserError(f"{source}: no element-wise kernel timings ({', '.join(ELEMENTWISE_OPS)})")
    t = sum(frame[f"time_stats.{op}.median"].to_numpy(float) for op in present) * 1e-3
    nbytes = s["N"] * sum(per_row[op] for op in present) * BYTES
    part = dict(time_s=t, nbytes=nbytes, rows=s["N"], devices=s["tp"], op=np.full(len(t), "elementwise"),
                kernels=np.full(len(t), float(len(present))))
    return _rows("elementwise", [part], source)


def _allreduce(frame, source: str) -> OpRows:
    one_node = frame[frame.devices_per_node == frame.num_workers]
    t = one_node["time_stats.all_reduce.median"].to_numpy(float) * 1e-3
    n = one_node.num_workers.to_numpy(float)
    part = dict(time_s=t, nbytes=one_node["size"].to_numpy(float), rows=np.zeros(len(t)), devices=n,
                op=np.full(len(t), "all_reduce"), kernels=np.ones(len(t)))
    return _rows("comm", [part], source)


def _rows(group: str, parts: list[dict], source: str) -> OpRows:
    cat = {k: np.concatenate([np.broadcast_to(p[k], p["time_s"].shape) if k != "op" else p[k] for p in parts])
           for k in parts[0]}
    cat.setdefault("kernels", np.ones(len(cat["time_s"])))
    keep = cat["time_s"] > 0  # a 0 ms median is below the profiler's 1 us tick
    cat = {k: np.asarray(v)[keep] for k, v in cat.items()}
    return OpRows(group=group, time_s=cat["time_s"], kernels=cat["kernels"], nbytes=cat["nbytes"], rows=cat["rows"],
                  devices=cat["devices"], source=np.full(keep.sum(), source), op=cat["op"],
                  act_bytes=cat.get("act_bytes"), flops=cat.get("flops"))
