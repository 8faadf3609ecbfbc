"""lattts against a real llama.cpp server (the embedded xllamacpp wheel) with SmolLM2: `lattts serve`
with and without a self-draft, the client, a calibration through the server, validation and traces.
Times on this CPU drift: checks are ratios with loose bounds, or exact where the server is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest
from typer.testing import CliRunner

from lattts.backend import GenerationRequest
from lattts.cli import app

pytest.importorskip("xllamacpp")
runner = CliRunner()
SLOTS, CONTEXT = 4, 512


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "lattts", "serve", "--model", "smollm2-135m", "--slots", str(SLOTS),
           "--context", str(CONTEXT), *args]
    # llama.cpp logs every slot event to stderr: into a pipe nobody reads, it fills the pipe's 64 kB and the
    # server blocks on its next log line (seen as a server that no longer stops on SIGTERM)
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy())
    proc.log = log
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"lattts serve did not start: {tail(proc)}")
    return proc, url


def tail(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()[-500:]


@pytest.fixture(scope="module")
def servers():
    """A plain server and one drafting 3 tokens per round with the model's first 8 layers."""
    plain, plain_url = start_server()
    spec, spec_url = start_server("--draft", "self:8", "--draft-len", "3")
    yield {"plain": plain_url, "spec": spec_url}
    for proc in (plain, spec):
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0, tail(proc)  # SIGTERM stops the server cleanly
        finally:
            proc.kill()
            proc.log.close()


def test_client_reads_the_server_and_its_model(servers):
    from lattts.serving.connect import connect, served_spec

    plain, spec = connect(servers["plain"], "llama.cpp"), connect(servers["spec"])
    assert (plain.info.slots, plain.info.context_tokens, plain.info.draft_len) == (SLOTS, CONTEXT, 0)
    assert spec.info.draft_len == 3  # read off the server's per-position counters
    model = served_spec(plain, None)
    assert model.n_layers == 30 and model.weight_format.linear_bytes_per_weight == pytest.approx(20 / 32)  # Q4_1
    assert model.weight_bytes("fp16") == pytest.approx(96_576_768)  # the file's tensor bytes, exactly
    assert plain.tokenize("What is 2+2?")[:3] == [1, 9690, 198]  # <|im_start|>system\n from the chat template


def test_forced_generation_on_both_servers(servers):
    from lattts.serving.connect import connect

    plain, spec = connect(servers["plain"]), connect(servers["spec"])
    res = plain.generate(GenerationRequest.forced(list(range(100, 140)), 2, 16, seed=5))
    assert [o.length for o in res.outputs] == [16, 16] and all(len(o.tokens) == 16 for o in res.outputs)
    steps = [t["predicted_per_token_ms"] for t in res.server["timings"]]
    assert len(steps) == 2 and res.latency_s > sum(steps) / 1e3 / 2
    res = spec.generate(GenerationRequest.forced(list(range(100, 140)), 2, 16, seed=5, draft_len=3))
    hist = res.accepted_histogram
    assert len(hist) == 4 and sum(hist) == res.counts.rounds > 0  # from the /metrics counters of this request
    with pytest.raises(Exception, match="drafts 3 tokens per round"):
        spec.generate(GenerationRequest.forced([1, 2, 3], 1, 8))  # a drafting server cannot run gamma 0
    with pytest.raises(Exception, match=f"more than the {SLOTS} slots"):
        plain.generate(GenerationRequest.forced([1, 2, 3], SLOTS + 1, 8))


@pytest.fixture(scope="module")
def server_profile(servers, tmp_path_factory):
    """A small calibration through the plain server (the CLI's --quick grid takes about a minute)."""
    from lattts.calibrate import server as cal
    from lattts.calibrate.grid import PassShape
    from lattts.calibrate.run import CalibrationRequest, SweepPlan, calibrate
    from lattts.serving.connect import connect, served_spec
    from lattts.serving.timing import ServerPassRunner

    backend = connect(servers["plain"])
    spec = served_spec(backend, None)
    grid = (PassShape(1, 1, 64), PassShape(2, 1, 64), PassShape(4, 1, 64), PassShape(1, 1, 256),
            PassShape(1, 32, 0), PassShape(1, 128, 0), PassShape(2, 64, 0))
    out = tmp_path_factory.mktemp("profile") / "llama.cpp.json"
    request = CalibrationRequest(target=cal.server_target(backend), shapes=(spec,), dtype=cal.SERVER_KV_DTYPE,
                                 quick=True, engine="llama.cpp", out=out)
    timer = ServerPassRunner(backend)
    with pytest.MonkeyPatch.context() as mp:  # module fixtures run outside the per-test home
        mp.setenv("LATTTS_HOME", str(tmp_path_factory.mktemp("home")))
        return calibrate(request, lambda _: timer, measure=None, sweep=SweepPlan(grid, 1, 0),
                         server=backend.info.to_json())


def test_calibration_through_the_server(server_profile):
    p = server_profile.profile
    assert p.kind == "calibrated" and p.provenance["engine"] == "llama.cpp"
    assert p.provenance["server"]["url"].startswith("http://127.0.0.1")
    assert server_profile.errors["in_sample"]["points"] == 7
    assert server_profile.errors["in_sample"]["median"] < 0.5  # the fit follows its own points, loosely (noisy CPU)


def test_validate_against_the_servers(servers, server_profile):
    res = runner.invoke(app, ["validate", "--server", servers["plain"], "--server", servers["spec"], "--draft", "self:8",
                              "--profile", str(server_profile.profile_file), "--grid", "B=1,2;g=0,3;L=16",
                              "--acceptance", "0.2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["runs"]) == 4 and out["skipped"] == []
    for run in out["runs"]:
        assert 1 / 4 < run["predicted_s"] / run["measured_s"] < 4, run  # loose: tiny runs on a noisy CPU
        assert set(run["terms"]) >= {"prefill", "rounds"}
    spec_runs = [r for r in out["runs"] if r["draft_len"] == 3]
    assert all(r["acceptance_rate"] is not None for r in spec_runs)


def test_measure_through_the_server(servers, tmp_path):
    trace = tmp_path / "traces.jsonl"
    res = runner.invoke(app, ["measure", "--server", servers["plain"], "--benchmark", "tests/data/math500.excerpt.jsonl",
                              "--samples", "2", "--lengths", "16", "--limit", "1", "--out", str(trace), "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len(rows) == 2 and all(r["tokens"] == 16 and r["max_tokens"] == 16 for r in rows)
    again = runner.invoke(app, ["measure", "--server", servers["plain"], "--benchmark", "tests/data/math500.excerpt.jsonl",
                                "--samples", "2", "--lengths", "16", "--limit", "1", "--out", str(trace), "--json"])
    assert json.loads(again.stdout)["batches"] == {"measured": 0, "already_in_file": 1}  # resumed, nothing redone
    res = runner.invoke(app, ["measure", "--server", servers["spec"], "--draft-len", "0", "--benchmark",
                              "tests/data/math500.excerpt.jsonl", "--samples", "2", "--lengths", "16"])
    assert res.exit_code == 2 and "drafts 3 tokens per round" in res.output


@pytest.mark.parametrize("args,text", [
    (["--model", "/no/such/model.gguf"], "does not exist"),
    (["--model", "qwen2.5-0.5b"], "serves GGUF files"),
    (["--model", "smollm2-135m", "--slots", "0"], "--slots 0"),
    (["--model", "smollm2-135m", "--draft", "self:99"], "self:99"),
    (["--model", "smollm2-135m", "--context", "64"], "at least 256"),
])
def test_serve_bad_input(args, text):
    res = runner.invoke(app, ["serve", *args])
    assert res.exit_code == 2 and text in res.output, res.output
