"""Same-site paths the buyer is sent back to (Checkout success/cancel, the billing portal)."""

from __future__ import annotations

import re

#: The longest path accepted for a return URL.
MAX_PATH = 512

# Control characters (C0, DEL, C1), any whitespace, backslashes, and characters that would
# break out of an attribute or a URL if the address is ever echoed into a page.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\s\\<>"]')


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a path on this site (no scheme, no host), or ``None`` when it is."""
    if not path.startswith("/") or path.startswith("//"):
        return "must be a path on this site, starting with '/'"
    if len(path) > MAX_PATH:
        return f"must be at most {MAX_PATH} characters"
    if _UNSAFE.search(path):
        return "must not contain whitespace, control characters, backslashes, '<', '>' or '\"'"
    return None
