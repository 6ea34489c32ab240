"""The emulator is a distribution of its own: its package imports only the standard library,
the dependencies its pyproject.toml declares, and itself (never the application it serves)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import stripe_emulator

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = Path(stripe_emulator.__file__).resolve().parent


def declared_dependencies() -> set[str]:
    """Import names of the runtime dependencies (``starlette>=1.10,<2`` -> ``starlette``)."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0] for spec in project["dependencies"]}
    return {name.lower().replace("-", "_") for name in names}


def imported_top_levels(path: Path) -> dict[str, int]:
    """Every absolute import's top-level name in ``path``, with the line of its first use."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def test_the_tests_read_the_package_of_this_project() -> None:
    assert PACKAGE == PROJECT / "stripe_emulator"


def test_the_dependencies_are_declared_and_few() -> None:
    assert declared_dependencies() == {"starlette", "uvicorn", "httpx"}


def test_the_package_imports_only_the_standard_library_and_its_dependencies() -> None:
    allowed = set(sys.stdlib_module_names) | declared_dependencies() | {"stripe_emulator"}
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40  # the whole package, subpackages included
    undeclared = [
        f"{path.relative_to(PROJECT)}:{line}: {name}"
        for path in files
        for name, line in imported_top_levels(path).items()
        if name not in allowed
    ]
    assert undeclared == []


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import json\nfrom revenue_engine.settings import Settings\n")
    assert imported_top_levels(sample) == {"json": 1, "revenue_engine": 2}
