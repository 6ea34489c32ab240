"""The README stays a five-minute read and the docs/ pages it points at hold together: every
relative link reaches a file (and its anchor a heading there), and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from revenue_engine.settings import Settings

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
EMULATOR_README = ROOT / "stripe-emulator" / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (outside code blocks)."""
    found: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"^#{1,6} (.*)$", line)
        if heading and not in_code:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


def test_the_readme_is_short_and_shows_the_demo() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert text.index("make run") < text.index("## Try it")
    assert "make test" in text.split("## Try it", 1)[0]
    assert "](docs/demo.png)" in text
    assert (ROOT / "docs" / "demo.png").is_file()


@pytest.mark.parametrize(
    "page", [README, EMULATOR_README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f"{page.name}: {target} points at no file"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target} has no such heading"


def test_the_readme_links_every_docs_page() -> None:
    text = README.read_text(encoding="utf-8")
    for page in PAGES:
        assert f"](docs/{page.name})" in text or f"](docs/{page.name}#" in text, page.name


def test_every_setting_is_documented() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in [README, *PAGES])
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = (
            [str(choice).upper() for choice in alias.choices]
            if isinstance(alias, AliasChoices)
            else [name.upper()]
        )
        assert any(f"`{env}" in text for env in names), f"{names[0]} is not in README.md or docs/"
