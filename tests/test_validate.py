"""`lattts validate`: the live-vs-predicted machinery on a tiny model (loose, ratio-based bounds:
this CPU's speed drifts), the decision check on constructed cases, the JSON contract, bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from acceptance_helpers import rounds_from_levels
from lattts.cli import app
from lattts.simulator.search import Config, Point
from lattts.validate.decision import Candidate, DecisionReport, measured_best, neighbours
from lattts.validate.live import culprit

TINY = "tests/data/tiny-llama/config.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "tiny.json"
    res = runner.invoke(app, ["calibrate", "--device", "cpu", "--model", TINY, "--quick", "--out", str(path), "--json"])
    assert res.exit_code == 0, res.output
    return path


def test_validate_json_contract_and_loose_accuracy(tiny_profile):
    res = runner.invoke(app, ["validate", "--device", "cpu", "--model", TINY, "--draft", "self:2", "--profile",
                              str(tiny_profile), "--grid", "B=1,4;g=0,2;L=24", "--acceptance", "0.5", "--json",
                              "--no-transformers"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["runs"]) == 4
    for run in out["runs"]:
        assert {"branches", "draft_len", "max_tokens", "predicted_s", "measured_s"} <= set(run)
        assert 1 / 3 < run["predicted_s"] / run["measured_s"] < 3  # tiny passes are overhead-bound; loose on purpose
        if run["draft_len"]:
            assert run["rounds"] > 0 and 0 <= run["acceptance_rate"] <= 1
            assert set(run["terms"]) >= {"prefill", "draft", "verify", "other", "rounds"}
    s = out["summary"]
    assert {"median_abs_error", "p90_abs_error", "bias"} <= set(s) and s["runs"] == 4
    assert s["drift"]["min"] > 0 and "with_measured_acceptance" in s
    assert s["coverage_p90"]["runs"] == 4 and 0 <= s["coverage_p90"]["fraction"] <= 1
    assert all(run["predicted_p90_s"] > run["predicted_s"] for run in out["runs"])


def test_culprit_names_the_term_that_is_off():
    terms = {"prefill": {"measured_s": 0.1, "predicted_s": 0.1}, "draft": {"measured_s": 2.0, "predicted_s": 1.0},
             "verify": {"measured_s": 3.0, "predicted_s": 2.9}, "other": {"measured_s": 0.1, "predicted_s": 0.0},
             "rounds": {"measured": 50, "predicted": 50.0}}
    assert culprit(terms, 5.3).startswith("draft cost")
    terms["draft"]["predicted_s"] = 2.0
    terms["rounds"] = {"measured": 50, "predicted": 35.0}
    assert culprit(terms, 5.3).startswith("number of rounds")
    terms["rounds"] = {"measured": 50, "predicted": 50.0}
    assert culprit(terms, 5.3) is None


def test_neighbours_of_a_choice():
    chosen = Point(4, 2, 128, 1.0, 0.8)
    got = neighbours(chosen, (1, 2, 4, 8), (0, 1, 2, 3), [64, 128, 256])
    assert got == [Config(2, 2, 128), Config(8, 2, 128), Config(4, 1, 128), Config(4, 3, 128), Config(4, 2, 256)]
    edge = neighbours(Point(1, 0, 256, 1.0, 0.8), (1, 2), (0, 1), [64, 256])
    assert edge == [Config(2, 0, 256), Config(1, 1, 256)]


def test_decision_check_on_constructed_cases():
    chosen = Candidate(Config(4, 2, 128), accuracy=0.80, predicted_s=9.0, measured_s=9.5)
    slower_same = Candidate(Config(4, 3, 128), accuracy=0.80, predicted_s=9.5, measured_s=9.0)  # same accuracy, faster
    better_late = Candidate(Config(8, 2, 128), accuracy=0.85, predicted_s=11.0, measured_s=10.5)  # misses the budget
    cands = [chosen, slower_same, better_late]
    report = DecisionReport(10.0, chosen, cands, measured_best(cands, 10.0))
    assert report.measured_best is slower_same and not report.chosen_is_best
    assert report.chosen_near_best  # same accuracy, a little slower: near best, not best
    assert report.to_json()["latency_gap_s"] == pytest.approx(0.5)
    fine = DecisionReport(10.0, chosen, [chosen, better_late], measured_best([chosen, better_late], 10.0))
    assert fine.chosen_is_best and fine.chosen_near_best and fine.to_json()["accuracy_gap"] == 0.0
    assert measured_best([better_late], 10.0) is None


@pytest.mark.parametrize("best_accuracy,near", [(0.84, True), (0.85, False)])
def test_near_best_is_within_five_percent_of_the_best_accuracy(best_accuracy, near):
    chosen = Candidate(Config(4, 2, 128), accuracy=0.80, predicted_s=9.0, measured_s=9.5)
    longer = Candidate(Config(4, 2, 256), accuracy=best_accuracy, predicted_s=9.9, measured_s=9.8)
    report = DecisionReport(10.0, chosen, [chosen, longer], measured_best([chosen, longer], 10.0))
    assert report.measured_best is longer and report.chosen_near_best is near  # 0.80 >= 0.95 * 0.84, not * 0.85
    late = DecisionReport(9.4, chosen, [chosen, longer], None)  # the choice itself missed: never near best
    assert not late.chosen_near_best and not late.to_json()["chosen_meets_budget"]


GOLDEN_PROFILE = "tests/data/golden/cpu-profile.json"


def small_problem():
    from lattts.hardware.profiles import load_profile
    from lattts.models import resolve_model
    from lattts.simulator.deployment import Deployment
    from lattts.simulator.generation import Workload
    from lattts.simulator.speculative import AcceptanceModel

    spec = resolve_model("cpu-small")
    work = Workload(spec, 16, spec.first_layers(4), AcceptanceModel.iid(0.5, "test"), draft_shares_weights=True)
    return work, Deployment.on(load_profile(GOLDEN_PROFILE))


class SlowerEngine:
    """A fake backend: every run takes ``factor`` x what lattts predicts, all of it outside forward passes."""

    name = "fake"
    stop_ids = ()

    def __init__(self, work, deploy, factor):
        self.work, self.deploy, self.factor = work, deploy, factor

    def generate(self, request, probe=None):
        from lattts.backend import BranchOutput, GenerationResult
        from lattts.simulator.generation import generation_latency

        lat = generation_latency(self.work, self.deploy, request.branches, request.draft_len, request.max_tokens)
        outputs = [BranchOutput(tokens=(1,) * request.max_tokens, text="", finished=False,
                                accepted_per_round=(1,) * 3 if request.draft_len else None)
                   for _ in range(request.branches)]
        return GenerationResult(outputs=outputs, latency_s=float(lat.total_s[()]) * self.factor,
                                prompt_tokens=len(request.prompts[0]), draft_len=request.draft_len, rounds=3)


def test_session_reports_a_known_misprediction():
    from lattts.validate.session import Anchor, run_grid

    work, deploy = small_problem()
    grid = [Config(1, 0, 32), Config(4, 0, 32), Config(2, 2, 32)]
    session = run_grid(grid, SlowerEngine(work, deploy, 1.25), list(range(16)), work, deploy, Anchor())
    assert [c.error for c in session.comparisons] == pytest.approx([1 / 1.25 - 1] * 3)
    s = session.summary()
    assert s["median_abs_error"] == pytest.approx(0.2) and s["bias"] == pytest.approx(-0.2)
    # the fake spent its time outside forward passes: that is the term validation must blame
    assert all(c.culprit.startswith("per-step overhead outside forward passes") for c in session.comparisons)
    assert s["coverage_p90"] == {"within": 0, "runs": 3, "fraction": 0.0}  # 25% late: past the 90th percentile


class EngineAtSpeed(SlowerEngine):
    """A fake backend whose runs take what lattts predicts on a device at ``speed`` (every pass at the
    factor of its kind), with anchor passes (``time_pass``) at that speed too."""

    def __init__(self, work, deploy, speed):
        from dataclasses import replace

        super().__init__(work, replace(deploy, speed=speed), 1.0)

    def time_pass(self, point, repeats, warmup):
        from lattts.simulator.roofline import pass_time

        return [float(pass_time(self.work.target, self.deploy, *point.key))] * repeats


def test_runs_are_predicted_at_the_speed_of_each_kind_of_pass():
    """One-row passes 30% slower than calibrated, many-row passes as calibrated: with both anchors every
    run is predicted exactly (B=1 decoding slowed, B=4 did not, B=1 speculative in between); with only the
    one-row anchor (a profile calibrated before there were two) the B=4 runs come out 30% high."""
    from lattts.calibrate.grid import ANCHORS
    from lattts.simulator.deployment import DeviceSpeed
    from lattts.simulator.roofline import pass_time
    from lattts.validate.session import Anchor, run_grid

    work, deploy = small_problem()
    engine = EngineAtSpeed(work, deploy, DeviceSpeed(one_row=1.3, rows=1.0))
    ref = {p: float(pass_time(work.target, deploy, *p.key)) for p in ANCHORS.points}
    grid = [Config(1, 0, 32), Config(4, 0, 32), Config(1, 2, 32)]
    one_row = (ANCHORS.one_row, ref[ANCHORS.one_row])
    both = Anchor(engine, one_row, (ANCHORS.rows, ref[ANCHORS.rows]))
    session = run_grid(grid, engine, list(range(16)), work, deploy, both)
    assert [c.error for c in session.comparisons] == pytest.approx([0.0] * 3, abs=1e-9)
    by = {c.config: c for c in session.comparisons}
    assert by[Config(1, 0, 32)].drift_factor > 1.25 and by[Config(4, 0, 32)].drift_factor < 1.01
    assert 1.01 < by[Config(1, 2, 32)].drift_factor < 1.29  # draft passes of one row, verify passes of three
    s = session.summary()
    assert s["drift"]["min"] == pytest.approx(1.3) and s["drift_rows"]["max"] == pytest.approx(1.0)
    one_only = run_grid(grid, engine, list(range(16)), work, deploy, Anchor(engine, one_row))
    errors = {c.config: c.error for c in one_only.comparisons}
    assert errors[Config(1, 0, 32)] == pytest.approx(0.0, abs=0.02) and errors[Config(4, 0, 32)] > 0.25
    assert "drift_rows" not in one_only.summary()  # no many-row anchor was timed


def test_coverage_counts_runs_within_their_predicted_p90():
    from lattts.validate.session import Anchor, run_grid

    work, deploy = small_problem()
    grid = [Config(1, 0, 32), Config(4, 0, 32), Config(2, 2, 32)]
    on_time = run_grid(grid, SlowerEngine(work, deploy, 1.05), list(range(16)), work, deploy, Anchor()).summary()
    assert on_time["coverage_p90"]["fraction"] == 1.0  # 5% over the mean is inside the golden profile's spread


def _grid_points(problem):
    from lattts.simulator.search import evaluate_grid

    grid = evaluate_grid(problem)
    return {p.config: p for p in map(grid.point, range(len(grid)))}


def timed(points, slower=lambda c: 1.0):
    """A ``measure`` for the decision check: each configuration takes its predicted mean times
    ``slower(config)``, on a device that did not drift."""
    from lattts.simulator.deployment import AS_PROFILED

    return lambda configs: [(points[c].latency_s * slower(c), AS_PROFILED) for c in configs]


def test_decision_check_finds_a_faster_neighbour_when_the_choice_runs_late():
    from lattts.plan import PlanRequest, build_plan
    from lattts.validate.decision import check

    problem = build_plan(PlanRequest(device="h100-sxm", max_branches=64, max_draft_len=6)).problem  # tensor-parallel
    points = _grid_points(problem)
    exact = check(problem, 60.0, timed(points))
    assert len(exact.candidates) >= 4 and exact.chosen_is_best  # the check prices candidates as predict does
    assert all(c.predicted_p90_s > c.predicted_s and c.drift == 1.0 for c in exact.candidates)
    chosen = exact.chosen.config
    late = check(problem, 60.0, timed(points, lambda c: 2.0 if c == chosen else 1.0))
    assert not late.chosen_is_best and late.chosen.measured_s > 60.0 and not late.chosen_near_best
    best = late.measured_best
    assert best.config != chosen and best.measured_s <= 60.0
    assert best.accuracy == max(c.accuracy for c in late.candidates if c.measured_s <= 60.0)


def test_decision_check_by_confidence_keeps_the_margin_a_slower_device_needs():
    from lattts.plan import PlanRequest, build_plan
    from lattts.validate.decision import check

    problem = build_plan(PlanRequest(device="h100-sxm", max_branches=64, max_draft_len=6)).problem
    points = _grid_points(problem)
    at_p90 = timed(points, lambda c: points[c].latency_p90_s / points[c].latency_s)  # every run at its 90th percentile
    by_mean = check(problem, 60.0, at_p90)
    by_p90 = check(problem, 60.0, at_p90, confidence=0.9)
    assert by_p90.chosen.config != by_mean.chosen.config
    assert by_mean.chosen.predicted_s <= 60.0 < by_mean.chosen.measured_s  # the mean's choice had no margin
    assert by_p90.chosen.measured_s <= 60.0 and by_p90.chosen.accuracy <= by_mean.chosen.accuracy
    assert by_p90.to_json()["chosen_by"] == "P(latency <= budget) >= 0.9" and by_p90.to_json()["confidence"] == 0.9


def test_decision_check_runs_live_with_its_drift(tiny_profile):
    res = runner.invoke(app, ["validate", "--device", "cpu", "--model", TINY, "--profile", str(tiny_profile),
                              "--grid", "B=1;g=0;L=16", "--budget", "2s", "--confidence", "0.9",
                              "--length-scale", "64", "--json", "--no-transformers"])
    assert res.exit_code == 0, res.output
    dec = json.loads(res.stdout)["decision"]
    assert dec["confidence"] == 0.9 and dec["chosen"]["predicted_p90_s"] <= 2.0
    assert len(dec["candidates"]) >= 2
    assert "anchor timings" in dec["spread"]  # the choice's spread took the speed the grid's anchors saw
    for c in dec["candidates"]:
        assert c["drift"] > 0 and c["drift"] != 1.0  # an anchor was timed around every candidate
        assert c["predicted_at_drift_s"] == pytest.approx(c["predicted_s"] * c["drift"])
        assert 1 / 3 < c["predicted_at_drift_s"] / c["measured_s"] < 3


def test_profile_of_another_device_is_refused(tiny_profile, tmp_path):
    data = json.loads(tiny_profile.read_text())
    data["device_key"] = "gpu-nvidia-h100-80gb-hbm3"
    data["name"] = "NVIDIA H100 80GB HBM3"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    res = runner.invoke(app, ["validate", "--device", "cpu", "--model", TINY, "--profile", str(other), "--grid",
                              "B=1;g=0;L=8", "--no-transformers"])
    assert res.exit_code == 2 and "recalibrate" in res.output and "H100" in res.output


@pytest.mark.parametrize("args,text", [
    (["--grid", "B=100000;g=0;L=4000"], "B=100000 is out of range: give 1..1024"),
    (["--grid", "B=1;g=0;L=16", "--budget", "1ms"], "no configuration meets"),
    (["--grid", "B=1;L=16"], "--grid"),
    (["--grid", "B=0;g=0;L=16"], "B=0 is out of range"),
    (["--grid", "B=1;g=2;L=16", "--acceptance", "1.5"], "[0, 1)"),
    (["--grid", "B=1;g=0;L=16", "--length-scale", "0"], "--length-scale"),
    (["--grid", "B=1;g=0;L=16", "--confidence", "0.9"], "give --budget as well"),
    (["--grid", "B=1;g=0;L=16", "--budget", "1ms", "--confidence", "0.9"], "lower --confidence"),
    (["--grid", "B=1;g=0;L=16", "--budget", "2s", "--confidence", "1"], "strictly between 0 and 1"),
])
def test_validate_bad_input(tiny_profile, args, text):
    res = runner.invoke(app, ["validate", "--device", "cpu", "--model", TINY, "--draft", "self:2", "--profile",
                              str(tiny_profile), "--no-transformers", *args])
    assert res.exit_code == 2, res.output
    assert text in res.output and "Traceback" not in res.output


class ScriptedDrafts:
    """A generator whose speculative rounds are drawn with acceptance ``alphas[gamma]`` per draft length;
    ``totals`` answers as a server that counts only totals would."""

    name, stop_ids = "scripted", ()

    def __init__(self, alphas: dict[int, float], totals: bool):
        self.alphas, self.totals, self.rng, self.asked = alphas, totals, np.random.default_rng(0), []

    def generate(self, request, probe=None):
        from lattts.backend import AcceptanceCounts, BranchOutput, GenerationResult

        g, L = request.draft_len, request.max_tokens
        self.asked.append(g)
        level = np.full(L, np.log(self.alphas[g] / (1 - self.alphas[g])))  # every round at least one token
        outputs, every_round = [], []
        for _ in range(request.branches):
            taus = rounds_from_levels(level, g, self.rng)
            taus = taus[: int(np.searchsorted(np.cumsum(taus), L)) + 1]  # rounds until L tokens
            rounds = [int(t) - 1 for t in taus]
            every_round += rounds
            outputs.append(BranchOutput(tokens=(), text="", finished=False, token_count=int(taus.sum()),
                                        accepted_per_round=None if self.totals else tuple(rounds)))
        counts = AcceptanceCounts(draft_len=g, rounds=len(every_round), drafted=g * len(every_round),
                                  accepted=sum(every_round)) if self.totals else None
        return GenerationResult(outputs=outputs, latency_s=1.0, prompt_tokens=8, draft_len=g, counts=counts)


@pytest.mark.parametrize("totals", [False, True])
def test_pilot_measures_every_draft_length_at_its_own(totals):
    # a pair whose acceptance differs by draft length: neither may be derived from the other
    from lattts.validate.session import pilot_acceptance

    engine = ScriptedDrafts({2: 0.3, 4: 0.6}, totals)
    model = pilot_acceptance(engine, [[1, 2, 3]] * 3, 400, gammas=[4, 2])
    assert sorted(set(engine.asked)) == [2, 4] and len(engine.asked) == 6  # 3 prompts at each length
    assert model.basis(2) == "measured" and model.basis(4) == "measured"
    assert model.rates_at(2)[0] == pytest.approx(0.3, abs=0.06)
    assert model.rates_at(4)[0] == pytest.approx(0.6, abs=0.06)
    assert model.basis(3) == "derived" and "gamma 2, 4" in model.source


class EarlyDrafts(ScriptedDrafts):
    """Totals-only drafts accepted more often in short runs: alpha 0.5 over 32 tokens, 0.3 over 256."""

    def generate(self, request, probe=None):
        self.alphas = {g: 0.5 if request.max_tokens <= 32 else 0.3 for g in (2, 4)}
        return super().generate(request, probe)


def test_a_totals_only_pilot_is_run_at_both_ends_and_each_run_priced_at_its_length():
    from lattts.validate.session import pilot_along_length

    engine = EarlyDrafts({}, totals=True)
    model, along = pilot_along_length(engine, [[1, 2, 3]] * 3, 32, 256, gammas=[2, 4])
    assert len(engine.asked) == 12 and model.rates_at(2)[0] == pytest.approx(0.3, abs=0.06)
    assert along.at(32).rates_at(4)[0] == pytest.approx(0.5, abs=0.06)  # at, and past, the measured ends
    assert along.at(16).rates_at(2) == along.at(32).rates_at(2) and along.at(512).rates_at(2) == model.rates_at(2)
    mid = along.at(64)  # a third of the way from 32 to 256 in log L
    for g in (2, 4):
        want = along.at(32).rates_at(g)[0] + (model.rates_at(g)[0] - along.at(32).rates_at(g)[0]) / 3
        assert mid.rates_at(g)[0] == pytest.approx(want) and mid.basis(g) == "measured"
    assert "over 32 tokens" in along.source and "at L=64" in mid.source
    work, _ = small_problem()
    priced = along.pricing(work)
    assert priced(Config(2, 2, 64)).acceptance == mid and priced(Config(2, 0, 64)) is work
    # rounds in order (lattts' engine) carry the variation along the generation: no second pilot
    ordered = EarlyDrafts({}, totals=False)
    assert pilot_along_length(ordered, [[1, 2, 3]] * 3, 32, 256, gammas=[2])[1] is None and len(ordered.asked) == 3
    assert pilot_along_length(EarlyDrafts({}, totals=True), [[1, 2, 3]] * 3, 200, 256, gammas=[2])[1] is None
