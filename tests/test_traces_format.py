"""Trace files: the lattts format's checks, the raw Qwen2.5-Math/Sky-T1 readers, truncation."""

import json
from pathlib import Path

import pytest

from lattts.errors import UserError
from lattts.traces.format import write_traces
from lattts.traces.groups import group_answers
from lattts.traces.readers import approx_tokens, load_traces
from lattts.traces.truncate import truncate

DATA = Path(__file__).parent / "data"
PACKAGE_CURVE = Path(__file__).parents[1] / "lattts" / "data" / "curves" / "qwen2.5-math-math100-n8.jsonl"


def write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def row(pid, sid, answer, correct, **extra):
    return {"problem_id": pid, "sample_id": sid, "answer": answer, "correct": correct, **extra}


def test_lattts_rows_round_trip_through_jsonl_and_parquet(tmp_path):
    rows = [row(1, 0, "4", True, max_tokens=512, tokens=300, finished=True),
            row(1, 1, None, False, max_tokens=512, tokens=512, finished=False),
            row("p2", "a", "x", False, max_tokens=512)]
    traces = load_traces(write_rows(tmp_path / "t.jsonl", rows))
    assert traces.format == "lattts" and traces.lengths == (512,)
    assert traces.rows[0].problem_id == "1" and traces.rows[1].answer is None and traces.rows[2].tokens is None
    back = load_traces(write_traces(traces.rows, tmp_path / "t.parquet"))
    assert back.rows == traces.rows
    again = load_traces(write_traces(back.rows, tmp_path / "t2.jsonl"))
    assert again.rows == traces.rows


@pytest.mark.parametrize("bad,text", [
    ({"problem_id": 1, "sample_id": 0, "answer": "4"}, "missing field 'correct'"),
    (row(1, 0, "4", "yes"), "field 'correct' must be true or false"),
    (row(1, 0, ["4"], True), "field 'answer' must be a string or null"),
    (row(1, 0, None, True), "'answer' is null"),
    (row(1, 0, "4", True, max_tokens=0), "field 'max_tokens' must be at least 1"),
    (row(1, 0, "4", True, tokens="many"), "field 'tokens' must be an integer"),
    (row(True, 0, "4", True), "field 'problem_id'"),
    ("[1, 2]", "expected a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_malformed_row_names_file_line_and_field(tmp_path, bad, text):
    path = write_rows(tmp_path / "t.jsonl", [row(1, 5, "4", True), "", bad])
    with pytest.raises(UserError) as err:
        load_traces(path)
    assert f"{path}:3" in str(err.value) and text in str(err.value)


def test_cross_row_checks(tmp_path):
    with pytest.raises(UserError, match="duplicate sample"):
        load_traces(write_rows(tmp_path / "a.jsonl", [row(1, 0, "4", True), row(1, 0, "5", False)]))
    with pytest.raises(UserError, match="'max_tokens' must be on every row or on none"):
        load_traces(write_rows(tmp_path / "b.jsonl", [row(1, 0, "4", True, max_tokens=8), row(1, 1, "4", True)]))
    with pytest.raises(UserError, match="graded alike") as err:
        group_answers(load_traces(write_rows(tmp_path / "c.jsonl", [row(1, 0, "4", True), row(1, 1, "4", False)])))
    assert "c.jsonl:2" in str(err.value) and "c.jsonl:1" in str(err.value)
    # the same answer may be graded differently at different lengths or for different problems
    ok = [row(1, 0, "4", True, max_tokens=8), row(1, 0, "4", False, max_tokens=16),
          row(2, 0, "4", False, max_tokens=8), row(2, 0, "5", False, max_tokens=16)]
    assert group_answers(load_traces(write_rows(tmp_path / "d.jsonl", ok))).lengths == (8, 16)
    missing = ok + [row(3, 0, "1", True, max_tokens=8)]
    with pytest.raises(UserError, match="problem '3' has no samples at max_tokens 16"):
        group_answers(load_traces(write_rows(tmp_path / "e.jsonl", missing)))


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="unknown trace format"):
        load_traces(write_rows(tmp_path / "t.jsonl", [{"question": "?", "answer": "4"}]))
    with pytest.raises(UserError, match="does not exist"):
        load_traces(tmp_path / "nope.jsonl")
    (tmp_path / "t.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="cannot read as Parquet"):
        load_traces(tmp_path / "t.parquet")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="no trace rows"):
        load_traces(tmp_path / "empty.jsonl")


def test_qwen_eval_reader_maps_each_sample():
    traces = load_traces(DATA / "qwen2.5-math_math100_n8.excerpt.jsonl")
    assert traces.format == "qwen-eval" and traces.lengths is None and traces.tokens_approximate
    assert len(traces.rows) == 24 and {r.problem_id for r in traces.rows} == {"0", "6", "17"}
    raw = [json.loads(line) for line in (DATA / "qwen2.5-math_math100_n8.excerpt.jsonl").read_text().splitlines()]
    six = next(r for r in raw if r["idx"] == 6)
    rows = [r for r in traces.rows if r.problem_id == "6"]
    assert [r.answer for r in rows] == six["pred"] and [r.correct for r in rows] == six["score"]
    assert [r.tokens for r in rows] == [approx_tokens(t) for t in six["code"]]
    assert all(r.finished for r in rows)  # every response ends in a \boxed answer


def test_converted_package_curve_matches_the_raw_rows():
    raw = load_traces(DATA / "qwen2.5-math_math100_n8.excerpt.jsonl")
    packaged = {(r.problem_id, r.sample_id): r for r in load_traces(PACKAGE_CURVE).rows}
    assert len(packaged) == 800 and sum(r.correct for r in packaged.values()) == 728
    for r in raw.rows:
        assert packaged[(r.problem_id, r.sample_id)] == r


def test_sky_t1_reader_single_sample_lists_and_empty_answers():
    traces = load_traces(DATA / "sky-t1-27b_math500_greedy.excerpt.jsonl")
    by_id = {r.problem_id: r for r in traces.rows}
    assert len(traces.rows) == 4 and all(r.sample_id == "0" for r in traces.rows)
    assert by_id["0"].answer == "(3,\\\\frac{\\pi}{2})" and by_id["0"].correct
    # idx 97: empty ground truth and empty prediction, which the harness scored correct; no answer is no vote
    assert by_id["97"].answer is None and not by_id["97"].correct
    assert by_id["7"].finished is False and by_id["3"].finished is False  # no \boxed: cut off / no final answer
    aime = load_traces(DATA / "sky-t1-32b_aime24_greedy.excerpt.jsonl")
    assert aime.rows[0].answer == "204" and aime.rows[0].correct and aime.rows[0].tokens > 1000


def test_qwen_eval_bad_rows(tmp_path):
    base = {"idx": 1, "pred": ["1", "2"], "score": [True, False]}
    cases = [({**base, "score": [True]}, "one sample"),
             ({**base, "score": [True, False, True]}, "'pred' has 2 answers but 'score' has 3"),
             ({**base, "pred": [], "score": []}, "has no samples"),
             ({**base, "score": [True, "no"]}, "'score' entry 1 must be true or false")]
    for obj, text in cases:
        path = write_rows(tmp_path / "q.jsonl", [base, {**obj, "idx": 2}])
        if text == "one sample":  # one score, several answers: one sample with a multi-part answer
            assert load_traces(path).rows[-1].answer == "1, 2"
            continue
        with pytest.raises(UserError, match=text) as err:
            load_traces(path)
        assert "q.jsonl:2" in str(err.value)


def test_truncation_is_monotone_in_L_and_refuses_what_it_cannot_know(tmp_path):
    rows = []
    for p in range(6):
        for s in range(4):
            rows.append(row(p, s, "right" if (p + s) % 3 else "wrong", bool((p + s) % 3), tokens=100 * (p + s + 1)))
    traces = load_traces(write_rows(tmp_path / "t.jsonl", rows))
    cut = truncate(traces, [128, 256, 512, 1024])
    assert cut.lengths == (128, 256, 512, 1024) and "lower bound" in cut.note
    per_length = group_answers(cut).counts
    correct = [sum(c.n_correct for c in counts) for counts in per_length]
    assert correct == sorted(correct) and correct[-1] == sum(r["correct"] for r in rows)
    with pytest.raises(UserError, match="no 'tokens' count"):
        truncate(load_traces(write_rows(tmp_path / "u.jsonl", [row(1, 0, "4", True)])), [64])
    capped = load_traces(write_rows(tmp_path / "v.jsonl", [row(1, 0, "4", True, tokens=10, max_tokens=512)]))
    with pytest.raises(UserError, match="can only shorten"):
        truncate(capped, [1024])
