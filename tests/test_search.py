"""The search: frontier ordering, best-within-budget, strategies, memory exclusion."""

import numpy as np
import pytest

from lattts.hardware.devices import find_device
from lattts.hardware.profiles import datasheet_profile
from lattts.models import resolve_model
from lattts.simulator.accuracy import paper_curve
from lattts.simulator.deployment import Deployment
from lattts.simulator.generation import Workload
from lattts.simulator.search import SearchProblem, branch_grid, evaluate_grid, pareto_frontier, predict
from lattts.simulator.speculative import AcceptanceModel

H100 = datasheet_profile(find_device("h100-sxm"))


@pytest.fixture(scope="module")
def problem():
    work = Workload(target=resolve_model("s1.1-32B"), prompt_tokens=128, draft=resolve_model("s1.1-7B"),
                    acceptance=AcceptanceModel.iid(0.831, "paper"))
    return SearchProblem(workload=work, deployment=Deployment.on(H100, devices=2), curve=paper_curve())


def test_frontier_is_pareto_ordered(problem):
    pred = predict(problem, 60.0)
    lat = [p.latency_s for p in pred.frontier]
    acc = [p.accuracy for p in pred.frontier]
    assert lat == sorted(lat) and all(b > a for a, b in zip(acc, acc[1:]))
    grid = evaluate_grid(problem)
    # no evaluated configuration that fits dominates a frontier point
    for p in pred.frontier:
        dominated = grid.fits & (grid.latency_s < p.latency_s - 1e-12) & (grid.accuracy > p.accuracy + 1e-12)
        assert not dominated.any()


def test_pareto_on_a_hand_made_case():
    lat = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    acc = np.array([0.8, 0.5, 0.7, 0.6, 0.75])
    assert list(pareto_frontier(lat, acc)) == [1, 2, 0]


def test_best_is_the_most_accurate_within_budget_and_beats_every_strategy(problem):
    grid = evaluate_grid(problem)
    pred = predict(problem, 60.0, grid)
    ok = grid.fits & (grid.latency_s <= 60.0)
    assert pred.best.latency_s <= 60.0
    assert pred.best.accuracy == pytest.approx(grid.accuracy[ok].max())
    for name, point in pred.baselines.items():
        assert point.accuracy <= pred.best.accuracy + 1e-12
        assert point.latency_s <= 60.0
    # each strategy is the most accurate configuration of its kind, found here by brute force over the grid
    kinds = {"baseline": lambda p: p.branches == 1 and p.draft_len == 0, "branch_wise": lambda p: p.draft_len == 0,
             "sequence_wise": lambda p: p.branches == 1}
    points = [grid.point(i) for i in np.flatnonzero(ok)]
    for name, kind in kinds.items():
        assert kind(pred.baselines[name])
        assert pred.baselines[name].accuracy == pytest.approx(max(p.accuracy for p in points if kind(p)))


def test_memory_exclusions_are_counted(problem):
    from dataclasses import replace

    one_device = replace(problem, deployment=Deployment.on(H100, devices=1))
    grid = evaluate_grid(one_device)
    pred = predict(one_device, 600.0, grid)
    assert pred.excluded_memory == int((~grid.fits).sum()) > 0
    assert pred.best is None or grid.fits[(grid.branches == pred.best.branches) & (grid.draft_len == pred.best.draft_len)
                                          & (grid.max_tokens == pred.best.max_tokens)].all()


def test_branch_grid_is_powers_of_two_up_to_the_maximum():
    assert branch_grid(128) == (1, 2, 4, 8, 16, 32, 64, 128)
    assert branch_grid(16) == (1, 2, 4, 8, 16)
    assert branch_grid(6) == (1, 2, 4, 6)
    assert branch_grid(200) == (1, 2, 4, 8, 16, 32, 64, 128, 200)
    assert branch_grid(1) == (1,)
