"""`lattts measure`: answer extraction and grading, benchmark reading, the resumable journal, the
engine's per-branch acceptance record, and SmolLM2 end to end (valid traces, resume without
duplicated or lost rows, self-drafted acceptance), plus bad input. No test asserts a time."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app
from lattts.errors import UserError
from lattts.traces import journal
from lattts.traces.answers import extract_boxed, grade, merge_equivalent, normalise_answer
from lattts.traces.benchmark import load_benchmark
from lattts.traces.measure import MeasureConfig, call_seed, summarise_lengths
from lattts.traces.readers import load_traces

runner = CliRunner()
DATA = Path(__file__).parent / "data"
MATH3 = DATA / "math500.excerpt.jsonl"  # 3 MATH-500 rows, see tests/data/README.md


def cli(*args):
    return runner.invoke(app, list(args))


# --- extraction and grading ------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("no box here", None),
    ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("nested \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
    ("first \\boxed{1}, then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{7} and a box cut off \\boxed{\\frac{1}{", "7"),  # the last complete box wins
    ("\\boxed{\\frac{1}{", None),
    ("escaped braces \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("undelimited \\boxed 5$ end", "5"),
    ("\\fbox{12} then \\boxed{13}", "13"),
    ("empty \\boxed{}", ""),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_normalise_keeps_meaning_and_drops_cosmetics():
    assert normalise_answer(" $\\left( 3, \\frac{\\pi}{2} \\right)$ ") == "(3,\\frac{\\pi}{2})"
    assert normalise_answer("\\dfrac{14}{3}.") == "\\frac{14}{3}"
    assert normalise_answer("1\\,000") == "1000"
    assert normalise_answer("\\pi r^2") == "\\pi r^2"  # a space between letters is meaningful
    assert normalise_answer("  ") is None


@pytest.mark.parametrize("answer,reference", [
    ("0.5", "\\frac{1}{2}"),
    ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\frac{14}{3}", "\\dfrac{14}{3}"),
    ("1+x^2", "x^2+1"),
    ("\\{2,1\\}", "\\{1,2\\}"),
])
def test_grading_is_mathematical_where_strings_differ(answer, reference):
    assert answer != reference
    assert grade(answer, reference)


@pytest.mark.parametrize("answer,reference", [("3", "2"), ("0.49", "\\frac{1}{2}"), (None, "1"), ("(3,\\pi)", "(3,\\frac{\\pi}{2})")])
def test_grading_rejects_wrong_answers(answer, reference):
    assert not grade(answer, reference)


def test_equivalent_answers_vote_together():
    assert merge_equivalent(["0.5", None, "\\frac{1}{2}", "2", "2.0", "0.5"]) == ["0.5", None, "0.5", "2", "2", "0.5"]


# --- benchmark files -------------------------------------------------------------------------------

def test_benchmark_ids_from_unique_id_id_or_position(tmp_path):
    assert [p.id for p in load_benchmark(MATH3).problems] == [
        "test/precalculus/807.json", "test/algebra/2584.json", "test/number_theory/572.json"]
    aime = tmp_path / "aime.jsonl"
    aime.write_text('{"id": 60, "problem": "p", "answer": 204}\n\n{"id": "I-1", "problem": "q", "answer": "70"}\n')
    assert [(p.id, p.answer) for p in load_benchmark(aime).problems] == [("60", "204"), ("I-1", "70")]
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"problem": "p", "answer": "1"}\n{"problem": "q", "answer": "2"}\n')
    assert [p.id for p in load_benchmark(bare).problems] == ["0", "1"]


@pytest.mark.parametrize("content,message", [
    ('{"problem": "p", "answer": "1"}\n{"problem": "q"}\n', "bench.jsonl:2: missing field 'answer'"),
    ('{"answer": "1"}\n', "bench.jsonl:1: missing field 'problem'"),
    ('{"problem": "p", "answer": "1"\n', "bench.jsonl:1: not valid JSON"),
    ('{"id": 1, "problem": "p", "answer": "1"}\n{"id": 1, "problem": "q", "answer": "2"}\n', "repeats"),
])
def test_bad_benchmark_rows_name_their_line(tmp_path, content, message):
    path = tmp_path / "bench.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_benchmark(path)


# --- the journal -----------------------------------------------------------------------------------

def fake_rows(problem, budget, run_id, samples=2):
    return [{"problem_id": problem, "sample_id": s, "answer": "1", "correct": True, "max_tokens": budget,
             "tokens": budget, "finished": True, "latency_s": 0.5, "run_id": run_id} for s in range(samples)]


def test_resume_keeps_whole_batches_and_drops_the_rest(tmp_path):
    out = tmp_path / "t.jsonl"
    journal.append_batch(out, fake_rows("a", 16, "r1"))
    journal.append_batch(out, fake_rows("b", 16, "r1"))
    whole = out.read_text()
    line = json.dumps(fake_rows("c", 16, "r1")[0]) + "\n"
    out.write_text(whole + line + line[:20])  # a crash in the middle of batch c's write
    resumed = journal.resume(out, "r1", {}, samples=2)
    assert resumed.done == {("a", 16), ("b", 16)}
    assert resumed.dropped_rows == 1 and resumed.dropped_partial_line
    assert out.read_text() == whole  # ready to append batch c again


def test_resume_refuses_other_arguments_and_names_them(tmp_path):
    out = tmp_path / "t.jsonl"
    before = MeasureConfig("smollm2-135m", "abc", 3, 0.7, 0, None, 0, "cpu", "fp32")
    now = MeasureConfig("smollm2-135m", "abc", 2, 0.7, 0, None, 0, "cpu", "fp32")
    assert before.run_id != now.run_id
    journal.start(out, {"run_id": before.run_id, "config": before.to_json()})
    journal.append_batch(out, fake_rows("a", 16, before.run_id, samples=3))
    with pytest.raises(UserError, match="different arguments \\(samples 3 there, 2 now\\).*different --out, or delete"):
        journal.resume(out, now.run_id, now.to_json(), samples=2)


def test_batch_seeds_are_stable_and_distinct():
    assert call_seed(0, "p", 16) == call_seed(0, "p", 16)
    assert len({call_seed(0, "p", 16), call_seed(0, "p", 32), call_seed(0, "q", 16), call_seed(1, "p", 16)}) == 4


def test_summary_counts_each_call_once():
    rows = fake_rows("a", 16, "r") + [dict(r, correct=False, answer="2", latency_s=1.5) for r in fake_rows("b", 16, "r")]
    (s,) = summarise_lengths(rows)
    assert (s.problems, s.samples, s.accuracy, s.latency_s, s.alpha) == (2, 4, 0.5, 1.0, None)


# --- the engine's per-branch record ----------------------------------------------------------------

def test_each_branch_records_the_rounds_that_made_its_tokens():
    from engine_helpers import gen, tiny_model
    from lattts.engine.generate import Draft

    target = tiny_model(seed=0)
    res = gen(target, [1, 2, 3, 4], draft=Draft(target, 2), branches=3, max_tokens=24, min_tokens=24,
              temperature=1.0, seed=3, draft_len=3)
    assert len(res.accepted_per_branch) == 3
    for out, rounds in zip(res.outputs, res.accepted_per_branch):
        # the prefill gives the first token and each round accepted + 1: its last round was needed
        assert len(out.tokens) == 24
        assert 1 + sum(a + 1 for a in rounds[:-1]) < 24 <= 1 + sum(a + 1 for a in rounds)
    # lock-step: the batch ran as many verify passes as its slowest branch had rounds
    verify = [p for p in res.passes if p.phase == "verify"]
    assert len(verify) == res.rounds == max(len(r) for r in res.accepted_per_branch)
    assert gen(target, [1, 2, 3], max_tokens=4).accepted_per_branch is None


# --- SmolLM2 end to end ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_home(tmp_path_factory):
    """One lattts home for this module's SmolLM2 runs, so the model is fetched and converted once."""
    return tmp_path_factory.mktemp("smollm2-home")


@pytest.fixture
def smollm2(model_home, isolated_home, monkeypatch):
    monkeypatch.setenv("LATTTS_HOME", str(model_home))


def lines_of(path):
    return path.read_text().splitlines()


def keys(path):
    return [(r["problem_id"], r["max_tokens"], r["sample_id"]) for r in map(json.loads, lines_of(path))]


def test_smollm2_measures_resumes_and_never_duplicates(smollm2, tmp_path):
    out = tmp_path / "traces.jsonl"
    args = ["measure", "--model", "smollm2-135m", "--benchmark", str(MATH3), "--samples", "2", "--lengths", "16,32",
            "--temperature", "0.8", "--seed", "7", "--out", str(out)]
    first = cli(*args, "--limit", "1")
    assert first.exit_code == 0, first.output
    assert "accuracy (B=1)" in first.output
    after_one = lines_of(out)
    assert len(after_one) == 4  # 1 problem x 2 lengths x 2 samples

    res = cli(*args, "--limit", "3", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["batches"] == {"measured": 4, "already_in_file": 2} and summary["rows"] == 12
    assert [b["max_tokens"] for b in summary["per_length"]] == [16, 32]
    assert lines_of(out)[:4] == after_one  # the first problem's rows untouched
    assert sorted(keys(out)) == sorted({(p, L, s) for p in {k[0] for k in keys(out)} for L in (16, 32) for s in (0, 1)})
    assert len(set(keys(out))) == 12

    rows = [json.loads(line) for line in lines_of(out)]
    assert all(r["tokens"] == r["max_tokens"] and r["latency_s"] > 0 for r in rows)  # budget forcing: exactly L
    assert all(isinstance(r["finished"], bool) and (r["answer"] is not None or not r["correct"]) for r in rows)
    assert all("accepted_per_round" not in r for r in rows)
    traces = load_traces(out)
    assert traces.lengths == (16, 32) and len(traces.rows) == 12
    acc = cli("accuracy", "--traces", str(out), "--branches", "1,2", "--json")
    assert acc.exit_code == 0, acc.output
    assert json.loads(acc.stdout)["problems"] == 3

    # a crash while the last batch was being written: one whole row and part of the next survive
    complete = out.read_text()
    lines = lines_of(out)
    out.write_text("\n".join(lines[:-2]) + "\n" + lines[-2] + "\n" + lines[-1][:25])
    res = cli(*args, "--limit", "3", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["batches"]["measured"] == 1 and summary["rows"] == 12
    assert "dropped 1 rows" in " ".join(summary["notes"])
    assert len(keys(out)) == len(set(keys(out))) == 12
    assert lines_of(out)[:10] == complete.splitlines()[:10]

    # nothing left to do: no model load, file unchanged
    again = out.read_text()
    res = cli(*args, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["batches"]["measured"] == 0
    assert out.read_text() == again

    # other arguments on the same file are refused before any work
    res = cli(*[a if a != "0.8" else "0.5" for a in args])
    assert res.exit_code == 2 and "different arguments" in res.output and "temperature 0.8 there, 0.5 now" in res.output


def test_smollm2_self_draft_records_acceptance(smollm2, tmp_path):
    out = tmp_path / "spec.jsonl"
    res = cli("measure", "--model", "smollm2-135m", "--benchmark", str(MATH3), "--samples", "2", "--lengths", "16",
              "--limit", "1", "--draft", "self:15", "--draft-len", "3", "--temperature", "0.8", "--seed", "1",
              "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    alpha = json.loads(res.stdout)["per_length"][0]["alpha"]
    assert 0 <= alpha <= 1
    rows = [json.loads(line) for line in lines_of(out)]
    assert len(rows) == 2
    for r in rows:
        assert r["draft_len"] == 3 and r["accepted_per_round"]
        assert all(0 <= a <= 3 for a in r["accepted_per_round"])
        assert 1 + sum(a + 1 for a in r["accepted_per_round"]) >= 16
    summary = cli("acceptance", str(out), "--json")
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["alpha"] == pytest.approx(alpha)
    pred = cli("predict", "--acceptance", str(out), "--budget", "60s", "--json")
    assert pred.exit_code == 0, pred.output
    assert "measured" in json.loads(pred.stdout)["acceptance"]["source"]
    assert load_traces(out).lengths == (16,)


# --- bad input -------------------------------------------------------------------------------------

def test_bad_input_is_one_line_with_exit_code_2(tmp_path):
    no_answer = tmp_path / "bench.jsonl"
    no_answer.write_text('{"problem": "p", "answer": "1"}\n{"problem": "q"}\n')
    base = ["measure", "--model", "smollm2-135m", "--out", str(tmp_path / "o.jsonl")]
    cases = [
        (["--benchmark", str(tmp_path / "none.jsonl"), "--samples", "2", "--lengths", "16"], "does not exist"),
        (["--benchmark", str(no_answer), "--samples", "2", "--lengths", "16"], "bench.jsonl:2: missing field 'answer'"),
        (["--benchmark", str(MATH3), "--samples", "0", "--lengths", "16"], "--samples 0"),
        (["--benchmark", str(MATH3), "--samples", "2", "--lengths", "16,x"], "'x' is not an integer"),
        (["--benchmark", str(MATH3), "--samples", "2", "--lengths", "16,-4"], "--lengths"),
        (["--benchmark", str(MATH3), "--samples", "2", "--lengths", "16", "--draft-len", "3"], "needs a draft"),
        (["--benchmark", str(MATH3), "--samples", "2", "--lengths", "16", "--draft", "self:4"], "needs --draft-len"),
    ]
    for args, text in cases:
        res = cli(*base, *args)
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output and "Traceback" not in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1, res.output
