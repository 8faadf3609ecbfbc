"""What `lattts predict` says its numbers rest on (issue 15): whose accuracy curve (a stand-in for
another model), where an accuracy is extrapolated in B or interpolated in L, what absolute latencies
assume without a calibration; and that its tables show the frontier around the budget in one unit
per column."""

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAPER_TABLE1 = ROOT / "lattts" / "data" / "paper" / "table1_s1.1-32b_math500.csv"
PAPER_FIT_B = (1, 16)  # the paper curve: means from Table 1's baseline (B=1), concentrations from B=16 (App. A.2)
LLAMA = ("--model", "llama-3.1-8b", "--draft", "eagle3", "--device", "a100-sxm-80gb")
CPU_PROFILE = "tests/data/golden/cpu-profile.json"  # a calibrated profile (see test_golden.py)


WIDE = {"COLUMNS": "200"}  # tables unwrapped (they hold at any width; wrapped cells are joined below)


def invoke(*args):
    res = CliRunner().invoke(app, list(args), env=WIDE)
    assert res.exit_code == 0, res.output
    return res


def predict_json(*args):
    return json.loads(invoke("predict", *args, "--json").stdout)


def points(out):
    return [out["best"], *(p for p in out["baselines"].values() if p), *out["frontier"]]


def paper_lengths():
    with PAPER_TABLE1.open() as f:
        return sorted({int(r["max_tokens"]) for r in csv.DictReader(f)})


def table_rows(text: str, title_start: str) -> list[list[str]]:
    """The cells of each body row of the table whose title starts with ``title_start``; a cell wrapped
    over several lines is joined with spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    rows, body = [], False
    for line in lines[start + 1:]:
        if line.startswith(("┡", "├")):
            body = True
            continue
        if line.startswith("└"):
            break
        if body and line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if any(cells[1:4]) or not rows:  # a row's first line has B, γ, L; wrapped continuation lines do not
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    return rows


def header(text: str, title_start: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    return " ".join(line for line in lines[start + 1:start + 5] if line.startswith("┃"))


# ---- item 3: extrapolated in B, interpolated in L, per row -------------------------------------

def test_every_json_row_names_its_accuracy_basis():
    out = predict_json("--budget", "60s")
    lengths = paper_lengths()
    seen = set()
    for p in points(out):
        basis = p["accuracy_basis"]
        extrapolated = not PAPER_FIT_B[0] <= p["branches"] <= PAPER_FIT_B[1]
        interpolated = p["max_tokens"] not in lengths and lengths[0] < p["max_tokens"] < lengths[-1]
        assert basis["extrapolated_B"] == extrapolated and basis["interpolated_L"] == interpolated, p
        want = "extrapolated-B" if extrapolated else "interpolated-L" if interpolated else "fitted"
        assert basis["basis"] == want, p
        assert basis["curve_model"] == "s1.1-32B" and basis["stand_in"] is False
        seen.add(want)
    assert seen == {"extrapolated-B", "interpolated-L", "fitted"}  # the default answer exercises all three
    assert out["best"]["branches"] > 16 and out["best"]["accuracy_basis"]["basis"] == "extrapolated-B"


def test_the_table_marks_extrapolation_and_interpolation_per_row():
    out = predict_json("--budget", "60s")
    text = invoke("predict", "--budget", "60s").stdout
    rows = table_rows(text, "Pareto frontier")
    assert rows
    by_config = {(p["branches"], p["draft_len"], p["max_tokens"]): p for p in out["frontier"]}
    for cells in rows:
        point = by_config[tuple(int(c) for c in cells[1:4])]
        basis = point["accuracy_basis"]
        assert ("extrap-B" in cells[-1]) == basis["extrapolated_B"], cells
        assert ("interp-L" in cells[-1]) == basis["interpolated_L"], cells
    assert "extrap-B: B outside 1..16" in " ".join(text.split())


def test_curves_lists_the_real_branch_range():
    out = json.loads(invoke("curves", "--json").stdout)
    by_name = {c["name"]: c for c in out["curves"]}
    paper = by_name["s1.1-32b-math500-paper"]
    assert (paper["branches"]["min"], paper["branches"]["max"]) == PAPER_FIT_B
    assert paper["model"] == "s1.1-32B"
    assert by_name["qwen2.5-math-math100-n8"]["branches"]["max"] == 8  # 8 samples per problem
    text = invoke("curves").stdout
    assert " any " not in text and "1..16" in text


def test_basis_of_a_measured_curve_follows_its_samples():
    from lattts.simulator.accuracy import accuracy_basis
    from lattts.traces.curve import embedded_curve

    curve = embedded_curve("qwen2.5-math-math100-n8")  # single budget, 8 samples per problem
    assert accuracy_basis(curve, 8, curve.full_tokens).basis == "measured"
    assert accuracy_basis(curve, 16, curve.full_tokens).basis == "extrapolated-B"


# ---- item 2: a curve is evidence about its own model only ----------------------------------------

def test_another_models_default_curve_is_a_marked_stand_in():
    res = CliRunner().invoke(app, ["predict", "--budget", "60s", *LLAMA, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["curve"]["model"] == "s1.1-32B" and out["curve"]["stand_in"] is True
    assert out["curve"]["chosen"] is False
    for p in points(out):
        assert p["accuracy_basis"]["stand_in"] is True and p["accuracy_basis"]["curve_model"] == "s1.1-32B"
    warning = res.stderr.strip()
    assert len(warning.splitlines()) == 1 and "stand-in" in warning and "s1.1-32B" in warning
    assert "--curve" in warning and "lattts curves" in warning


def test_the_stand_in_is_named_on_every_accuracy_of_the_table():
    res = CliRunner().invoke(app, ["predict", "--budget", "60s", *LLAMA], env=WIDE)
    assert res.exit_code == 0, res.output
    text = res.stdout
    rows = table_rows(text, "predicted by lattts") + table_rows(text, "Pareto frontier")
    assert len(rows) >= 5
    accuracy_cells = [c for cells in rows for c in cells if re.fullmatch(r"\d+\.\d%.*", c)]
    assert len(accuracy_cells) == len(rows) and all(c.endswith("†") for c in accuracy_cells)
    flat = " ".join(text.split())
    assert "† stand-in: every accuracy is from the curve of s1.1-32B" in flat
    assert "stand-in curve of s1.1-32B" in flat  # in the answer table's title


def test_a_chosen_stand_in_warns_no_more_but_stays_marked():
    res = CliRunner().invoke(app, ["predict", "--budget", "60s", *LLAMA, "--curve", "s1.1-32b-math500-paper", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["curve"]["stand_in"] is True and out["curve"]["chosen"] is True
    assert res.stderr.strip() == ""
    assert all(p["accuracy_basis"]["stand_in"] for p in points(out))


def test_the_models_own_curve_is_no_stand_in():
    res = CliRunner().invoke(app, ["predict", "--budget", "60s", "--json"])
    out = json.loads(res.stdout)
    assert out["curve"]["stand_in"] is False and res.stderr.strip() == ""
    assert "†" not in invoke("predict", "--budget", "60s").stdout


def test_a_trace_file_from_measure_knows_its_model(tmp_path):
    from lattts.plan import PlanRequest, build_plan

    src = ROOT / "tests" / "data" / "qwen2.5-math_math100_n8.excerpt.jsonl"
    traces = tmp_path / "smol.jsonl"
    traces.write_text(src.read_text())
    common = dict(model="smollm2-135m", draft="none", profile_file=CPU_PROFILE, lengths=(4096,))
    unknown = build_plan(PlanRequest(curve=str(traces), **common))
    assert unknown.curve_use.model is None and unknown.curve_use.stand_in is None
    (tmp_path / "smol.jsonl.run.json").write_text(json.dumps({"config": {"model": "smollm2-135m"}}))
    own = build_plan(PlanRequest(curve=str(traces), **common))
    assert own.curve_use.model == "smollm2-135m" and own.curve_use.stand_in is False
    other = build_plan(PlanRequest(curve=str(traces), **(common | {"model": "s1.1-32B"})))
    assert other.curve_use.stand_in is True


# ---- item 5: what absolute latencies assume ------------------------------------------------------

def test_absolute_latencies_say_what_they_assume_without_a_calibration():
    out = predict_json("--budget", "60s")
    basis = out["latency_basis"]
    assert basis["calibrated"] is False
    assert out["device"]["name"] in basis["assumes"] and "not calibrated" in basis["assumes"]
    assert re.search(r"\d+% of the datasheet", basis["assumes"])  # the stated efficiency
    check = basis["paper_check"]
    with PAPER_TABLE1.open() as f:
        paper = next(float(r["latency_s"]) for r in csv.DictReader(f)
                     if r["strategy"] == "baseline" and r["max_tokens"] == "4096")
    assert check["paper_latency_s"] == paper  # 280.6 s, paper Table 1
    assert check["predicted_latency_s"] < paper  # idealised: lattts is faster than the paper's real run
    flat = " ".join(invoke("predict", "--budget", "60s").stdout.split())
    assert "absolute" in flat and f"took {paper:g} s" in flat and "idealised" in flat


def test_a_datasheet_profile_says_so():
    out = predict_json("--budget", "60s", "--device", "h200")
    assert out["device"]["kind"] == "datasheet" and "datasheet" in out["latency_basis"]["assumes"]


def test_a_calibrated_profile_needs_no_such_note():
    args = ("--profile", CPU_PROFILE, "--model", "smollm2-135m", "--draft", "none",
            "--curve", "qwen2.5-math-math100-n8", "--budget", "10min")
    out = predict_json(*args)
    assert out["latency_basis"] == {"calibrated": True, "assumes": None, "paper_check": None}
    assert "absolute" not in invoke("predict", *args).stdout


# ---- item 4: the frontier table shows the budget and the answer --------------------------------

@pytest.mark.parametrize("budget", ["60s", "5min"])
def test_frontier_table_shows_the_answer_and_points_past_the_budget(budget):
    out = predict_json("--budget", budget)
    text = invoke("predict", "--budget", budget).stdout
    rows = table_rows(text, "Pareto frontier")
    best = (out["best"]["branches"], out["best"]["draft_len"], out["best"]["max_tokens"])
    shown = [tuple(int(c) for c in cells[1:4]) for cells in rows]
    assert best in shown and rows[shown.index(best)][0] == "→"
    slower = [p for p in out["frontier"] if p["latency_s"] > out["budget_s"]]
    if slower:  # the table reaches past the budget
        assert (slower[0]["branches"], slower[0]["draft_len"], slower[0]["max_tokens"]) in shown
    assert len(rows) == 8


def test_frontier_rows_sets_how_many_around_the_answer():
    out = predict_json("--budget", "60s")
    best = (out["best"]["branches"], out["best"]["draft_len"], out["best"]["max_tokens"])
    for n in (1, 3, 100):
        rows = table_rows(invoke("predict", "--budget", "60s", "--frontier-rows", str(n)).stdout, "Pareto frontier")
        assert len(rows) == min(n, len(out["frontier"]))
        assert best in [tuple(int(c) for c in cells[1:4]) for cells in rows]


def test_frontier_window():
    from lattts.report.tables import frontier_window
    from lattts.simulator.search import Point

    front = [Point(1, 0, 1000 + i, latency_s=float(i), accuracy=i / 100) for i in range(30)]
    assert frontier_window(front, front[20], 20.5, 8) == range(16, 24)  # 4 faster, the answer, 3 slower
    assert frontier_window(front, front[29], 40.0, 8) == range(22, 30)  # the answer is the last point
    assert frontier_window(front, front[1], 1.5, 8) == range(0, 8)
    assert frontier_window(front, None, 12.0, 5) == range(10, 15)  # no answer: around the last within budget


# ---- item 10: one unit per column, a title that is not the paper's -----------------------------

@pytest.mark.parametrize("args", [("--budget", "60s"), ("--budget", "60s", *LLAMA), ("--budget", "5min")])
def test_one_duration_unit_per_column(args):
    text = invoke("predict", *args).stdout
    for title in ("predicted by lattts", "Pareto frontier"):
        head = header(text, title)
        units = re.findall(r"\((ms|s|min|h)\)", head)
        assert len(units) == 2 and len(set(units)) == 1, head  # latency and p90, one unit, in the header
        for cells in table_rows(text, title):
            for cell in cells[4:6] if title == "predicted by lattts" else cells[4:6]:
                assert re.fullmatch(r"[\d.]+( \*)?", cell), cells  # a bare number: the unit is the header's


def test_column_unit_and_numbers():
    from lattts.units import column_unit, format_duration_in

    assert column_unit(103.0) == "s" and column_unit(153.0) == "s"  # not '2.55 min' beside '103 s'
    assert column_unit(0.5) == "ms" and column_unit(4000.0) == "min" and column_unit(1e6) == "h"
    assert format_duration_in(57.0, "s", trailing_zeros=True) == "57.0"
    assert format_duration_in(10.9, "min") == "0.182"


def test_answer_table_title_does_not_read_as_the_papers_numbers():
    text = " ".join(invoke("predict", "--budget", "60s").stdout.split())
    assert "answer and the paper's strategies" not in text
    assert "predicted by lattts" in text and "not the paper's" in text
