"""Measured acceptance files: both formats, their checks, and the model they give."""

import json

import numpy as np
import pytest

from lattts.errors import UserError
from lattts.simulator.speculative import AcceptanceModel
from lattts.traces.acceptance import load_acceptance, read_acceptance


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rounds_and_histogram_formats_agree(tmp_path):
    rounds = [4, 3, 0, 4, 2, 1, 4, 4]
    a = read_acceptance(jsonl(tmp_path / "a.jsonl", [{"draft_len": 4, "accepted_per_round": rounds[:5], "sample_id": 0},
                                                    {"draft_len": 4, "accepted_per_round": rounds[5:]}]))
    hist = [rounds.count(k) for k in range(5)]
    (tmp_path / "b.json").write_text(json.dumps({"text": "...", "acceptance": {"draft_len": 4, "accepted_histogram": hist}}))
    b = read_acceptance(tmp_path / "b.json")
    assert a.histogram == b.histogram == tuple(hist) and a.rounds == 8
    assert a.mean_accepted == pytest.approx(sum(rounds) / 8) and a.tokens_per_round == pytest.approx(sum(rounds) / 8 + 1)
    model = load_acceptance(tmp_path / "b.json")
    assert model.tokens_per_round(4) == pytest.approx(a.tokens_per_round)  # the model reproduces the measurement
    assert model.conditional[0] == pytest.approx(7 / 8)  # 7 of 8 rounds accepted position 1
    # pooled: 22 tokens accepted, 4 rounds stopped by a rejection
    assert model.alpha == pytest.approx(sum(rounds) / (sum(rounds) + sum(r < 4 for r in rounds)))
    assert "b.json" in model.source


def test_several_draft_lengths_are_each_used_at_their_own(tmp_path):
    m = read_acceptance(jsonl(tmp_path / "a.jsonl", [{"draft_len": 2, "accepted_per_round": [2, 2, 1]},
                                                    {"draft_len": 5, "accepted_per_round": [5, 0]}]))
    assert m.draft_len == 2 and m.rounds_dropped == 0 and "2 at 5, each used at its own draft length" in m.source
    model = m.model()
    assert model.tokens_per_round(2) == pytest.approx((3 + 3 + 2) / 3)  # the gamma = 2 rounds, not gamma 5's
    assert model.tokens_per_round(5) == pytest.approx((6 + 1) / 2)
    assert model.basis(2) == model.basis(5) == "measured" and model.basis(6) == "extrapolated"
    assert model.basis(3) == model.basis(4) == model.basis(1) == "derived"  # run-chained from gamma 5's rounds


def test_derived_draft_lengths_by_run_chaining_track_the_truth():
    from acceptance_helpers import descents
    from lattts.traces.acceptance import from_branches
    from lattts.traces.acceptance_fit import Branch, walk

    rng = np.random.default_rng(5)
    # n-gram-like runs (k, k-1, ..., 1): most of length 1, the rest long (a match found runs on)
    logs = [[1] + descents([1 if rng.random() < 0.6 else int(rng.integers(4, 13)) for _ in range(120)]) for _ in range(30)]
    truth = {g: np.mean(np.concatenate([walk(a, g) for a in logs])) for g in (2, 3, 6)}
    rounds_at_6 = [Branch(str(i), 6, tuple(int(t) for t in walk(a, 6))) for i, a in enumerate(logs)]
    model = from_branches(rounds_at_6, "simulated").model()
    assert model.basis(6) == "measured" and model.basis(3) == "derived" and model.basis(8) == "extrapolated"
    for g in (2, 3):
        assert model.tokens_per_round(g) == pytest.approx(truth[g], rel=0.03), g
    # reusing gamma 6's rates at gamma 2 (what one histogram allows) is further off than run-chaining
    trunc = AcceptanceModel.from_histogram(list(np.bincount(np.concatenate([r.taus for r in rounds_at_6]) - 1,
                                                            minlength=7)), "t", 6)
    assert abs(trunc.tokens_per_round(2) / truth[2] - 1) > abs(model.tokens_per_round(2) / truth[2] - 1)


def test_per_position_log_walked_from_the_second_entry(tmp_path):
    # the prefill's token, then runs of 3, 1, 4 and 2: acc_len reads 1 | 3 2 1 | 1 | 4 3 2 1 | 2 1
    acc = [1, 3, 2, 1, 1, 4, 3, 2, 1, 2, 1]
    path = jsonl(tmp_path / "log.jsonl", [{"id": "a", "acc_eagle": {"acc_len": acc}, "acc_ngram": {"acc_len": [1] * 11}}])
    m = read_acceptance(path, proposer="eagle")
    # at gamma 2 from position 1: tau 3 (3 capped), 1, 3 (4 capped), then position 8 reads 1, position 9 reads 2
    assert dict(m.histograms)[2] == (2, 1, 2)  # taus 3, 1, 3, 1, 2 -> accepted 2, 0, 2, 0, 1
    assert "logged at draft length 3, inferred from the largest entry" in m.source
    assert m.model().tokens_per_round(3) == pytest.approx((3 + 1 + 4 + 2) / 4)  # walked at 3: every run whole
    assert m.model().basis(3) == "measured" and m.model().basis(4) == "extrapolated"
    given = read_acceptance(path, proposer="acc_eagle", logged_draft_len=8)
    assert given.logged_draft_len == 8 and "given" in given.source and given.model().basis(8) == "measured"
    with pytest.raises(UserError, match="2 proposers .* --proposer eagle"):
        read_acceptance(path)
    with pytest.raises(UserError, match="exceeds draft length 2"):
        read_acceptance(path, proposer="eagle", logged_draft_len=2)


def test_acceptance_out_converts_one_proposer(tmp_path):
    from lattts.traces.acceptance import write_acceptance

    path = jsonl(tmp_path / "log.jsonl", [{"id": i, "acc_eagle": {"acc_len": [1, 3, 2, 1, 2, 1] * 4},
                                          "acc_ngram": {"acc_len": [1] * 24}} for i in range(3)])
    m = read_acceptance(path, proposer="eagle", logged_draft_len=5)
    out = write_acceptance(m, path, tmp_path / "eagle.jsonl", "eagle")
    again = read_acceptance(out)
    assert again.logged_draft_len == 5 and dict(again.histograms) == dict(m.histograms)


def vllm_metrics(hist, engine="0"):
    """vLLM's counters for a histogram of rounds by accepted tokens (a prefix count per position)."""
    k = len(hist) - 1
    drafts, accepted = sum(hist), sum(a * n for a, n in enumerate(hist))
    lines = ["# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.",
             f'vllm:spec_decode_num_drafts_total{{engine="{engine}",model_name="m"}} {float(drafts)}',
             f'vllm:spec_decode_num_draft_tokens_total{{engine="{engine}",model_name="m"}} {float(drafts * k)}',
             f'vllm:spec_decode_num_accepted_tokens_total{{engine="{engine}",model_name="m"}} {float(accepted)}']
    for pos in range(k):
        at_least = sum(hist[pos + 1:])
        lines.append(f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="{engine}",model_name="m",'
                     f'position="{pos}"}} {float(at_least)}')
    return "\n".join(lines) + "\n"


def test_vllm_counters_become_rounds_at_their_gamma(tmp_path):
    hist = [40, 25, 15, 20]
    (tmp_path / "m.prom").write_text(vllm_metrics(hist))
    m = read_acceptance(tmp_path / "m.prom")
    assert m.kind == "counters" and m.draft_len == 3 and m.histogram == tuple(hist)
    assert m.model().basis(2) == "derived" and m.model().basis(4) == "extrapolated"
    before = [10, 5, 5, 0]
    after = [b + h for b, h in zip(before, hist)]
    (tmp_path / "two.prom").write_text(vllm_metrics(before) + vllm_metrics(after))
    assert read_acceptance(tmp_path / "two.prom").histogram == tuple(hist)  # after minus before
    (tmp_path / "bad.prom").write_text(vllm_metrics(hist).replace('position="1"} 35.0', 'position="1"} 99.0'))
    with pytest.raises(UserError, match="not a prefix count"):
        read_acceptance(tmp_path / "bad.prom")


def test_per_position_log_read_as_rounds_is_refused(tmp_path):
    from acceptance_helpers import descents, sticky_branches

    rng = np.random.default_rng(2)
    gamma = 4
    rows = []
    for i in range(16):  # per-position entries copied naively into accepted_per_round (bonus removed, capped)
        acc = descents(list(rng.geometric(0.35, size=40)))[:64]
        rows.append({"draft_len": gamma, "accepted_per_round": [min(a, gamma + 1) - 1 for a in acc]})
    with pytest.raises(UserError, match="per-position log") as err:
        read_acceptance(jsonl(tmp_path / "mis.jsonl", rows))
    assert "acc_len" in str(err.value) and "\n" not in str(err.value)
    from typer.testing import CliRunner

    from lattts.cli import app

    for args in (["acceptance", str(tmp_path / "mis.jsonl")], ["predict", "--budget", "60s", "--acceptance",
                                                              str(tmp_path / "mis.jsonl")]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "per-position log" in res.output and "Traceback" not in res.output
    # genuine rounds, independent or sticky, pass
    iid = [{"draft_len": gamma, "accepted_per_round": [int(x) for x in np.cumprod(rng.random((64, gamma)) < 0.6, 1).sum(1)]}
           for _ in range(16)]
    sticky = [{"draft_len": gamma, "accepted_per_round": [int(t) - 1 for t in taus]}
              for taus in sticky_branches(16, 64, gamma, rng)]
    for good in (iid, sticky):
        assert read_acceptance(jsonl(tmp_path / "ok.jsonl", good)).kind == "rounds"
    # a row whose rounds make more tokens than it has cannot be rounds, whatever gamma
    with pytest.raises(UserError, match="per-position log"):
        read_acceptance(jsonl(tmp_path / "tok.jsonl", [{"draft_len": 2, "tokens": 10, "accepted_per_round": [2, 1, 0] * 5}]))


def test_histogram_dict_needs_gamma_and_keeps_zero_top_bins():
    with pytest.raises(ValueError, match="needs gamma"):
        AcceptanceModel.from_histogram({0: 3, 1: 5}, "t")
    m = AcceptanceModel.from_histogram({0: 3, 1: 5}, "t", gamma=4)  # no round accepted 2..4: top bins are zero
    assert m.draft_len == 4 and len(m.conditional) == 4 and m.conditional[1] == 0.0
    assert m.tokens_per_round(4) == pytest.approx((3 * 1 + 5 * 2) / 8)


@pytest.mark.parametrize("content,text", [
    ('{"draft_len": 3, "accepted_per_round": [1, 4]}\n', "each round accepts 0..3"),
    ('{"draft_len": 0, "accepted_per_round": []}\n', "'draft_len' must be an integer >= 1"),
    ('{"accepted_per_round": [1]}\n', "missing field 'draft_len'"),
    ('{"draft_len": 2, "accepted_per_round": []}\n', "no speculative rounds"),
    ('{"draft_len": 2, "accepted_histogram": [1, 2]}', "needs 3"),
    ('{"draft_len": 2, "accepted_histogram": [0, 0, 0]}', "counts no rounds"),
    ('{"draft_len": 2, "accepted_per_round": [1]}\nnope\n', "not valid JSON"),
    ('{"id": 1, "acc_len": [1, 0, 2]}\n', "integers >= 1"),
    ('vllm:spec_decode_num_drafts_total 0.0\n', "needs vllm:spec_decode_num_drafts_total > 0"),
])
def test_bad_acceptance_files(tmp_path, content, text):
    path = tmp_path / "acc.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=text) as err:
        read_acceptance(path)
    assert str(path) in str(err.value)
