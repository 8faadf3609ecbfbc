"""Natural lengths: the expected longest branch, and its effect on predicted latency."""

import json

import numpy as np
import pytest

from lattts.errors import UserError
from lattts.simulator.lengths import LengthDistribution
from lattts.traces.lengths import load_lengths


def test_expected_longest_matches_monte_carlo():
    rng = np.random.default_rng(7)
    samples = rng.integers(100, 3000, 400)
    dist = LengthDistribution(tuple(int(x) for x in samples), "t")
    for B, cap in [(1, 5000), (4, 2000), (16, 1000), (8, 2500)]:
        draws = rng.choice(samples, size=(100_000, B))
        mc = np.minimum(draws, cap).max(axis=1).mean()
        assert float(dist.expected_longest(B, cap)) == pytest.approx(mc, rel=0.005)


def test_all_long_samples_equal_budget_forcing():
    dist = LengthDistribution((5000, 6000), "t")
    assert float(dist.expected_longest(8, 1024)) == pytest.approx(1024)


def test_file_formats(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("10\n20\n\n30\n")
    assert load_lengths(a).samples == (10, 20, 30)
    b = tmp_path / "b.jsonl"
    b.write_text("\n".join(json.dumps({"problem_id": i, "tokens": 100 * i}) for i in range(1, 4)))
    assert load_lengths(b).samples == (100, 200, 300)
    c = tmp_path / "c.txt"
    c.write_text("10\nabc\n")
    with pytest.raises(UserError, match="c.txt:2"):
        load_lengths(c)
    pd = pytest.importorskip("pandas")
    d = tmp_path / "d.parquet"
    pd.DataFrame([{"problem_id": "p", "sample_id": i, "answer": "1", "correct": True, "tokens": 50 * i}
                  for i in range(1, 4)]).to_parquet(d)
    assert load_lengths(d).samples == (50, 100, 150)
    e = tmp_path / "e.bin"
    e.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UserError, match="not a text file"):
        load_lengths(e)


def test_natural_lengths_shorten_predictions(tmp_path):
    from typer.testing import CliRunner

    from lattts.cli import app

    path = tmp_path / "lengths.txt"
    path.write_text("\n".join(str(x) for x in [300, 500, 700, 900] * 10))
    args = ["predict", "--budget", "60s", "--json", "--lengths", "1024,2048"]
    forced = json.loads(CliRunner().invoke(app, args).stdout)
    natural = json.loads(CliRunner().invoke(app, args + ["--natural-lengths", str(path)]).stdout)
    assert natural["lengths"].startswith("lengths from")
    f = {(p["branches"], p["draft_len"], p["max_tokens"]): p["latency_s"] for p in forced["frontier"]}
    n = {(p["branches"], p["draft_len"], p["max_tokens"]): p["latency_s"] for p in natural["frontier"]}
    common = set(f) & set(n)
    assert common and all(n[k] < f[k] for k in common)
