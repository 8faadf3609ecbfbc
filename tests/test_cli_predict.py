"""`lattts predict`, `hardware`, `models`, `roofline` through typer's CliRunner."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lattts.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_predict_json_contract():
    res = run("predict", "--budget", "60s", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["budget_s"] == 60.0
    assert out["device"]["name"] and out["device"]["source"]
    assert out["model"] == "s1.1-32B" and out["draft"] == "s1.1-7B"
    assert out["curve"]["name"] and "published summary" in out["curve"]["source"]
    fields = {"branches", "draft_len", "max_tokens", "latency_s", "accuracy"}
    assert fields <= set(out["best"])
    assert 0 < out["best"]["accuracy"] <= 1 and out["best"]["latency_s"] <= 60
    assert set(out["baselines"]) == {"baseline", "branch_wise", "sequence_wise"}
    for point in out["baselines"].values():
        assert fields <= set(point)
    lat = [p["latency_s"] for p in out["frontier"]]
    assert lat == sorted(lat) and len(lat) > 3
    assert out["prompt_tokens"] == 128 and out["prompt_tokens_source"].startswith("assumption")
    given = json.loads(run("predict", "--budget", "60s", "--json", "--prompt-tokens", "128").stdout)
    assert given["prompt_tokens_source"] == "--prompt-tokens (given by the user)"


def test_predict_table_names_sources():
    res = run("predict", "--budget", "1m")
    assert res.exit_code == 0, res.output
    for text in ("latency-optimal", "baseline", "branch-wise", "sequence-wise", "published summary", "datasheet"):
        assert text in res.stdout


def test_predict_html(tmp_path):
    path = tmp_path / "frontier.html"
    res = run("predict", "--budget", "90s", "--html", str(path))
    assert res.exit_code == 0, res.output
    assert path.stat().st_size > 100_000 and "plotly" in path.read_text()[:100_000].lower()


@pytest.mark.parametrize("args,text", [
    (["--budget", "soon"], "cannot parse duration"),
    (["--budget", "-3s"], "cannot parse"),
    (["--budget", "0s"], "positive"),
    (["--budget", "1s"], "fastest"),
    (["--budget", "60s", "--model", "s1.1-31b"], "did you mean"),
    (["--budget", "60s", "--device", "h100-sx"], "did you mean"),
    (["--budget", "60s", "--draft", "Llama-3.1-8B-Instruct"], "vocabularies differ"),
    (["--budget", "60s", "--draft", "self:4"], "--acceptance"),
    (["--budget", "60s", "--acceptance", "1.5"], "[0, 1)"),
    (["--budget", "60s", "--confidence", "1.5"], "strictly between 0 and 1"),
    (["--budget", "60s", "--confidence", "0"], "strictly between 0 and 1"),
    (["--budget", "2s", "--confidence", "0.9"], "lower --confidence"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, text):
    res = run("predict", *args)
    assert res.exit_code == 2, res.output
    assert text in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) <= 2


def test_malformed_config_path(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    res = run("predict", "--budget", "60s", "--model", str(path), "--draft", "none")
    assert res.exit_code == 2 and "num_hidden_layers" in res.output


def test_latency_distribution_in_json_and_table():
    out = json.loads(run("predict", "--budget", "60s", "--json").stdout)
    points = [out["best"], *out["baselines"].values(), *out["frontier"]]
    for p in points:
        assert p["latency_p90_s"] > p["latency_s"] and 0 <= p["p_within_budget"] <= 1
    # along the frontier the chance of finishing in time falls as the mean latency rises
    within = [p["p_within_budget"] for p in out["frontier"]]
    assert within == sorted(within, reverse=True) and within[0] > 0.99 and within[-1] < 0.01
    dist = out["latency_distribution"]
    assert dist["confidence"] is None and "assumption" in dist["device_spread_source"]
    table = run("predict", "--budget", "60s").stdout
    assert "p90" in table and "P(≤T)" in table


def test_confidence_chooses_by_the_probability_of_meeting_the_deadline():
    by_mean = json.loads(run("predict", "--budget", "60s", "--json").stdout)
    sure = json.loads(run("predict", "--budget", "60s", "--confidence", "0.9", "--json").stdout)
    assert by_mean["best"]["p_within_budget"] < 0.9  # the mean fits, but the answer is often late
    best = sure["best"]
    assert (best["branches"], best["draft_len"], best["max_tokens"]) != \
        (by_mean["best"]["branches"], by_mean["best"]["draft_len"], by_mean["best"]["max_tokens"])
    assert best["p_within_budget"] >= 0.9 and best["latency_p90_s"] <= 60.0
    assert best["accuracy"] <= by_mean["best"]["accuracy"]
    for key, point in sure["baselines"].items():
        assert point is None or point["latency_p90_s"] <= 60.0, key
    assert sure["latency_distribution"]["confidence"] == 0.9


@pytest.mark.parametrize("budget", [2.0, 14.0])
def test_an_unreachable_confidence_names_the_likeliest_configuration(budget):
    from lattts.errors import UserError
    from lattts.plan import PlanRequest, build_plan
    from lattts.simulator.search import evaluate_grid, run_prediction

    problem = build_plan(PlanRequest()).problem
    grid = evaluate_grid(problem)
    fits = [grid.point(i, budget) for i in range(len(grid)) if grid.fits[i]]
    likeliest = max(fits, key=lambda p: (p.p_within_budget, -p.latency_s))  # of equal chances, the fastest
    with pytest.raises(UserError) as refused:
        run_prediction(problem, budget, confidence=0.999999)
    assert f"({likeliest.config.label()}) does with " in str(refused.value)
    if likeliest.p_within_budget >= 1e-3:
        assert f"{likeliest.p_within_budget:.1%}" in str(refused.value)


def test_budget_units_agree():
    a = json.loads(run("predict", "--budget", "1.5min", "--json").stdout)
    b = json.loads(run("predict", "--budget", "90s", "--json").stdout)
    assert a["best"] == b["best"]


HEAVY = ("torch", "pandas", "scipy", "plotly", "transformers", "gguf", "pyarrow")


def test_predict_imports_none_of_the_heavy_libraries():
    # what keeps `lattts predict` fast to start (its cold-start time is measured in benchmarks/bench_predict.py,
    # not asserted here: this CPU drifts)
    code = ("import sys; from lattts.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['predict', '--budget', '60s', '--json']); assert r.exit_code == 0, r.output; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [], f"imported: {out.stdout}"


def test_hardware_json_lists_table_and_detection():
    res = run("hardware", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert any(d["key"] == "h100-sxm" for d in out["devices"])
    assert out["detected"]["cpu"]["threads"] >= 1


def test_models_and_roofline(tmp_path):
    res = run("models", "--json")
    assert res.exit_code == 0 and any(m["name"] == "s1.1-32B" for m in json.loads(res.stdout)["models"])
    # s1.1-7B: its KV cache leaves room on one H100 for batches past the ridge (s1.1-32B's stops at B = 32)
    res = run("roofline", "--json", "--model", "s1.1-7B", "--device", "h100-sxm", "--html", str(tmp_path / "r.html"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = out["rows"]
    assert rows[0]["bound"] == "memory" and rows[-1]["groups"]["linear"]["bound"] == "compute"
    assert all(r["memory_bytes"] <= out["usable_memory_bytes"] for r in rows)
    # datasheet ridge 989 TFLOP/s / 3.35 TB/s ~ 295 FLOP/byte, x 0.8 / 0.9 efficiencies ~ 262 rows
    assert 128 <= out["linear_compute_bound_from_batch"] <= 512
    assert (tmp_path / "r.html").exists()
    # the printed ridge in sequences agrees with the first compute-bound batch, in bf16 and in fp32
    for dtype in ("bf16", "fp32"):
        res = run("roofline", "--model", "s1.1-7B", "--device", "h100-sxm", "--dtype", dtype)
        assert res.exit_code == 0, res.output
        about = int(re.search(r"compute-bound\s+at\s+about\s+(\d+)", res.stdout).group(1))
        first = json.loads(run("roofline", "--json", "--model", "s1.1-7B", "--device", "h100-sxm", "--dtype", dtype).stdout)
        knee = first["linear_compute_bound_from_batch"]
        assert knee / 2 <= about <= knee, (dtype, about, knee)
    res = run("roofline", "--device", "h100-sxm", "--dtype", "bfloat16")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("columns", [80, 120])
def test_predict_tables_fit_the_terminal_and_cut_no_value(columns):
    # an 80-column window used to get "laten…", "accur…" and "extrap…" in the answer table
    import os

    env = {**os.environ, "COLUMNS": str(columns)}
    res = subprocess.run([sys.executable, "-m", "lattts", "predict", "--budget", "60s"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("predicted by lattts"))
    end = next(i for i, line in enumerate(lines) if line.startswith("  * within budget"))
    tables = [line for line in lines[start + 1:end] if not line.startswith("Pareto frontier")]  # titles soft-wrap
    assert len(tables) >= 12 and max(len(line) for line in tables) <= columns, "\n".join(tables)
    assert "…" not in res.stdout
    for cell in ("latency-optimal", "accuracy", "extrap-B", "interp-L"):
        assert cell in res.stdout
    assert re.search(r"\b\d{2}\.\d%", "\n".join(tables))  # accuracies whole
