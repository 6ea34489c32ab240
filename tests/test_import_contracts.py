"""The import contracts in pyproject.toml name every top-level module of the package, and keep
the engine and the emulator (``stripe_emulator``, a distribution of its own) apart.

``lint-imports`` (run by ``make lint``) checks the contracts; these tests check the contracts'
lists, so that a new module cannot slip past a rule by not being named in it.
"""

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import revenue_engine

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
ROOT = "revenue_engine"
EMULATOR = "stripe_emulator"
#: Modules allowed to reach the emulator: the entry points and the embedded default's wiring.
EMBEDDED_WIRING = {"__main__", "cli", "app", "embedded"}


def top_level_modules() -> set[str]:
    return {module.name for module in pkgutil.iter_modules(revenue_engine.__path__)}


def config() -> dict[str, Any]:
    found: dict[str, Any] = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]
    return found


def contract(contract_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in config()["contracts"] if c.get("id") == contract_id]
    assert len(found) == 1, contract_id
    return found[0]


def tails(modules: list[str]) -> set[str]:
    """The top-level names of ``revenue_engine.<name>`` entries (third-party ones dropped)."""
    prefix = ROOT + "."
    return {m.removeprefix(prefix) for m in modules if m.startswith(prefix)}


def test_the_engine_and_the_emulator_are_both_analysed() -> None:
    assert config()["root_packages"] == [ROOT, EMULATOR]
    assert "emulator" not in top_level_modules()  # the engine's package holds no emulator


def test_the_layers_name_every_module_once() -> None:
    layers = contract("layers")
    assert layers["exhaustive"] is True
    named = [m.strip() for layer in layers["layers"] for m in layer.replace(":", "|").split("|")]
    assert sorted(named) == sorted(top_level_modules())


def test_the_product_path_is_every_module_but_the_embedded_wiring() -> None:
    product = contract("product-path")
    assert tails(product["source_modules"]) == top_level_modules() - EMBEDDED_WIRING
    assert product["forbidden_modules"] == [EMULATOR]
    assert product.get("allow_indirect_imports", False) is False


def test_only_the_embedded_wiring_and_the_cli_import_the_emulator() -> None:
    importers = contract("emulator-importers")
    assert importers["protected_modules"] == [EMULATOR]
    assert tails(importers["allowed_importers"]) == {"embedded", "cli"}


def test_the_emulator_may_import_nothing_of_the_engine() -> None:
    alone = contract("emulator-alone")
    assert alone["source_modules"] == [EMULATOR]
    assert alone["forbidden_modules"] == [ROOT]  # the whole package, every submodule
    assert alone.get("allow_indirect_imports", False) is False


def test_leaves_are_the_bottom_layer_and_may_import_no_module() -> None:
    leaves = contract("leaves")
    bottom = {m.strip() for m in contract("layers")["layers"][-1].split("|")}
    assert tails(leaves["source_modules"]) == bottom
    assert tails(leaves["forbidden_modules"]) == top_level_modules()
    assert EMULATOR in leaves["forbidden_modules"]
