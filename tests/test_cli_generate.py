"""`lattts generate` from the command line: JSON contract, real text from SmolLM2, bad input."""

import json

import pytest
from typer.testing import CliRunner

from lattts.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["generate", *args])


def test_json_contract_with_random_weights(tmp_path):
    res = run("--model", "tests/data/tiny-llama/config.json", "--prompt", "hi",
              "--branches", "2", "--max-tokens", "4", "--min-tokens", "4", "--json", "--draft", "self:2", "--draft-len", "2")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["outputs"]) == 2 and all(o["tokens"] == 4 for o in out["outputs"])
    assert out["latency_s"] > 0 and 0 <= out["acceptance_rate"] <= 1
    assert out["acceptance"]["draft_len"] == 2 and sum(out["acceptance"]["accepted_histogram"]) > 0
    phases = out["timing"]["phases"]
    assert {"target:prefill", "target:verify", "draft:draft"} <= set(phases)
    assert "random weights" in out["weights"]
    # each branch's rounds in order travel with the output, and `lattts acceptance` reads them as rounds
    assert all(len(o["accepted_per_round"]) >= 1 for o in out["outputs"])
    from lattts.traces.acceptance import read_acceptance

    (tmp_path / "gen.json").write_text(res.stdout)
    m = read_acceptance(tmp_path / "gen.json")
    assert m.kind == "rounds" and list(m.histogram) == out["acceptance"]["accepted_histogram"]


def test_smollm2_writes_sensible_text():
    res = run("--model", "smollm2-135m", "--prompt", "What is the capital of France?", "--temperature", "0",
              "--max-tokens", "20", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "Paris" in out["outputs"][0]["text"]
    assert "GGUF" in out["weights"]


def test_smollm2_self_speculation_is_lossless():
    args = ["--model", "smollm2-135m", "--prompt", "Name three primary colors.", "--temperature", "0",
            "--max-tokens", "24", "--json"]
    plain = json.loads(run(*args).stdout)
    spec = json.loads(run(*args, "--draft", "self:15", "--draft-len", "3").stdout)
    assert spec["outputs"][0]["text"] == plain["outputs"][0]["text"]


@pytest.mark.parametrize("args,text", [
    (["--model", "no-such-model", "--prompt", "x"], "unknown model"),
    (["--model", "/nonexistent/model.gguf", "--prompt", "x"], "does not exist"),
    (["--model", "/nonexistent/dir/config.json", "--prompt", "x"], "no config.json"),
    (["--model", "smollm2-135m", "--prompt", "x", "--draft-len", "3"], "needs a draft"),
    (["--model", "smollm2-135m", "--prompt", "x", "--draft", "qwen2.5-0.5b", "--draft-len", "2"], "vocabularies differ"),
    (["--model", "smollm2-135m", "--prompt", "x", "--min-tokens", "9", "--max-tokens", "8"], "--min-tokens 9: exceeds the cap of 8"),
    (["--model", "smollm2-135m", "--prompt", "x " * 9000, "--raw"], "context"),
    (["--model", "smollm2-135m", "--prompt", "x", "--device", "cuda:0"], "no CUDA device"),
])
def test_bad_input_is_one_line_with_exit_code_2(args, text):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert text in res.output and "Traceback" not in res.output
