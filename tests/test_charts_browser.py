"""Every HTML chart lattts writes, opened in headless Chromium and read back from the live page.

Each command writes its chart from small inputs (predict and roofline on the H100 datasheet, accuracy
from constructed traces, calibrate from timings of a known profile, validate on a fake engine whose
runs take a known multiple of the prediction). In the browser, plotly's own layout (``gd._fullLayout``)
must give every axis a title with units and a finite range that holds all its data and runs at most
a decade past it, and every annotation and shape must sit inside its axis. A screenshot and the values
checked are kept in artifacts/charts/ (the CI log prints that path).

Without chromium the test is skipped, except under CI (``CI`` set), where it fails: .ci/run installs it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from chart_checks import READ_CHART_JS, READY_JS, problems
from chromium import Browser, find_chromium
from lattts.cli import app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "charts"
GOLDEN_PROFILE = ROOT / "tests" / "data" / "golden" / "cpu-profile.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing under CI; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    b = Browser(binary)
    yield b
    b.close()


def invoke(*args) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


def traces_at_three_lengths(path: Path) -> Path:
    """8 samples of 6 problems at L = 1024, 2048, 4096; more are right the longer they may think."""
    rows = [{"problem_id": p, "sample_id": s, "answer": "ok" if s < L // 512 + p % 3 - 1 else f"w{s % 3}",
             "correct": s < L // 512 + p % 3 - 1, "max_tokens": L, "tokens": L // 2}
            for L in (1024, 2048, 4096) for p in range(6) for s in range(8)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def timings_of_a_known_profile(path: Path) -> Path:
    """Whole-pass timings of three CPU shapes on the quick grid, as the golden CPU profile prices them (3% noise)."""
    from lattts.calibrate.grid import cpu_grid
    from lattts.hardware.profiles import load_profile
    from lattts.models.registry import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.roofline import pass_time

    deploy, rng = Deployment.on(load_profile(str(GOLDEN_PROFILE))), np.random.default_rng(0)
    lines = ["shape,batch,query_len,context_len,latency_s"]
    for name in ("cpu-small", "cpu-medium", "cpu-wide"):
        spec = resolve_model(name)
        for p in cpu_grid(quick=True):
            t = float(pass_time(spec, deploy, p.batch, p.query, p.context, p.logit_positions))
            lines.append(f"{name},{p.batch},{p.query},{p.context},{t * math.exp(rng.normal(0, 0.03))}")
    path.write_text("\n".join(lines) + "\n")
    return path


class KnownMultipleEngine:
    """A fake backend: a run of B branches takes (1 + B / 16) x what lattts predicts for it."""

    name = "fake"
    stop_ids = ()

    def __init__(self, work, deploy):
        self.work, self.deploy = work, deploy

    def generate(self, request, probe=None):
        from lattts.backend import BranchOutput, GenerationResult
        from lattts.simulator.generation import generation_latency

        lat = generation_latency(self.work, self.deploy, request.branches, request.draft_len, request.max_tokens)
        outputs = [BranchOutput(tokens=(1,) * request.max_tokens, text="", finished=False,
                                accepted_per_round=(1,) * 3 if request.draft_len else None)
                   for _ in range(request.branches)]
        return GenerationResult(outputs=outputs, latency_s=float(lat.total_s[()]) * (1 + request.branches / 16),
                                prompt_tokens=len(request.prompts[0]), draft_len=request.draft_len, rounds=3)


def fake_validate(request, on_run=None, on_note=None) -> dict:
    """What lattts.validate.run.validate returns, from the fake engine on cpu-small and the golden profile."""
    from lattts.hardware.profiles import load_profile
    from lattts.models import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.generation import Workload
    from lattts.simulator.speculative import AcceptanceModel
    from lattts.validate.session import Anchor, run_grid

    spec = resolve_model("cpu-small")
    work = Workload(spec, 16, spec.first_layers(4), AcceptanceModel.iid(0.5, "test"), draft_shares_weights=True)
    deploy = Deployment.on(load_profile(str(GOLDEN_PROFILE)))
    session = run_grid(list(request.configs), KnownMultipleEngine(work, deploy), list(range(16)), work, deploy,
                       Anchor(), request.seed, on_run)
    return {"model": spec.name, "runs": [c.to_json() for c in session.comparisons], "summary": session.summary()}


@pytest.fixture(scope="module")
def charts(tmp_path_factory):
    """Every HTML output, written by its command: name -> path."""
    tmp = tmp_path_factory.mktemp("charts")
    out = {name: tmp / f"{name}.html" for name in
           ("predict", "roofline", "accuracy", "accuracy-one-length", "calibrate", "validate")}
    invoke("predict", "--budget", "60s", "--device", "h100-sxm", "--json", "--html", out["predict"])
    invoke("roofline", "--device", "h100-sxm", "--json", "--html", out["roofline"])
    invoke("accuracy", "--traces", traces_at_three_lengths(tmp / "t.jsonl"), "--branches", "1,2,4,8,16",
           "--json", "--html", out["accuracy"])
    invoke("accuracy", "--traces", ROOT / "lattts" / "data" / "curves" / "qwen2.5-math-math100-n8.jsonl",
           "--branches", "1,2,4,8,16", "--json", "--html", out["accuracy-one-length"])
    invoke("calibrate", "--from-csv", timings_of_a_known_profile(tmp / "timings.csv"), "--bootstrap", "0",
           "--keep-unidentified", "--out", tmp / "profile.json", "--json", "--html", out["calibrate"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lattts.validate.run.validate", fake_validate)
        invoke("validate", "--device", "cpu", "--grid", "B=1,4,16;g=0,2;L=32,128", "--json", "--html", out["validate"])
    return out


@pytest.mark.parametrize("name", ["predict", "roofline", "accuracy", "accuracy-one-length", "calibrate", "validate"])
def test_chart_reads_right_in_a_browser(name, browser, charts):  # browser first: skip before any work
    browser.open(charts[name], READY_JS)
    chart = browser.evaluate(READ_CHART_JS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(ARTIFACTS / f"{name}.png")
    found = problems(chart)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps({"problems": found, "chart": chart}, indent=1) + "\n")
    assert chart["axes"], "no axis with data"
    assert not found, f"{name} (see {ARTIFACTS / name}.png):\n  " + "\n  ".join(found)
