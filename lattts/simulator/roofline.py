"""Roofline cost of one forward pass, summed over op groups.

One pass runs B sequences, each adding q new tokens on top of s cached ones (decode q=1,
speculative verify q=gamma+1, prefill q=prompt, s=0), and computes logits for ``logit_positions``
of the q positions (default all q). Each matmul group costs a fixed time per kernel plus its memory
and compute time joined by the profile's knee: (mem^p + compute^p)^(1/p), p=inf is the roofline max,
p=1 adds them (no overlap, as on a CPU), and GPUs measure in between (p ~ 1.5, fitted to Vidur's
kernel timings). Element-wise kernels cost a fixed time each plus their bytes over their own rate,
never less than one token row over the per-row rate; all-reduces cost a latency per call plus the
ring's bytes over the bus bandwidth. Groups add. Everything here is plain numpy on arrays that
broadcast, so the search evaluates thousands of passes at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.profile import DeviceProfile

GROUPS = ("linear", "attention", "lm_head", "elementwise", "overhead", "comm")


@dataclass(frozen=True)
class GroupCost:
    """One op group of one pass: its time, what bounds it, and its work."""

    name: str
    time_s: float
    bound: str  # 'memory', 'compute', 'overhead' or 'communication'
    flops: float
    bytes: float


@dataclass(frozen=True)
class PassCost:
    """Cost of one forward pass: total time and the per-group breakdown."""

    time_s: float
    flops: float
    bytes: float
    groups: tuple[GroupCost, ...]

    def group(self, name: str) -> GroupCost:
        return next(g for g in self.groups if g.name == name)

    @property
    def bound(self) -> str:
        """What bounds the pass: the bound of its most expensive group."""
        return max(self.groups, key=lambda g: g.time_s).bound


def combine(memory_s, compute_s, p: float):
    """Join memory and compute time: max for p=inf (roofline), a smooth p-norm otherwise."""
    if math.isinf(p):
        return np.maximum(memory_s, compute_s)
    hi = np.maximum(np.maximum(memory_s, compute_s), 1e-30)
    return hi * ((memory_s / hi) ** p + (compute_s / hi) ** p) ** (1.0 / p)


@dataclass(frozen=True)
class PassWork:
    """FLOPs and bytes of every op group of a pass, as arrays broadcast over (B, q, s, logit positions)."""

    linear_flops: np.ndarray
    linear_weight_bytes: float
    linear_act_bytes: np.ndarray
    rows: np.ndarray  # token rows per matmul, B*q: decides the GEMV (1 row) or GEMM path
    attn_flops: np.ndarray
    attn_kv_bytes: np.ndarray
    attn_act_bytes: np.ndarray
    head_flops: np.ndarray
    head_weight_bytes: float
    head_act_bytes: np.ndarray
    head_rows: np.ndarray
    elementwise_bytes: np.ndarray
    comm_bytes: np.ndarray  # all-reduce payload per pass when tensor-parallel
    sequences: np.ndarray | float = 1.0  # B: the sequences the pass advances (a server's per-slot work)


def pass_work(spec: ModelSpec, deploy: Deployment, batch, query, context, logit_positions=None) -> PassWork:
    """Count the work of one pass; with ``deploy.devices`` > 1 it is one device's share under tensor parallelism."""
    B = np.asarray(batch, dtype=float)
    q = np.asarray(query, dtype=float)
    s = np.asarray(context, dtype=float)
    n_logits = q if logit_positions is None else np.asarray(logit_positions, dtype=float)
    nb, devices = deploy.bytes_per_value, deploy.devices
    d, L = spec.d_model, spec.n_layers
    N = B * q  # token rows through every matmul

    # Linear layers: (N, d_in) x (d_in, d_out) for q, k, v, o, gate, up, down (+ EAGLE-3 fusion).
    linear_flops = 2.0 * N * spec.linear_weights
    # matmul inputs read and outputs written, per token per layer:
    # q,k,v read x (attn_in) and write q_dim + 2 kv_dim; o reads q_dim writes d; gate/up read d write 2 d_ff;
    # down reads d_ff writes d.
    io_per_token = (3 * spec.attn_in_dim + 2 * spec.q_dim + 2 * spec.kv_dim + 4 * d + 3 * spec.d_ff)
    linear_act = N * L * io_per_token * nb + (N * 4 * d * nb if spec.fusion_params else 0.0)

    # Attention, causal: scores (B, n_heads, q, s+q) = Q (B, n_heads, q, h) x K^T, then P x V.
    # Each new token i attends to s + i + 1 positions: sum over i = q*s + q(q+1)/2.
    attended = q * s + q * (q + 1) / 2.0
    attn_flops = 4.0 * L * spec.n_heads * spec.head_dim * B * attended
    # KV cache: read (B, s, n_kv, h) for K and V, write (B, q, n_kv, h) for K and V, every layer.
    kv_per_token = 2.0 * L * spec.kv_dim * nb
    attn_kv = kv_per_token * B * (s + q)
    attn_act = N * L * (2 * spec.q_dim) * nb  # Q read, attention output written

    # LM head: (B*logits, d) x (d, V); logits written.
    head_rows = B * n_logits
    head_flops = 2.0 * head_rows * d * spec.out_vocab
    head_act = head_rows * (d + spec.out_vocab) * nb

    # Norms (read+write d, twice) and residual adds (read 2d write d, twice) run whole on every device;
    # SwiGLU (read 2 d_ff, write d_ff) and RoPE on q and k (read+write) on each device's shard of heads and
    # d_ff; per token per layer; plus the embedding gather (d written per token).
    sharded = (3 * spec.d_ff + 2 * (spec.q_dim + spec.kv_dim)) / devices
    elementwise = N * (L * (10 * d + sharded) + d) * nb

    comm = np.zeros_like(N)
    if devices > 1:
        linear_flops, attn_flops, head_flops = linear_flops / devices, attn_flops / devices, head_flops / devices
        attn_kv, linear_act = attn_kv / devices, linear_act / devices
        comm = 2.0 * L * N * d * nb  # two all-reduces of (N, d) per layer
    return PassWork(
        linear_flops=linear_flops, linear_weight_bytes=spec.linear_weight_bytes(deploy.dtype) / devices,
        linear_act_bytes=linear_act, rows=N, attn_flops=attn_flops, attn_kv_bytes=attn_kv, attn_act_bytes=attn_act,
        head_flops=head_flops, head_weight_bytes=spec.lm_head_weight_bytes(deploy.dtype) / devices, head_act_bytes=head_act,
        head_rows=head_rows, elementwise_bytes=elementwise, comm_bytes=comm, sequences=B,
    )


def _weight_bw(profile: DeviceProfile, rows):
    return np.where(np.asarray(rows) <= 1.0, profile.gemv_bw_bytes_per_s, profile.weight_bw_bytes_per_s)


def linear_time(profile: DeviceProfile, kernels, weight_bytes, act_bytes, flops, rows) -> tuple:
    """(time, memory time, compute time) of matmul kernels, e.g. one (N, K) x (K, M) op or a pass's linear group.

    The group form equals the sum over its kernels because every matmul of a pass does N FLOP per weight
    byte, so the p-norm is homogeneous (within 0.3% on Vidur's layers). Memory time is the weight shard
    streamed once plus activations read and written; the fixed time per kernel does not shrink with the
    shard, which is why tensor-parallel shards stream worse.
    """
    memory = weight_bytes / _weight_bw(profile, rows) + act_bytes / profile.act_bw_bytes_per_s
    compute = flops / profile.matmul_flops_per_s
    stream = combine(memory, compute, profile.knee_sharpness) * rows_factor(profile, rows)
    return kernels * profile.matmul_kernel_s + stream, memory, compute


def rows_factor(profile: DeviceProfile, rows):
    """The profile's measured matmul correction at ``rows`` token rows (1 without a table)."""
    table = profile.matmul_rows_factor
    if not table:
        return 1.0
    x = np.log2(np.maximum(np.asarray(rows, dtype=float), 1.0))
    return np.interp(x, np.log2([r for r, _ in table]), [f for _, f in table])


def elementwise_time(profile: DeviceProfile, kernels, nbytes, rows):
    """Seconds of element-wise kernels moving ``nbytes`` over ``rows`` token rows (norms, RoPE, activation, adds)."""
    stream = nbytes / profile.elementwise_bw
    if profile.row_bw_bytes_per_s:
        # each token row goes to one thread block: with few rows the time is one row streamed by one block
        per_row = nbytes / np.maximum(np.asarray(rows, dtype=float), 1.0)
        stream = np.maximum(stream, per_row / profile.row_bw_bytes_per_s)
    return kernels * profile.elementwise_kernel_s + stream


def allreduce_time(profile: DeviceProfile, devices: int, calls, nbytes):
    """Seconds of ``calls`` all-reduces moving ``nbytes`` in all over ``devices`` devices (ring form)."""
    cost = profile.allreduce(devices)
    # ring all-reduce: each device sends and receives 2(n-1)/n of the payload
    return calls * cost.latency_s + nbytes * 2 * (devices - 1) / devices / cost.bus_bytes_per_s


def group_times(work: PassWork, spec: ModelSpec, deploy: Deployment) -> dict[str, tuple]:
    """(time, memory time, compute time) per group, as broadcast arrays."""
    profile, devices, L = deploy.profile, deploy.devices, spec.n_layers
    p = profile.knee_sharpness
    matmuls = L * profile.matmul_kernels_per_layer + (1 if spec.fusion_params else 0)
    linear = linear_time(profile, matmuls, work.linear_weight_bytes, work.linear_act_bytes, work.linear_flops,
                         work.rows)
    head = linear_time(profile, 1, work.head_weight_bytes, work.head_act_bytes, work.head_flops, work.head_rows)
    att_mem = work.attn_kv_bytes / profile.kv_bw_bytes_per_s + work.attn_act_bytes / profile.act_bw_bytes_per_s
    att_cmp = work.attn_flops / profile.attn_flops_per_s
    elem = elementwise_time(profile, L * profile.elementwise_kernels_per_layer + 1, work.elementwise_bytes, work.rows)
    zero = np.zeros_like(work.rows)
    overhead = zero + profile.pass_overhead_s + L * profile.layer_overhead_s + work.sequences * profile.seq_overhead_s
    comm = allreduce_time(profile, devices, 2 * L, work.comm_bytes) + zero if devices > 1 else zero
    groups = {
        "linear": linear,
        "attention": (combine(att_mem, att_cmp, p), att_mem, att_cmp),
        "lm_head": head,
        "elementwise": (elem, elem, zero),
        "overhead": (overhead, zero, zero),
        "comm": (comm, comm, zero),
    }
    # the device's speed now, by the pass's kind (one row or more); every part alike, so combine() of the
    # scaled parts is the scaled whole (the p-norm is homogeneous)
    factor = deploy.speed.at(work.rows)
    return {name: tuple(x * factor for x in parts) for name, parts in groups.items()}


def pass_time(spec: ModelSpec, deploy: Deployment, batch, query, context, logit_positions=None):
    """Seconds for one forward pass (array over broadcast inputs)."""
    work = pass_work(spec, deploy, batch, query, context, logit_positions)
    return sum(t for t, _, _ in group_times(work, spec, deploy).values())


def _bound(name: str, memory_s: float, compute_s: float) -> str:
    if name == "overhead":
        return "overhead"
    if name == "comm":
        return "communication"
    return "compute" if compute_s > memory_s else "memory"


def forward_pass(spec: ModelSpec, deploy: Deployment, batch: int, query: int, context: int,
                 logit_positions: int | None = None) -> PassCost:
    """The cost of one forward pass with its per-group breakdown (scalars)."""
    work = pass_work(spec, deploy, batch, query, context, logit_positions)
    times = group_times(work, spec, deploy)
    flops = {"linear": work.linear_flops, "attention": work.attn_flops, "lm_head": work.head_flops}
    nbytes = {
        "linear": work.linear_weight_bytes + work.linear_act_bytes,
        "attention": work.attn_kv_bytes + work.attn_act_bytes,
        "lm_head": work.head_weight_bytes + work.head_act_bytes,
        "elementwise": work.elementwise_bytes, "comm": work.comm_bytes,
    }
    groups = []
    for name in GROUPS:
        if name == "comm" and deploy.devices <= 1:
            continue
        total, mem, cmp_ = (float(np.asarray(x)) for x in times[name])
        groups.append(GroupCost(name=name, time_s=total, bound=_bound(name, mem, cmp_),
                                flops=float(np.asarray(flops.get(name, 0.0))), bytes=float(np.asarray(nbytes.get(name, 0.0)))))
    return PassCost(time_s=sum(g.time_s for g in groups), flops=sum(g.flops for g in groups),
                    bytes=sum(g.bytes for g in groups), groups=tuple(groups))


@dataclass(frozen=True)
class SweepRow:
    """One forward pass of a batch sweep: its cost and what it attains."""

    batch: int
    query: int
    context: int
    cost: PassCost
    peak_flops_per_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.query / self.cost.time_s

    @property
    def intensity_flop_per_byte(self) -> float:
        return self.cost.flops / self.cost.bytes

    @property
    def attained_flops_per_s(self) -> float:
        return self.cost.flops / self.cost.time_s

    def to_json(self) -> dict:
        return {
            "batch": self.batch, "query": self.query, "context": self.context, "time_s": self.cost.time_s,
            "bound": self.cost.bound, "groups": {g.name: {"time_s": g.time_s, "bound": g.bound} for g in self.cost.groups},
            "flops": self.cost.flops, "bytes": self.cost.bytes, "intensity_flop_per_byte": self.intensity_flop_per_byte,
            "attained_flops_per_s": self.attained_flops_per_s, "tokens_per_s": self.tokens_per_s,
            "peak_flops_per_s": self.peak_flops_per_s,
        }


def batch_sweep(spec: ModelSpec, deploy: Deployment, batches, query: int, context: int) -> list[SweepRow]:
    """One forward pass per batch size (the paper's Figure 3 view)."""
    return [SweepRow(int(b), query, context, forward_pass(spec, deploy, int(b), query, context),
                     deploy.profile.matmul_flops_per_s) for b in batches]
