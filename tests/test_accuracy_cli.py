"""`lattts accuracy`, `curves`, `acceptance`, `traces convert`, and measured inputs to `predict`,
through typer's CliRunner."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app

runner = CliRunner()
DATA = Path(__file__).parent / "data"
QWEN = Path(__file__).parents[1] / "lattts" / "data" / "curves" / "qwen2.5-math-math100-n8.jsonl"
QWEN_RAW = DATA / "qwen2.5-math_math100_n8.excerpt.jsonl"
SKY_RAW = DATA / "sky-t1-27b_math500_greedy.excerpt.jsonl"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def multi_budget_traces(path):
    rows = [{"problem_id": p, "sample_id": s, "answer": "ok" if s < L // 512 else f"w{s % 2}",
             "correct": s < L // 512, "max_tokens": L, "tokens": L // 2}
            for L in (1024, 2048, 4096) for p in range(6) for s in range(8)]
    return jsonl(path, rows)


def test_accuracy_json_contract_on_the_qwen_traces():
    res = run("accuracy", "--traces", QWEN, "--branches", "1,2,4,8,16", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["problems"] == 100 and out["samples_per_problem"] == {"min": 8, "max": 8} and out["lengths"] is None
    curve = {p["branches"]: p for p in out["curve"]}
    assert set(curve) == {1, 2, 4, 8, 16}
    for p in out["curve"]:
        assert {"branches", "max_tokens", "accuracy", "ci_low", "ci_high", "pass_at_k", "extrapolated"} <= set(p)
        assert p["max_tokens"] is None and p["ci_low"] <= p["accuracy"] <= p["ci_high"] <= 1
        assert p["pass_at_k"] >= p["accuracy"] - 1e-9
        assert p["extrapolated"] == (p["branches"] > 8)
    assert curve[1]["accuracy"] == pytest.approx(0.91)
    assert curve[8]["accuracy"] > curve[1]["accuracy"]
    assert any("extrapolated" in n for n in out["notes"])


def test_accuracy_reads_raw_files_and_truncates_single_budget_ones(tmp_path):
    res = run("accuracy", "--traces", QWEN_RAW, "--json", "--branches", "1,8")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["format"] == "qwen-eval" and out["problems"] == 3 and out["tokens"]["approximate"]
    res = run("accuracy", "--traces", SKY_RAW, "--json", "--branches", "1", "--lengths", "256,1024,4096")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["truncated"] and out["lengths"] == [256, 1024, 4096]
    acc = [p["accuracy"] for p in out["curve"]]
    assert [p["max_tokens"] for p in out["curve"]] == [256, 1024, 4096] and acc == sorted(acc)


def test_accuracy_multi_budget_table_and_html(tmp_path):
    path = multi_budget_traces(tmp_path / "t.jsonl")
    res = run("accuracy", "--traces", path, "--lengths", "512,1024,1448,4096", "--branches", "1,3,16",
              "--html", tmp_path / "a.html")
    assert res.exit_code == 0, res.output
    for text in ("interpolated", "extrapolated", "outside measured lengths", "pass@k", "95% CI"):
        assert text in res.stdout
    assert (tmp_path / "a.html").stat().st_size > 100_000


def test_curves_lists_fitted_and_measured():
    res = run("curves", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["curves"]}
    assert rows["s1.1-32b-math500-paper"]["kind"] == "fitted"
    qwen = rows["qwen2.5-math-math100-n8"]
    assert qwen["kind"] == "measured" and qwen["branches"] == {"min": 1, "max": 8} and qwen["lengths"] is None
    assert "QwenLM/Qwen2.5-Math@a45202b" in qwen["source"] and "MIT" in qwen["source"]
    res = run("curves")
    assert res.exit_code == 0 and "qwen2.5-math-math100-n8" in res.stdout


def test_predict_with_embedded_measured_curve():
    # without a draft, the curve's one length (2606 tokens) takes 64 s on the measured H100 profile: 90 s fits it
    res = run("predict", "--budget", "90s", "--curve", "qwen2.5-math-math100-n8", "--draft", "none", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["curve"]["kind"] == "measured" and "Qwen2.5-Math" in out["curve"]["source"]
    assert 1 <= out["best"]["branches"] <= 8 and 0.9 <= out["best"]["accuracy"] <= 0.93


def test_predict_with_trace_file_curves(tmp_path):
    path = multi_budget_traces(tmp_path / "t.jsonl")
    res = run("predict", "--budget", "30s", "--curve", path, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert str(path) in out["curve"]["source"] and out["curve"]["kind"] == "measured"
    assert 1024 <= out["best"]["max_tokens"] <= 4096 and out["best"]["branches"] <= 8
    # single-budget without token counts: predict asks for the length budget, then uses it
    bare = jsonl(tmp_path / "bare.jsonl", [{"problem_id": p, "sample_id": s, "answer": str(s % 3), "correct": s % 3 == 0}
                                           for p in range(4) for s in range(6)])
    res = run("predict", "--budget", "30s", "--curve", bare)
    assert res.exit_code == 2 and "--lengths" in res.output
    res = run("predict", "--budget", "30s", "--curve", bare, "--lengths", "2048", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["best"]["max_tokens"] == 2048
    res = run("predict", "--budget", "30s", "--curve", QWEN_RAW, "--json")  # raw format, auto-detected
    assert res.exit_code == 0, res.output


def test_acceptance_command_and_predict_with_measured_acceptance(tmp_path):
    path = jsonl(tmp_path / "acc.jsonl", [{"draft_len": 4, "accepted_per_round": [4, 3, 0, 4, 2, 4, 1, 4]}])
    res = run("acceptance", path, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["draft_len"] == 4 and out["rounds"] == 8 and out["histogram"] == [1, 1, 1, 1, 4]
    assert out["tokens_per_round"] == pytest.approx(22 / 8 + 1) and 0 < out["alpha"] < 1
    table = run("acceptance", path)
    assert table.exit_code == 0 and "weighted by rounds" in table.stdout and "mean acceptance of" not in table.stdout
    assert [r["basis"] for r in out["per_draft_len"]][:5] == ["derived"] * 3 + ["measured", "extrapolated"]
    res = run("predict", "--budget", "60s", "--acceptance", path, "--json")
    assert res.exit_code == 0, res.output
    acc = json.loads(res.stdout)["acceptance"]
    assert str(path) in acc["source"] and acc["alpha"] == pytest.approx(out["alpha"])
    assert acc["measured_positions"] == 4 and acc["extrapolated"]  # the search runs gamma up to 8
    assert acc["draft_lens"]["4"] == "measured" and acc["draft_lens"]["2"] == "derived" and acc["draft_lens"]["8"] == "extrapolated"
    res = run("predict", "--budget", "60s", "--acceptance", path)
    assert "extrapolated up to γ=8" in res.stdout
    res = run("predict", "--budget", "60s", "--acceptance", path, "--max-draft-len", "4", "--json")
    assert not json.loads(res.stdout)["acceptance"]["extrapolated"]


def test_traces_convert_round_trip(tmp_path):
    res = run("traces", "convert", SKY_RAW, tmp_path / "out.parquet", "--truncate", "512,2048", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["lengths"] == [512, 2048]
    res = run("accuracy", "--traces", tmp_path / "out.parquet", "--branches", "1", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["lengths"] == [512, 2048]


def bad_files(tmp):
    good = {"problem_id": 1, "sample_id": 0, "answer": "4", "correct": True}
    return {
        "malformed": (jsonl(tmp / "m.jsonl", [good, {**good, "sample_id": 1, "correct": "yes"}]), "m.jsonl:2"),
        "no samples": (jsonl(tmp / "e.jsonl", [{"idx": 0, "pred": [], "score": []}]), "has no samples"),
        "inconsistent": (jsonl(tmp / "i.jsonl", [good, {**good, "sample_id": 1, "correct": False}]), "graded alike"),
        "missing budget": (jsonl(tmp / "b.jsonl", [{**good, "max_tokens": 8}, {**good, "problem_id": 2, "max_tokens": 16}]),
                           "no samples at max_tokens"),
        "unknown format": (jsonl(tmp / "u.jsonl", [{"question": "?"}]), "unknown trace format"),
        "not json": ((tmp / "x.csv").write_text("a,b\n1,2\n") and tmp / "x.csv", "not valid JSON"),
    }


@pytest.mark.parametrize("case", ["malformed", "no samples", "inconsistent", "missing budget", "unknown format", "not json"])
def test_bad_trace_files_are_one_line_and_exit_code_2(tmp_path, case):
    path, text = bad_files(tmp_path)[case]
    for args in (["accuracy", "--traces", path], ["predict", "--budget", "60s", "--curve", path]):
        res = run(*args)
        assert res.exit_code == 2, res.output
        assert text in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) <= 3  # one line, soft-wrapped at most


@pytest.mark.parametrize("args,text", [
    (["accuracy", "--traces", QWEN, "--branches", "0"], "must be 1..128"),
    (["accuracy", "--traces", QWEN, "--branches", "1,x"], "not an integer"),
    (["accuracy", "--traces", "nope.jsonl"], "does not exist"),
    (["accuracy", "--traces", QWEN, "--resamples", "0"], "--resamples"),
    (["predict", "--budget", "60s", "--curve", "qwen2.5-math-math10-n8"], "did you mean"),
    (["predict", "--budget", "60s", "--acceptance", "nope.jsonl"], "no such file"),
    (["acceptance", "nope.jsonl"], "does not exist"),
])
def test_bad_arguments_are_one_line_and_exit_code_2(args, text):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert text in res.output and "Traceback" not in res.output


def test_predict_with_a_measured_curve_imports_neither_torch_nor_pandas():
    code = ("import sys; from lattts.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['predict', '--budget', '60s', '--curve', 'qwen2.5-math-math100-n8', '--json']); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules and 'pandas' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
