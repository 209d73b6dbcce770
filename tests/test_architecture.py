"""The layering ARCHITECTURE.md describes, checked on the import statements of the package:
imports point down (pipeline -> model, extractors -> data), and no command module imports
another (only the drivers, `cli` and `demo`, call commands)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"pipeline": 3, "model": 2, "extractors": 2, "data": 1}  # higher may import lower
COMMANDS = {"extract", "train", "predict", "evaluate", "localize", "tune", "synth", "info"}
DRIVERS = {"cli", "demo"}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (at the top or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def package_files():
    for package in LAYERS:
        yield from sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", list(package_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    layer = path.relative_to(ROOT).parts[0]
    upward = sorted(m for m in imported_modules(path)
                    if m.split(".")[0] in LAYERS and m.split(".")[0] != layer
                    and LAYERS[m.split(".")[0]] >= LAYERS[layer])
    assert not upward, f"{path.relative_to(ROOT)} imports {upward} (same or higher layer)"


def test_no_command_imports_another():
    offenders = {}
    for name in COMMANDS:
        modules = imported_modules(ROOT / "pipeline" / f"{name}.py")
        used = sorted(m for m in modules if m.startswith("pipeline.")
                      and m.split(".")[1] in (COMMANDS | DRIVERS) - {name})
        if used:
            offenders[name] = used
    assert not offenders, f"command modules importing commands: {offenders}"


def test_algorithms_do_not_import_commands():
    algorithms = [p for p in sorted((ROOT / "pipeline").glob("*.py"))
                  if p.stem not in COMMANDS | DRIVERS | {"__init__"}]
    offenders = {p.stem: sorted(m for m in imported_modules(p) if m.startswith("pipeline.")
                                and m.split(".")[1] in COMMANDS | DRIVERS)
                 for p in algorithms}
    assert not {k: v for k, v in offenders.items() if v}
