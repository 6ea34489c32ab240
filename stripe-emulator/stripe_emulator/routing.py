"""The route table of the emulated ``/v1`` API.

Each resource module exposes ``ROUTES``: ``Route("POST", "/v1/customers/{id}", handler)``.
Handlers are plain synchronous functions ``(ctx, params, **path_params) -> JSON`` that run under
the store lock, so one request's state change is atomic with respect to every other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stripe_emulator.forms import Params
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

Handler = Callable[..., JSON]


def _compile(pattern: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.regex.match(path)
        return found.groupdict() if found else None

    def call(self, ctx: Ctx, params: Params, path_params: dict[str, str]) -> JSON:
        result: Any = self.handler(ctx, params, **path_params)
        return dict(result)


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None
