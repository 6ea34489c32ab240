"""schema.graphql is the SDL the code exports: regenerate with `make schema` when this fails."""

from __future__ import annotations

from pathlib import Path

from revenue_engine.schema import export_sdl


def test_schema_file_is_current() -> None:
    committed = (Path(__file__).parents[2] / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "schema.graphql is stale: run `make schema`"
