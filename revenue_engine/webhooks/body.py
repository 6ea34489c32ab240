"""Reading a request body off ASGI ``receive`` under a hard size limit.

Starlette's ``request.body()`` buffers whatever arrives. Here a declared ``Content-Length``
over the limit is refused before a byte is read, and a body that grows past the limit (chunked
without a length, or longer than it claimed) is refused as soon as it does.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Receive


class BodyTooLarge(Exception):
    """The body is (or would be) larger than the limit: answer 413."""


class BadLength(Exception):
    """``Content-Length`` is not a non-negative integer: answer 400."""


class Disconnected(Exception):
    """The client went away before the body was complete: nothing to answer."""


async def read_body(headers: Headers, receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadLength()
        if int(declared) > limit:
            raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
