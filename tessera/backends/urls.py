"""Building backend paths from client input, safely.

    >>> resource("orders", "../admin")
    '/orders/..%2Fadmin'
    >>> resource("orders", "..")
    '/orders/%2E%2E'
    >>> with_query("/orders", {"ids": "1,2,a b"})
    '/orders?ids=1,2,a%20b'
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote


def segment(value: str) -> str:
    """One percent-encoded path segment. Dot segments are encoded too, because
    URL normalisation would otherwise resolve them (`/orders/..` is `/`)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def resource(collection: str, key: str) -> str:
    return f"/{collection}/{segment(key)}"


def with_query(path: str, params: Mapping[str, str]) -> str:
    """Append a query string. Commas stay literal: they separate `ids` lists
    (ids that contain a comma are never put in a list)."""
    if not params:
        return path
    pairs = "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in params.items())
    return f"{path}?{pairs}"
