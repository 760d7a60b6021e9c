"""The layering STYLE.md describes, read from the source's imports: explore, metrics, dream and
web read runs through latentstudio.runs and never import the trainer; models never import the
layers above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import latentstudio

SRC = Path(latentstudio.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((SRC / package).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(SRC)} imports {module}")
    return out


@pytest.mark.parametrize("package", ["explore", "metrics", "dream", "web"])
def test_readers_of_runs_never_import_the_trainer(package: str) -> None:
    assert offenders(package, ("latentstudio.train",)) == []


@pytest.mark.parametrize("package, forbidden", [
    ("models", ("latentstudio.train", "latentstudio.runs", "latentstudio.explore",
                "latentstudio.metrics", "latentstudio.dream", "latentstudio.web",
                "latentstudio.commands", "latentstudio.cli")),
    ("data", ("latentstudio.train", "latentstudio.runs", "latentstudio.web",
              "latentstudio.commands", "latentstudio.cli")),
    ("runs", ("latentstudio.train.loop", "latentstudio.train.steps", "latentstudio.web",
              "latentstudio.commands", "latentstudio.cli")),
])
def test_lower_layers_never_import_higher_ones(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_the_rule_sees_imports_inside_functions(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from latentstudio.train.loop import train\n")
    assert "latentstudio.train.loop" in imported_modules(path)
