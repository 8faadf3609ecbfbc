"""The README's quick start is what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.strip().splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    lines = quick_start()
    assert len(lines) == 2
    assert "lattts predict --budget 60s" in lines[0]
    assert "pytest" in lines[1]
    assert lines[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_defaults_the_readme_quotes_are_the_code_s():
    from lattts.hardware.profiles import ATTENTION_EFFICIENCY, BANDWIDTH_EFFICIENCY, MATMUL_EFFICIENCY
    from lattts.plan import PlanRequest
    from lattts.simulator.search import branch_grid

    text = (ROOT / "README.md").read_text()
    search = re.search(r"B in 1\.\.(\d+), γ in 0\.\.(\d+), L over the curve's lengths \((\d+) per", text)
    defaults = PlanRequest()
    assert (int(search.group(1)), int(search.group(2))) == (branch_grid(defaults.max_branches)[-1], defaults.max_draft_len)
    from lattts.simulator.accuracy import paper_curve, log2_grid

    assert paper_curve().search_lengths() == log2_grid(paper_curve().lengths, int(search.group(3)))
    eff = re.search(r"(\d+)% bandwidth, (\d+)% matmul, from measurements on an H100 SXM; (\d+)%", text.replace("\n  ", " "))
    assert [int(x) / 100 for x in eff.groups()] == [BANDWIDTH_EFFICIENCY, MATMUL_EFFICIENCY, ATTENTION_EFFICIENCY]


def test_help_text_quotes_the_defaults_it_uses():
    from typer.testing import CliRunner

    from lattts.calibrate.shapes import CPU_SHAPES
    from lattts.cli import app
    from lattts.plan import PROMPT_TOKENS_ASSUMED

    def help_of(command: str) -> str:
        return CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"}).stdout

    assert f"default: {PROMPT_TOKENS_ASSUMED}" in help_of("predict")
    assert ", ".join(CPU_SHAPES) in help_of("calibrate")


def test_readme_cpu_example_names_the_calibration_its_answer_comes_from():
    import json

    text = " ".join((ROOT / "README.md").read_text().split())
    assert "Its answer depends on the calibration the first line saved" in text
    quoted = re.search(r"With the calibration of .*?\(`([^`]+)`.*?\) it answers B=(\d+), γ=(\d+)", text)
    assert quoted, "the CPU example should quote its answer with the calibration behind it"
    from tests.test_golden import CPU_PROFILE

    assert quoted.group(1) == CPU_PROFILE
    best = json.loads((ROOT / "tests" / "data" / "golden" / "cpu-smollm2-10min.json").read_text())["best"]
    assert (best["branches"], best["draft_len"]) == (int(quoted.group(2)), int(quoted.group(3)))
