"""Where the emulator is reachable, seen from the request at hand.

Starlette's ``request.base_url`` and ``request.url_for`` stop at the *outermost* app: when the
emulator is mounted inside another app (the engine mounts it at ``/stripe-emulator``) they lose
the mount prefix, and ``url_for`` cannot name the emulator's own routes at all. The ASGI
``root_path`` of the request, which a ``Mount`` extends by its prefix, is the emulator's own
root, standalone or mounted; every absolute URL the emulator builds from a request starts there.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection


def root_url(request: HTTPConnection) -> str:
    """The emulator's root URL, mount prefix included, without a trailing slash."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")
