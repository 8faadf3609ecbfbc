"""Measured acceptance files: both formats, their checks, and the model they give."""

import json

import pytest

from lattts.errors import UserError
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


def test_several_draft_lengths_use_the_most_rounds(tmp_path):
    m = read_acceptance(jsonl(tmp_path / "a.jsonl", [{"draft_len": 2, "accepted_per_round": [2, 2, 1]},
                                                    {"draft_len": 5, "accepted_per_round": [5, 0]}]))
    assert m.draft_len == 2 and m.rounds_dropped == 2 and "left out 2 at 5" in m.source


@pytest.mark.parametrize("content,text", [
    ('{"draft_len": 3, "accepted_per_round": [1, 4]}\n', "each round accepts 0..3"),
    ('{"draft_len": 0, "accepted_per_round": []}\n', "'draft_len' must be an integer >= 1"),
    ('{"accepted_per_round": [1]}\n', "missing field 'draft_len'"),
    ('{"draft_len": 2, "accepted_per_round": []}\n', "no speculative rounds"),
    ('{"draft_len": 2, "accepted_histogram": [1, 2]}', "needs 3"),
    ('{"draft_len": 2, "accepted_histogram": [0, 0, 0]}', "counts no rounds"),
    ('{"draft_len": 2, "accepted_per_round": [1]}\nnope\n', "not valid JSON"),
])
def test_bad_acceptance_files(tmp_path, content, text):
    path = tmp_path / "acc.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=text) as err:
        read_acceptance(path)
    assert str(path) in str(err.value)
