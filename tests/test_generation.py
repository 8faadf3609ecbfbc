"""Closed-form latency sums equal explicit pass-by-pass sums of the same schedule."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dataclasses import replace

from lattts.hardware.devices import find_device
from lattts.hardware.profiles import datasheet_profile
from lattts.models import resolve_model
from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import PassSeries, Workload, generation_latency, memory_required_bytes, sum_passes
from lattts.simulator.roofline import pass_time
from lattts.simulator.speculative import AcceptanceModel, expected_max_rounds, simulate_branch_rounds
from round_helpers import leaving_cost_s

H100 = Deployment.on(datasheet_profile(find_device("h100-sxm")))
S32, S7 = resolve_model("s1.1-32B"), resolve_model("s1.1-7B")


def on(profile_changes: dict) -> Deployment:
    """H100 with some profile fields changed."""
    return replace(H100, profile=replace(H100.profile, **profile_changes))


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 1024), q=st.integers(1, 9), s0=st.integers(0, 4000), n=st.integers(0, 300),
       ds=st.sampled_from([1.0, 2.5, 4.0]))
def test_sum_passes_equals_loop(b, q, s0, n, ds):
    closed = float(sum_passes(S32, H100, PassSeries(b, q, s0, ds, n)))
    loop = sum(float(pass_time(S32, H100, b, q, s0 + i * ds)) for i in range(n))
    assert closed == pytest.approx(loop, rel=1e-9, abs=1e-12)


def test_sum_passes_across_the_attention_regime_change():
    # a low attention FLOP rate makes attention turn compute-bound as the context grows: one crossing point
    from lattts.simulator.roofline import forward_pass

    prof = on({"attn_flops_per_s": 4e13})  # attention ridge ~13 FLOP/byte; GQA 5 x q 4 -> up to 20
    assert forward_pass(S32, prof, 64, 4, 10).group("attention").bound == "memory"
    assert forward_pass(S32, prof, 64, 4, 10 + 7 * 499).group("attention").bound == "compute"
    closed = float(sum_passes(S32, prof, PassSeries(64, 4, 10, 7.0, 500)))
    loop = sum(float(pass_time(S32, prof, 64, 4, 10 + 7.0 * i)) for i in range(500))
    assert closed == pytest.approx(loop, rel=1e-9)


def test_plain_decoding_is_prefill_plus_l_minus_one_steps():
    P, L, B = 100, 64, 8
    lat = generation_latency(Workload(S32, P), H100, B, 0, L)
    prefill = float(pass_time(S32, H100, 1, P, 0, 1))
    steps = sum(float(pass_time(S32, H100, B, 1, P + i, 1)) for i in range(L - 1))
    fork = 2 * (B - 1) * P * S32.kv_bytes_per_token("bf16") / H100.profile.kv_bw_bytes_per_s
    assert lat.total_s[()] == pytest.approx(prefill + fork + steps, rel=1e-9)


def test_a_served_request_pays_its_own_cost_once():
    # a server's fixed cost per request (HTTP, slot set-up) is one term of the prefill, whatever B, gamma, L
    served = Deployment.on(replace(H100.profile, request_overhead_s=0.04))
    work = Workload(S32, 100, S7, AcceptanceModel.iid(0.8, "t"))
    for B, gamma, L in ((1, 0, 32), (8, 0, 512), (4, 3, 200)):
        extra = generation_latency(work, served, B, gamma, L).total_s - generation_latency(work, H100, B, gamma, L).total_s
        assert float(extra) == pytest.approx(0.04)


def test_speculative_schedule_matches_explicit_rounds():
    P, L, B, gamma = 100, 200, 4, 3
    acc = AcceptanceModel.iid(0.8, "t")
    lat = generation_latency(Workload(S32, P, S7, acc), H100, B, gamma, L)
    rounds = expected_max_rounds(acc, gamma, L - 1, B)
    mu = acc.tokens_per_round(gamma)
    assert lat.rounds[()] == pytest.approx(rounds)
    # explicit sum over integer rounds, then the fractional last one (the closed form extends linearly)
    whole = int(rounds)
    c = [P + 1 + r * mu for r in range(whole + 1)]
    verify = [float(pass_time(S32, H100, B, gamma + 1, c[r] - 1, gamma + 1)) for r in range(whole + 1)]
    draft = [float(pass_time(S7, H100, B, 2, c[r] - 2, 1)) + sum(float(pass_time(S7, H100, B, 1, c[r] + j - 2, 1))
                                                              for j in range(2, gamma + 1)) for r in range(whole + 1)]
    frac = rounds - whole
    expected_verify = sum(verify[:whole]) + frac * verify[whole]
    expected_draft = sum(draft[:whole]) + frac * draft[whole]
    assert lat.target_s[()] == pytest.approx(expected_verify, rel=1e-3)
    assert lat.draft_s[()] == pytest.approx(expected_draft, rel=1e-3)


def test_llamacpp_schedule_mirrors_the_verify_batch_through_the_draft():
    # llama.cpp's server (common/speculative.cpp draft-simple): per round the draft decodes the verify
    # batch B x (gamma+1) with its logit flags dropped (``batch_dft.logits = nullptr``: llama.cpp then
    # computes the batch's last row only, one head row in all = 1/B per branch), then drafts gamma
    # tokens from the last sampled one, (B, 1) per pass with logits for every branch
    from lattts.simulator.generation import EngineSchedule

    P, L, B, gamma = 100, 200, 4, 3
    acc = AcceptanceModel.iid(0.8, "t")
    work = Workload(S32, P, S7, acc, schedule=EngineSchedule(draft_mirrors_verify=True))  # every branch to the end
    lat = generation_latency(work, H100, B, gamma, L)
    rounds = expected_max_rounds(acc, gamma, L - 1, B)
    mu, whole = acc.tokens_per_round(gamma), int(rounds)
    c = [P + 1 + r * mu for r in range(whole + 1)]
    draft = [float(pass_time(S7, H100, B, gamma + 1, c[r] - 1, 1 / B))
             + sum(float(pass_time(S7, H100, B, 1, c[r] - 1 + j, 1)) for j in range(gamma)) for r in range(whole + 1)]
    expected = sum(draft[:whole]) + (rounds - whole) * draft[whole]
    assert lat.draft_s[()] == pytest.approx(expected, rel=1e-3)
    plain = generation_latency(Workload(S32, P, S7, acc), H100, B, gamma, L)
    assert lat.target_s[()] == pytest.approx(plain.target_s[()], rel=1e-12)  # the verify passes are the same


def test_finished_branches_leaving_the_batch_matches_a_round_by_round_simulation():
    # a server releases a branch's slot once it has its tokens, so later rounds run fewer rows. The
    # closed form (slowest branch's rounds at one row, the others' extra rows for their own mean
    # rounds) against pricing every round at the rows still running, over simulated runs; on a device
    # where a pass costs about its rows (compute-bound), where leaving matters most
    from lattts.simulator.generation import EngineSchedule

    P, L, B, gamma = 100, 64, 8, 3
    acc = AcceptanceModel.iid(0.6, "t")
    slow = on({"matmul_flops_per_s": H100.profile.matmul_flops_per_s / 300})
    leave = generation_latency(Workload(S32, P, S7, acc, schedule=EngineSchedule(finished_leave=True)), slow, B, gamma, L)
    stay = generation_latency(Workload(S32, P, S7, acc), slow, B, gamma, L)
    R = simulate_branch_rounds(acc, gamma, L - 1, B, 4000, np.random.default_rng(0)).astype(int)
    simulated = leaving_cost_s(S32, S7, slow, R, gamma, P + 1, acc.tokens_per_round(gamma)).mean()
    assert float(leave.target_s + leave.draft_s) == pytest.approx(simulated, rel=0.03)
    assert float(stay.target_s + stay.draft_s) > 1.1 * simulated  # keeping every branch to the end costs more here


@settings(max_examples=60, deadline=None)
@given(b=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]), g=st.integers(0, 8), L=st.integers(2, 8192))
def test_latency_never_decreases_with_l_or_b(b, g, L):
    acc = AcceptanceModel.iid(0.831, "paper")
    lat = generation_latency(Workload(S32, 128, S7, acc), H100, [b, b, 2 * b], [g, g, g], [L, L + 1, L]).total_s
    assert lat[1] >= lat[0] - 1e-12
    assert lat[2] >= lat[0] - 1e-12


def test_memory_counts_weights_and_kv():
    mem = memory_required_bytes(Workload(S32, 128, S7), "bf16", 16, 5, 1024)
    kv = 16 * (128 + 1024 + 5 + 1) * (S32.kv_bytes_per_token() + S7.kv_bytes_per_token())
    assert float(mem) == S32.weight_bytes() + S7.weight_bytes() + kv
    shared = memory_required_bytes(Workload(S32, 128, S32.first_layers(8), draft_shares_weights=True), "bf16", 1, 5, 1024)
    assert float(shared) < S32.weight_bytes() * 1.01


@pytest.mark.parametrize("p,rel", [(1.0, 1e-9), (2.0, 2e-3), (8.0, 2e-3)])
def test_sum_passes_for_calibrated_knees(p, rel):
    prof = on({"knee_sharpness": p, "attn_flops_per_s": 4e13})
    closed = float(sum_passes(S32, prof, PassSeries(64, 4, 10, 7.0, 500)))
    loop = sum(float(pass_time(S32, prof, 64, 4, 10 + 7.0 * i)) for i in range(500))
    assert closed == pytest.approx(loop, rel=rel)
