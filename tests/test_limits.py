"""Documented ranges of numeric flags, memory checks before live runs, the shape check of a config,
and the roofline's memory and device (issue 15)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import typing
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app
from lattts.errors import UserError
from lattts.limits import Range, count, real
from lattts.models import ModelSpec, resolve_model

TINY = str(Path(__file__).parent / "data" / "tiny-llama" / "config.json")


def run(*args):
    return CliRunner().invoke(app, list(args))


def _commands(typer_app, prefix=""):
    for c in typer_app.registered_commands:
        yield prefix + (c.name or c.callback.__name__), c.callback
    for g in typer_app.registered_groups:
        yield from _commands(g.typer_instance, prefix + g.name + " ")


def test_every_numeric_flag_has_a_range_shown_in_its_help():
    numeric = []
    for name, func in _commands(app):
        func = inspect.unwrap(func)
        hints = typing.get_type_hints(func)
        for pname, param in inspect.signature(func).parameters.items():
            if any(t in (int, float) for t in (typing.get_args(hints.get(pname)) or (hints.get(pname),))):
                numeric.append((name, pname))
                assert param.default.callback is not None, (name, pname)  # checked while parsing
                assert "Range: " in param.default.help, (name, pname)
    assert len(numeric) >= 30  # predict, roofline, accuracy, generate, measure, validate, calibrate, serve, acceptance


def test_range_text_and_membership():
    assert count(1, 128).text() == "1..128" and 128 in count(1, 128) and 129 not in count(1, 128)
    assert count(0).text() == ">= 0" and count(1, 2 ** 20).text() == "1..1,048,576"
    unit = real(0, 1, low_open=True, high_open=True)
    assert unit.text() == "(0, 1)" and 0.5 in unit and 0 not in unit and 1 not in unit
    assert float("nan") not in real() and float("inf") not in real(0) and real(0, low_open=True).text() == "> 0"
    assert Range(1, 8, why="because").problem("--x", 9) == "--x 9 is out of range: give 1..8 (because)"
    assert count(1, 8).problem("--x", 8) is None


def test_help_shows_the_range():
    res = run("predict", "--help")
    assert res.exit_code == 0 and "1..128" in res.output and "0..16" in res.output


# ---- memory before a live run ------------------------------------------------------------------

def test_engine_memory_is_the_simulators_count_plus_packed_weights_and_logits():
    from lattts.engine.memory import LOGIT_COPIES, engine_memory_bytes
    from lattts.simulator.generation import Workload, memory_required_bytes

    spec = resolve_model("smollm2-135m")
    work = Workload(target=spec, prompt_tokens=100)
    simulator = float(memory_required_bytes(work, "fp32", 8, 0, 256))
    logits = LOGIT_COPIES * 4 * 8 * spec.out_vocab
    assert engine_memory_bytes(work, "bf16", 8, 0, 256) == pytest.approx(
        float(memory_required_bytes(work, "bf16", 8, 0, 256)) + logits)  # no packed copies but in fp32
    packed = spec.linear_weight_bytes("fp32") + spec.lm_head_weight_bytes("fp32")
    assert engine_memory_bytes(work, "float32", 8, 0, 256) == pytest.approx(simulator + packed + logits)


def test_check_fits_refuses_with_the_figures(monkeypatch):
    from lattts.engine.memory import check_fits

    monkeypatch.setattr("lattts.hardware.cpu.available_memory_bytes", lambda: 8e9)
    check_fits(7e9, "a run", "make it smaller")
    check_fits(1e15, "a GPU run", "x", device="cuda:0")  # a GPU's memory is not checked here
    with pytest.raises(UserError, match=r"a run needs about 9 GB .* more than the 8 GB available here; make it smaller"):
        check_fits(9e9, "a run", "make it smaller")


def test_available_memory_reads_meminfo_and_a_lower_cgroup_limit(monkeypatch):
    from lattts.hardware import cpu

    files = {"/proc/meminfo": "MemTotal: 200 kB\nMemAvailable:   100 kB\n"}
    monkeypatch.setattr(cpu, "_read", lambda path: files.get(path, ""))
    assert cpu.available_memory_bytes() == 100 * 1024
    files |= {"/sys/fs/cgroup/memory.max": "60000\n", "/sys/fs/cgroup/memory.current": "10000\n"}
    assert cpu.available_memory_bytes() == 50000
    files["/sys/fs/cgroup/memory.max"] = "max\n"
    assert cpu.available_memory_bytes() == 100 * 1024


def test_generate_within_memory_is_not_refused(monkeypatch):
    monkeypatch.setattr("lattts.hardware.cpu.available_memory_bytes", lambda: 16e9)
    res = run("generate", "--model", TINY, "--prompt", "hi", "--branches", "2", "--max-tokens", "4", "--json")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["outputs"]) == 2


def test_live_workload_reads_shapes_without_weights():
    from lattts.engine.memory import live_workload

    work = live_workload(TINY, "self:2", 10)
    assert work.target.n_layers == 4 and work.draft.n_layers == 2 and work.draft_shares_weights
    assert live_workload("smollm2-135m", None, 10).target == resolve_model("smollm2-135m")


# ---- a config's shape ----------------------------------------------------------------------------

def _config(**extra):
    return {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 512, "num_attention_heads": 8,
            "intermediate_size": 1024, "vocab_size": 1000, **extra}


def test_hidden_size_must_divide_into_heads_unless_head_dim_is_given():
    with pytest.raises(UserError, match=r"hidden_size \(512\) is not a multiple of num_attention_heads \(7\).*8 heads"):
        ModelSpec.from_hf_config(_config(num_attention_heads=7), "m")
    spec = ModelSpec.from_hf_config(_config(num_attention_heads=7, num_key_value_heads=7, head_dim=64), "m")
    assert spec.q_dim == 448  # explicit head sizes need not tile the hidden size (Qwen3-style)
    with pytest.raises(UserError, match="head_dim 63 must be an even positive integer"):
        ModelSpec.from_hf_config(_config(head_dim=63), "m")
    with pytest.raises(UserError, match="num_key_value_heads must be a positive integer"):
        ModelSpec.from_hf_config(_config(num_key_value_heads=-2), "m")


# ---- roofline: memory, its device, its wording --------------------------------------------------

def test_roofline_leaves_out_batches_over_memory_and_never_prints_none():
    out = json.loads(run("roofline", "--device", "h100-sxm", "--json").stdout)  # s1.1-32B in bf16 on one H100
    batches = [r["batch"] for r in out["rows"]]
    assert batches == [1, 2, 4, 8, 16, 32] and out["batches_over_memory"] == [64, 128, 256, 512, 1024]
    assert all(r["memory_bytes"] <= out["usable_memory_bytes"] for r in out["rows"])
    text = run("roofline", "--device", "h100-sxm").stdout
    assert "None" not in text and "first compute-bound batch here: none up to B=32" in text
    assert "B = 64..1024 left out" in text


def test_roofline_chooses_the_device_predict_chooses(isolated_home):
    from lattts.hardware.cpu import detect_cpu
    from lattts.hardware.devices import find_device
    from lattts.hardware.profiles import datasheet_profile
    from lattts.hardware.store import profile_path
    from lattts.paths import write_atomic

    # a saved calibration of this CPU with 16 GB: it holds a tiny model, not s1.1-32B in fp32
    cpu_profile = replace(datasheet_profile(find_device("h100-sxm"), "fp32"), name="this CPU", kind="calibrated",
                          memory_bytes=16e9, dtype="fp32")
    path = profile_path(detect_cpu().key, "fp32")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(cpu_profile.to_json()))
    for model, device in (("s1.1-32B", "NVIDIA H100 SXM5 80GB"), (TINY, "this CPU")):
        roof = json.loads(run("roofline", "--model", model, "--context", "512", "--json").stdout)["device"]
        pred = json.loads(run("predict", "--budget", "10min", "--model", model, "--draft", "none", "--json",
                              "--curve", "qwen2.5-math-math100-n8").stdout)["device"]
        assert roof["name"] == pred["name"] == device, (model, roof, pred)


# ---- output to a pipe ----------------------------------------------------------------------------

def test_piped_output_is_not_wrapped_at_80_columns():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    res = subprocess.run([sys.executable, "-m", "lattts", "roofline", "--device", "h100-sxm"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    ridge = [line for line in res.stdout.splitlines() if "ridge point" in line]
    assert len(ridge) == 1 and len(ridge[0]) > 80 and ridge[0].rstrip().endswith("none up to B=32)")
