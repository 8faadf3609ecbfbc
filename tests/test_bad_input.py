"""Bad input at the edge of every command (issue 15): one line naming the problem and the range or the
fix, exit code 2, no traceback, and before any work starts (no model is loaded: every case is quick).

Each case is (command line, a fragment of the line it must print). ``{name}`` in a command line is a
file the ``paths`` fixture makes. Memory checks compare with a machine that has 16 GB available."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app

DATA = Path(__file__).parent / "data"
QWEN = str(Path(__file__).parents[1] / "lattts" / "data" / "curves" / "qwen2.5-math-math100-n8.jsonl")
AVAILABLE_BYTES = 16e9

PREDICT = ["predict", "--budget", "60s"]
ROOFLINE = ["roofline", "--device", "h100-sxm"]
ACCURACY = ["accuracy", "--traces", QWEN]
GENERATE = ["generate", "--model", "{tiny}", "--prompt", "hi"]
MEASURE = ["measure", "--model", "{tiny}", "--benchmark", "{math}", "--out", "{out}"]
VALIDATE = ["validate", "--device", "cpu"]
SERVE = ["serve", "--model", "{tiny}"]

CASES = [
    # predict: every numeric flag's range, and values that parse but mean nothing
    (PREDICT + ["--max-branches", "100000"], "--max-branches 100000 is out of range: give 1..128"),
    (PREDICT + ["--max-branches", "0"], "give 1..128"),
    (PREDICT + ["--max-draft-len", "1000"], "--max-draft-len 1000 is out of range: give 0..16"),
    (PREDICT + ["--max-draft-len", "-1"], "give 0..16"),
    (PREDICT + ["--frontier-rows", "-3"], "--frontier-rows -3 is out of range: give 1..1000"),
    (PREDICT + ["--frontier-rows", "0"], "give 1..1000"),
    (PREDICT + ["--frontier-rows", "x"], "--frontier-rows"),
    (PREDICT + ["--devices", "100000"], "--devices 100000 is out of range: give 1, 2, 4 or 8"),
    (PREDICT + ["--devices", "3"], "give 1, 2, 4 or 8"),
    (PREDICT + ["--devices", "0"], "give 1, 2, 4 or 8"),
    (PREDICT + ["--devices", "three"], "--devices 'three'"),
    (PREDICT + ["--prompt-tokens", "0"], "--prompt-tokens 0 is out of range: give 1..1,048,576"),
    (PREDICT + ["--prompt-tokens", "100000000"], "give 1..1,048,576"),
    (PREDICT + ["--confidence", "1.5"], "strictly between 0 and 1"),
    (PREDICT + ["--confidence", "nan"], "--confidence nan is out of range"),
    (PREDICT + ["--confidence", "inf"], "--confidence inf is out of range"),
    (PREDICT + ["--lengths", "0,1024"], "--lengths: 0 is out of range"),
    (PREDICT + ["--lengths", "1024,2000000"], "each value must be 1..1,048,576"),
    (["predict", "--budget", "inf"], "cannot parse duration"),
    (["predict", "--budget", "0s"], "must be positive"),
    (["predict"], "Missing option '--budget'"),
    (PREDICT + ["--bogus"], "No such option: --bogus"),
    (PREDICT + ["--acceptance", "1.5"], "[0, 1)"),
    (PREDICT + ["--model", "{heads7}", "--draft", "none"], "hidden_size (512) is not a multiple of num_attention_heads (7)"),
    # roofline
    (ROOFLINE + ["--context", "100000000"], "--context 100000000 is out of range: give 0..1,048,576"),
    (ROOFLINE + ["--context", "-1"], "give 0..1,048,576"),
    (ROOFLINE + ["--max-batch", "100000000"], "--max-batch 100000000 is out of range: give 1..65536"),
    (ROOFLINE + ["--max-batch", "0"], "give 1..65536"),
    (ROOFLINE + ["--query", "0"], "--query 0 is out of range"),
    (ROOFLINE + ["--context", "40000"], "s1.1-32B holds 32768"),
    (ROOFLINE + ["--dtype", "fp32"], "more than the 77.3 GB usable on NVIDIA H100"),
    (ROOFLINE + ["--model", "{heads7}"], "is not a multiple of num_attention_heads (7)"),
    # accuracy
    (ACCURACY + ["--seed", "-1"], "--seed -1 is out of range: give 0..4,294,967,295"),
    (ACCURACY + ["--seed", "4294967296"], "give 0..4,294,967,295"),
    (ACCURACY + ["--resamples", "100000000"], "--resamples 100000000 is out of range: give 1..10000"),
    (ACCURACY + ["--resamples", "0"], "give 1..10000"),
    (ACCURACY + ["--branches", "1,129"], "129 is out of range: each value must be 1..128"),
    (ACCURACY + ["--branches", "0"], "each value must be 1..128"),
    (ACCURACY + ["--lengths", "0"], "--lengths: 0 is out of range"),
    (["accuracy", "--traces", "{empty}"], "is a folder with no trace files in it"),
    (["accuracy", "--traces", "{folder}"], "is a folder: give one trace file in it"),
    (["accuracy", "--traces", "{empty}/nope.jsonl"], "does not exist"),
    # generate (a tiny random-weight shape: nothing heavy even where a check were missing)
    (GENERATE + ["--branches", "100000"], "--branches 100000 is out of range: give 1..1024"),
    (GENERATE + ["--branches", "0"], "give 1..1024"),
    (GENERATE + ["--max-tokens", "0"], "--max-tokens 0 is out of range: give 1..1,048,576"),
    (GENERATE + ["--max-tokens", "100000000"], "give 1..1,048,576"),
    (GENERATE + ["--min-tokens", "-1"], "--min-tokens -1 is out of range: give 0..1,048,576"),
    (GENERATE + ["--temperature", "-0.5"], "--temperature -0.5 is out of range: give 0..10"),
    (GENERATE + ["--temperature", "nan"], "--temperature nan is out of range"),
    (GENERATE + ["--top-p", "0"], "--top-p 0.0 is out of range: give (0, 1]"),
    (GENERATE + ["--top-p", "1.5"], "give (0, 1]"),
    (GENERATE + ["--seed", "-1"], "--seed -1 is out of range"),
    (GENERATE + ["--draft-len", "100"], "--draft-len 100 is out of range: give 0..16"),
    (["generate", "--model", "{tiny}", "--prompt", ""], "--prompt is empty"),
    (["generate", "--model", "{tiny}", "--prompt", "   "], "--prompt is empty"),
    (["generate", "--model", "{heads7}", "--prompt", "hi"], "is not a multiple of num_attention_heads (7)"),
    (GENERATE + ["--max-tokens", "100000"], "exceeds tiny-llama's context of 1024 positions"),
    (["generate", "--model", "Qwen2.5-0.5B-Instruct", "--prompt", "hi", "--branches", "1024", "--max-tokens", "4096"],
     "more than the 16 GB available here"),
    (["generate", "--model", "s1.1-32B", "--prompt", "hi"], "s1.1-32B in fp32, 1 branch of 128 tokens needs about"),
    # measure
    (MEASURE + ["--lengths", "16", "--samples", "0"], "--samples 0 is out of range: give 1..1024"),
    (MEASURE + ["--lengths", "16", "--samples", "100000"], "give 1..1024"),
    (MEASURE + ["--lengths", "16", "--samples", "2", "--temperature", "-1"], "--temperature -1.0 is out of range"),
    (MEASURE + ["--lengths", "16", "--samples", "2", "--limit", "0"], "--limit 0 is out of range"),
    (MEASURE + ["--lengths", "16", "--samples", "2", "--seed", "-1"], "--seed -1 is out of range"),
    (MEASURE + ["--lengths", "16", "--samples", "2", "--draft-len", "99"], "--draft-len 99 is out of range"),
    (MEASURE + ["--lengths", "0", "--samples", "2"], "--lengths: 0 is out of range"),
    (["measure", "--model", "s1.1-32B", "--benchmark", "{math}", "--out", "{out}", "--lengths", "16", "--samples", "2"],
     "s1.1-32B in fp32, 2 samples of up to"),
    # validate (each would otherwise load a model, or calibrate this CPU first)
    (VALIDATE + ["--prompt", ""], "--prompt is empty"),
    (VALIDATE + ["--length-scale", "0"], "--length-scale 0.0 is out of range: give (0, 1000]"),
    (VALIDATE + ["--length-scale", "inf"], "--length-scale inf is out of range"),
    (VALIDATE + ["--seed", "-1"], "--seed -1 is out of range"),
    (["validate", "--gpu", "-1"], "--gpu -1 is out of range: give 0..63"),
    (VALIDATE + ["--grid", "B=0;g=0;L=32"], "B=0 is out of range: give 1..1024"),
    (VALIDATE + ["--grid", "B=1;g=99;L=32"], "g=99 is out of range: give 0..16"),
    (VALIDATE + ["--grid", "B=100000;g=0;L=32"], "B=100000 is out of range"),
    (VALIDATE + ["--model", "{tiny}", "--grid", "B=1024;g=0;L=100000"], "at B=1024 γ=0 L=100000 needs about"),
    # calibrate
    (["calibrate", "--gpu", "-1"], "--gpu -1 is out of range: give 0..63"),
    (["calibrate", "--from-csv", "{empty}/t.csv", "--bootstrap", "-1"], "--bootstrap -1 is out of range: give 0..1000"),
    (["calibrate", "--from-csv", "{empty}/t.csv", "--bootstrap", "100000"], "give 0..1000"),
    (["calibrate", "--device", "cpu", "--model", "s1.1-32B", "--quick"], "timing s1.1-32B in fp32"),
    # serve
    (SERVE + ["--slots", "0"], "--slots 0 is out of range: give 1..1024"),
    (SERVE + ["--context", "64"], "at least 256"),
    (SERVE + ["--port", "70000"], "--port 70000 is out of range: give 0..65535"),
    (SERVE + ["--threads", "0"], "--threads 0 is out of range"),
    (SERVE + ["--draft-len", "99"], "--draft-len 99 is out of range: give 0..16"),
    # acceptance, traces, the lists of names
    (["acceptance", "{math}", "--logged-draft-len", "0"], "--logged-draft-len 0 is out of range: give 1..16"),
    (["traces", "convert", "{empty}/a.jsonl", "{empty}/b.jsonl", "--truncate", "0"], "--truncate: 0 is out of range"),
    (["hardware", "--bogus"], "No such option: --bogus"),
    (["models", "--bogus"], "No such option: --bogus"),
    (["curves", "--bogus"], "No such option: --bogus"),
    (["bogus"], "No such command 'bogus'"),
]


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    heads7 = root / "heads7.json"  # 7 heads do not divide a hidden size of 512
    heads7.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 512,
                                  "num_attention_heads": 7, "intermediate_size": 1024, "vocab_size": 1000}))
    (root / "empty").mkdir()
    folder = root / "folder"
    folder.mkdir()
    (folder / "traces.jsonl").write_text(Path(QWEN).read_text())
    return {"heads7": str(heads7), "empty": str(root / "empty"), "folder": str(folder), "out": str(root / "out.jsonl"),
            "tiny": str(DATA / "tiny-llama" / "config.json"), "math": str(DATA / "math500.excerpt.jsonl")}


@pytest.fixture(autouse=True)
def machine_with_16_gb(monkeypatch):
    monkeypatch.setattr("lattts.hardware.cpu.available_memory_bytes", lambda: AVAILABLE_BYTES)


@pytest.mark.parametrize("argv,fragment", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_with_exit_code_2(argv, fragment, paths):
    args = [a.format(**paths) for a in argv]
    res = CliRunner().invoke(app, args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert fragment in lines[0] and "Traceback" not in res.output
    assert not Path(paths["out"]).exists()  # nothing half-written


def test_there_are_sixty_cases_or_more():
    assert len(CASES) >= 60 and len({tuple(a) for a, _ in CASES}) == len(CASES)
