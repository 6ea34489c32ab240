"""The import contracts in pyproject.toml name every top-level module of the package.

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
#: Modules allowed to reach the emulator: the entry points and the embedded default's wiring.
EMBEDDED_WIRING = {"__main__", "cli", "app", "embedded"}


def top_level_modules() -> set[str]:
    return {module.name for module in pkgutil.iter_modules(revenue_engine.__path__)}


def contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    found: list[dict[str, Any]] = [c for c in config["contracts"] if c.get("id") == contract_id]
    assert len(found) == 1, contract_id
    return found[0]


def tails(modules: list[str]) -> set[str]:
    """The top-level names of ``revenue_engine.<name>`` entries (third-party ones dropped)."""
    prefix = ROOT + "."
    return {m.removeprefix(prefix) for m in modules if m.startswith(prefix)}


def test_the_layers_name_every_module_once() -> None:
    layers = contract("layers")
    assert layers["exhaustive"] is True
    named = [m.strip() for layer in layers["layers"] for m in layer.replace(":", "|").split("|")]
    assert sorted(named) == sorted(top_level_modules())


def test_the_product_path_is_every_module_but_the_embedded_wiring() -> None:
    product = contract("product-path")
    assert tails(product["source_modules"]) == top_level_modules() - EMBEDDED_WIRING - {"emulator"}
    assert product.get("allow_indirect_imports", False) is False


def test_the_emulator_may_import_no_other_module() -> None:
    alone = contract("emulator-alone")
    assert tails(alone["source_modules"]) == {"emulator"}
    assert tails(alone["forbidden_modules"]) == top_level_modules() - {"emulator"}


def test_leaves_are_the_bottom_layer_and_may_import_no_module() -> None:
    leaves = contract("leaves")
    bottom = {m.strip() for m in contract("layers")["layers"][-1].split("|")}
    # The emulator is in the bottom layer too; its own contract forbids it the rest.
    assert tails(leaves["source_modules"]) == bottom - {"emulator"}
    assert tails(leaves["forbidden_modules"]) == top_level_modules()
