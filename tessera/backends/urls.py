"""Building backend paths from client input, safely.

    >>> resource("orders", "../admin")
    '/orders/..%2Fadmin'
    >>> resource("orders", "4\\n2")
    '/orders/4%0A2'
    >>> with_query("/orders", {"ids": "1,2,a b"})
    '/orders?ids=1,2,a%20b'
    >>> resource("orders", "..")
    Traceback (most recent call last):
    ...
    tessera.backends.urls.Unaddressable: '..' cannot be a path segment

`.` and `..` cannot be sent as one path segment: every URL layer between
Tessera and a backend (httpx, aiohttp's yarl, proxies, the backend's router)
may resolve them, even percent-encoded (`%2E` is an unreserved character, and
normalisers decode it), so `/orders/%2E%2E` would reach `GET /`. Callers
refuse them (`Unaddressable`) or send them in a query string instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

DOT_SEGMENTS = frozenset({".", ".."})
LINE_BREAK = re.compile(r"[\r\n\x00]")  # what no header value may hold
MAX_URL_CHARS = 16 * 1024  # more than most servers accept in a request line
MAX_LIST_CHARS = 8000  # an `ids=` list longer than this is split into more calls


class Unaddressable(ValueError):
    """A value that cannot be sent as a path segment."""


def segment(value: str) -> str:
    """One percent-encoded path segment (`/`, `?`, `#`, `%`, CR, LF all encoded)."""
    if value in DOT_SEGMENTS:
        raise Unaddressable(f"{value!r} cannot be a path segment")
    return value if value.isalnum() and value.isascii() else quote(value, safe="")


def encode(value: str) -> str:
    """One query-string value, percent-encoded (a plain id as it is)."""
    return value if value.isalnum() and value.isascii() else quote(value, safe="")


def resource(collection: str, key: str) -> str:
    return f"/{collection}/{segment(key)}"


def with_query(path: str, params: Mapping[str, str]) -> str:
    """Append a query string. Commas stay literal: they separate `ids` lists
    (ids that contain a comma are never put in a list)."""
    if not params:
        return path
    pairs = "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in params.items())
    return f"{path}?{pairs}"


def fill(template: str, values: Mapping[str, str]) -> str:
    """A path template's `{placeholders}` filled: in the path as one encoded segment
    each (`Unaddressable` for "." and ".."), in the query string as encoded values.

    >>> fill("/orders/{id}?limit={n}", {"id": "a/b", "n": "5"})
    '/orders/a%2Fb?limit=5'
    """
    path, sep, query = template.partition("?")
    filled = path.format_map({k: segment(v) for k, v in values.items()})
    if sep:
        filled += "?" + query.format_map({k: encode(v) for k, v in values.items()})
    return filled


def key_list(path: str, param: str, keys: list[str], *, repeat: bool = False) -> str:
    """`path` asking for a batch of keys: `?ids=1,2`, or `?id=1&id=2` with `repeat`.

    >>> key_list("/users", "ids", ["1", "a b"]), key_list("/p?x=1", "id", ["1", "2"], repeat=True)
    ('/users?ids=1,a%20b', '/p?x=1&id=1&id=2')
    """
    name = quote(param, safe="")
    joiner = "&" if "?" in path else "?"
    listed = ",".join(keys)
    plain = _all_plain(listed, keys)
    if repeat:
        if plain:
            return f"{path}{joiner}{name}=" + f"&{name}=".join(keys)
        return path + joiner + "&".join(f"{name}={encode(k)}" for k in keys)
    if not plain:
        listed = ",".join([encode(k) for k in keys])
    return f"{path}{joiner}{name}={listed}"


def _all_plain(listed: str, keys: list[str]) -> bool:
    """Is every one of `keys` (comma-joined as `listed`) a plain id, sent as it is
    (ASCII letters and digits)? One check of the joined string, not one per key."""
    return listed.count(",") == len(keys) - 1 and listed.isascii() \
        and listed.replace(",", "").isalnum() and "" not in keys


def list_chunks(keys: list[str], size: int) -> list[list[str]]:
    """Keys in chunks of at most `size` whose comma-joined, encoded form stays
    within MAX_LIST_CHARS (a longer key gets a chunk of its own).

    >>> list_chunks(["a", "b", "c"], 2)
    [['a', 'b'], ['c']]
    """
    if len(keys) <= size:
        listed = ",".join(keys)
        if len(listed) < MAX_LIST_CHARS and _all_plain(listed, keys):
            return [list(keys)] if keys else []
    chunks: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for key in keys:
        width = (len(key) if key.isalnum() and key.isascii() else len(quote(key, safe=","))) + 1
        if current and (len(current) >= size or chars + width > MAX_LIST_CHARS):
            chunks.append(current)
            current, chars = [], 0
        current.append(key)
        chars += width
    if current:
        chunks.append(current)
    return chunks


def header_value_ok(value: str) -> bool:
    """Can `value` travel as an HTTP/1.1 header value: no CR, LF or NUL (which
    would end the header and start another), and latin-1 only?"""
    if LINE_BREAK.search(value):
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
