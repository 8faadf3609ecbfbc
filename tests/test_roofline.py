"""Roofline regimes and monotonicity of the forward-pass cost."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lattts.hardware.devices import find_device
from lattts.hardware.profiles import datasheet_profile
from lattts.models import resolve_model
from lattts.simulator.deployment import Deployment
from lattts.simulator.roofline import forward_pass, pass_time

H100 = Deployment.on(datasheet_profile(find_device("h100-sxm")))
S32 = resolve_model("s1.1-32B")


def test_decode_at_batch_one_is_memory_bound():
    cost = forward_pass(S32, H100, 1, 1, 1024)
    assert cost.bound == "memory"
    assert cost.group("linear").bound == "memory"
    # weights dominate: the pass takes about weight bytes / effective bandwidth
    weight_s = S32.weight_bytes("bf16") / H100.profile.weight_bw_bytes_per_s
    assert cost.time_s == pytest.approx(weight_s, rel=0.1)


def test_large_batch_times_query_is_compute_bound():
    cost = forward_pass(S32, H100, 128, 8, 1024)  # 1024 token rows per matmul
    assert cost.group("linear").bound == "compute"


def test_linear_layers_turn_compute_bound_at_the_ridge():
    # bf16 weights do 2 FLOP per byte per token row, so the linear layers' intensity is ~rows FLOP/byte
    # and they turn compute-bound where rows cross the profile's ridge (H100 datasheet: 989 TFLOP/s over
    # 3.35 TB/s ~ 295 FLOP/byte before efficiencies)
    ridge_rows = H100.profile.ridge_flop_per_byte
    assert 200 < ridge_rows < 400
    assert forward_pass(S32, H100, int(ridge_rows * 0.8), 1, 0).group("linear").bound == "memory"
    assert forward_pass(S32, H100, int(ridge_rows * 1.25), 1, 0).group("linear").bound == "compute"


def test_groups_sum_to_total_and_count_work():
    cost = forward_pass(S32, H100, 4, 6, 500)
    assert cost.time_s == pytest.approx(sum(g.time_s for g in cost.groups))
    n = 4 * 6
    assert cost.group("linear").flops == pytest.approx(2 * n * S32.linear_weights)
    # causal attention FLOPs (QK^T and PV): 4 * layers * heads * h * B * q * (s + (q+1)/2)
    assert cost.group("attention").flops == pytest.approx(4 * 64 * 40 * 128 * 4 * 6 * (500 + 3.5))


def test_tensor_parallel_halves_weight_time_and_adds_communication():
    tp2 = Deployment.on(H100.profile, devices=2)
    one = forward_pass(S32, H100, 1, 1, 1024)
    two = forward_pass(S32, tp2, 1, 1, 1024)
    assert two.group("linear").time_s == pytest.approx(one.group("linear").time_s / 2, rel=0.01)
    assert one.time_s / 2 < two.time_s < one.time_s  # faster, but the all-reduces are not free
    # two all-reduces per layer: at least their latency at B=1, and growing with the payload (B x d)
    assert two.group("comm").time_s >= 2 * S32.n_layers * H100.profile.allreduce_latency_s
    assert forward_pass(S32, tp2, 4096, 1, 1024).group("comm").time_s > 2 * two.group("comm").time_s


PROFILES = [H100, Deployment.on(datasheet_profile(find_device("rtx-4090"))),
            Deployment.on(datasheet_profile(find_device("a100-sxm-40gb"), "fp32"))]


@settings(max_examples=150, deadline=None)
@given(b=st.integers(1, 512), q=st.integers(1, 16), s=st.integers(0, 32768), which=st.integers(0, len(PROFILES) - 1),
       name=st.sampled_from(["s1.1-32B", "s1.1-7B", "SmolLM2-135M-Instruct", "eagle3"]))
def test_pass_time_never_decreases_with_b_q_or_s(b, q, s, which, name):
    spec, prof = resolve_model(name), PROFILES[which]
    t = float(pass_time(spec, prof, b, q, s))
    assert float(pass_time(spec, prof, b + 1, q, s)) >= t - 1e-15
    assert float(pass_time(spec, prof, b, q + 1, s)) >= t - 1e-15
    assert float(pass_time(spec, prof, b, q, s + 1)) >= t - 1e-15


def test_vectorised_and_scalar_agree():
    b = np.array([1, 2, 8, 64])
    vec = pass_time(S32, H100, b, 1, 1000)
    assert np.allclose(vec, [forward_pass(S32, H100, int(x), 1, 1000).time_s for x in b])


def test_a_per_sequence_cost_sets_b_sequences_apart_from_b_tokens_of_one():
    # a server's per-slot work (sampling, bookkeeping) is paid per sequence and pass: a decode step of
    # B sequences costs B of it, a pass of B tokens of one sequence one (llama.cpp: B=5 37-40 ms, q=5 26-31)
    from dataclasses import replace

    spec = resolve_model("smollm2-135m")
    base, slot = H100, 2e-3
    costly = Deployment.on(replace(H100.profile, seq_overhead_s=slot))
    for b, q in ((5, 1), (1, 5), (8, 1)):
        extra = float(pass_time(spec, costly, b, q, 64, 1)) - float(pass_time(spec, base, b, q, 64, 1))
        assert extra == pytest.approx(b * slot)
