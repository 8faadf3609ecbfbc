"""Size of the code's pieces: the longest functions, the longest parameter lists, the line count of
every CLI module. ``python scripts/code_metrics.py [--json]``; tests/test_structure.py holds the limits."""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lattts"


@dataclass(frozen=True)
class Function:
    module: str  # path below lattts/, e.g. 'simulator/search.py'
    name: str  # qualified: 'Class.method' or 'function'
    lines: int
    params: int  # parameters a caller can pass (self, cls, *args and **kwargs not counted)
    public: bool

    @property
    def where(self) -> str:
        return f"{self.module}:{self.name}"


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    if method and names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names)


def functions(package: Path = PACKAGE) -> list[Function]:
    """Every function and method of the package (nested functions included, under their parent's name)."""
    out: list[Function] = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(node: ast.AST, prefix: str, in_class: bool, public: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.", True, public and not child.name.startswith("_"))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    pub = public and not child.name.startswith("_") and not prefix.count("<locals>")
                    out.append(Function(module, name, child.end_lineno - child.lineno + 1,
                                        _params(child, in_class), pub))
                    visit(child, f"{name}.<locals>.", False, False)

        visit(tree, "", False, True)
    return out


def cli_lines(package: Path = PACKAGE) -> dict[str, int]:
    return {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted((package / "cli").glob("*.py"))}


def report(package: Path = PACKAGE) -> dict:
    fns = functions(package)
    longest = sorted(fns, key=lambda f: -f.lines)[:8]
    widest = sorted((f for f in fns if f.public), key=lambda f: -f.params)[:8]
    return {"longest_functions": [asdict(f) for f in longest], "longest_parameter_lists": [asdict(f) for f in widest],
            "cli_module_lines": cli_lines(package)}


def main() -> None:
    out = report()
    if "--json" in sys.argv:
        print(json.dumps(out, indent=2))
        return
    print("longest functions:")
    for f in out["longest_functions"]:
        print(f"  {f['lines']:4d} lines  {f['module']}:{f['name']}")
    print("longest public parameter lists:")
    for f in out["longest_parameter_lists"]:
        print(f"  {f['params']:4d} params {f['module']}:{f['name']}")
    print("cli modules:")
    for name, n in sorted(out["cli_module_lines"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:4d} lines  cli/{name}")


if __name__ == "__main__":
    main()
