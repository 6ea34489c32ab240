"""Where in the query text an error is: graphql-core's line and column lookup, made cheap.

graphql-core finds an error's line and column by scanning the query text from its start up to
the error, once per error (``Source.get_location``, ``location.get_locations``): a query within
the length limit but padded with 60,000 newlines, with a hundred validation errors at its end,
cost six million Python steps — seconds of the event loop, on a cached query too (an error
shaped again computes its locations again). ``install`` replaces both with a lookup in an index
of the text's line breaks, built once per text: a bisect per location. Same answers (a test
compares them with graphql-core's on random texts).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence

from graphql.language import Source, SourceLocation
from graphql.language import location as location_module

#: graphql-core's line terminators: ``\r\n``, ``\n`` or ``\r``.
_NEWLINE = location_module._re_newline


@functools.lru_cache(maxsize=4)  # the errors of one request share one text
def _line_breaks(body: str) -> tuple[list[int], list[int]]:
    """Where each line break of ``body`` starts, and where the line after it starts."""
    starts: list[int] = []
    ends: list[int] = []
    for match in _NEWLINE.finditer(body):
        starts.append(match.start())
        ends.append(match.end())
    return starts, ends


def locate(body: str, position: int) -> SourceLocation:
    """The 1-based line and column of ``position`` in ``body``, as graphql-core counts them."""
    starts, ends = _line_breaks(body)
    before = bisect.bisect_left(starts, position)  # line breaks that start before it
    line_start = ends[before - 1] if before else 0
    return SourceLocation(before + 1, position + 1 - line_start)


def _get_location(self: Source, position: int) -> SourceLocation:
    return locate(self.body, position)


def _get_locations(locations: Sequence[tuple[Source, int]]) -> list[SourceLocation]:
    return [locate(source.body, start) for source, start in locations]


def install() -> None:
    """Use the indexed lookup in graphql-core (idempotent)."""
    Source.get_location = _get_location  # type: ignore[method-assign]
    location_module.get_locations = _get_locations
