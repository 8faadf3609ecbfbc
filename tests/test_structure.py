"""The code stays in pieces a newcomer can read (issue 11's limits), measured by scripts/code_metrics.py:
no public function outside the CLI takes more than 8 parameters (typer command functions are the
parser: one parameter per flag), no function of the simulator or the engine passes 60 lines, every
CLI module stays under 150 lines, and the simulator imports neither torch nor the layers above it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from code_metrics import PACKAGE, cli_lines, functions  # noqa: E402


def commands() -> set[str]:
    from lattts.cli import app

    names = {c.callback.__name__ for c in app.registered_commands}
    for group in app.registered_groups:
        names |= {c.callback.__name__ for c in group.typer_instance.registered_commands}
    return names


def test_no_public_function_takes_more_than_eight_parameters():
    cmds = commands()
    wide = [f"{f.where} ({f.params})" for f in functions()
            if f.public and f.params > 8 and not (f.module.startswith("cli/") and f.name in cmds)]
    assert wide == []


def test_simulator_and_engine_functions_are_short():
    long = [f"{f.where} ({f.lines} lines)" for f in functions()
            if f.module.split("/")[0] in ("simulator", "engine") and f.lines > 60]
    assert long == []


def test_cli_modules_are_thin():
    assert {name: n for name, n in cli_lines().items() if n >= 150} == {}


def test_simulator_imports_only_the_layers_below_it():
    allowed = ("lattts.simulator", "lattts.models", "lattts.dtypes", "lattts.errors", "lattts.units")
    bad = []
    for path in sorted((PACKAGE / "simulator").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name.startswith("lattts") and not name.startswith(allowed) or name.split(".")[0] == "torch":
                    bad.append(f"simulator/{path.name}: {name}")
    assert bad == []
