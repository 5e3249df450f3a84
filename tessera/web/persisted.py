"""Persisted queries: Automatic Persisted Queries, and an allow-list from a manifest.

    persisted = PersistedQueries.from_settings(settings.persisted_queries)
    resolved = persisted.resolve(params.query, params.extensions)   # or RequestError
    ...                                    # run resolved.query; if it was not refused:
    persisted.remember(resolved)

APQ (the protocol Apollo Client's persisted-query link speaks): a client sends
`extensions.persistedQuery = {"version": 1, "sha256Hash": H}` without the query;
on a miss it gets `PersistedQueryNotFound` and sends the query with the hash,
which is verified, and kept once it has run (a document that does not parse,
validate or pass the limits is never kept) in an LRU bounded in entries and
bytes, in process. With a manifest
(Apollo's `persisted-query-manifest` JSON, or a plain {hash: query} object),
only the operations listed run: known hashes, or a query whose hash is listed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import PersistedQuerySettings
from ..errors import ConfigError, RequestError
from ..lru import LRU

_HASH = re.compile(r"[0-9a-f]{64}")

NOT_FOUND = "PersistedQueryNotFound"  # Apollo Client matches this message exactly


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Resolved:
    query: str
    register: str | None = None  # the hash to keep the query under once it has run


def _utf8_size(query: str) -> int:
    return len(query.encode("utf-8", "surrogatepass"))


class PersistedQueries:
    def __init__(self, settings: PersistedQuerySettings,
                 manifest: dict[str, str] | None = None) -> None:
        self.enabled = settings.enabled or manifest is not None
        self.manifest = manifest
        self._store: LRU[str, str] = LRU(settings.cache_size, weigh=_utf8_size,
                                         max_weight=settings.cache_bytes)

    @classmethod
    def from_settings(cls, settings: PersistedQuerySettings) -> PersistedQueries:
        manifest = None if settings.manifest is None else load_manifest(settings.manifest)
        return cls(settings, manifest)

    def resolve(self, query: Any, extensions: dict[str, Any] | None) -> Resolved:
        """The query text to run, or a RequestError saying why there is none."""
        wanted = _persisted_hash((extensions or {}).get("persistedQuery"))
        if wanted is not None and not self.enabled:
            raise RequestError("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
        if query is None:
            if wanted is None:
                raise RequestError("BAD_REQUEST", "The request has no 'query'.")
            found = self._lookup(wanted)
            if found is None:
                raise RequestError("PERSISTED_QUERY_NOT_FOUND", NOT_FOUND)
            return Resolved(found)
        if not isinstance(query, str):
            raise RequestError("BAD_REQUEST", "'query' must be a string.")
        if wanted is not None or self.manifest is not None:
            actual = sha256(query)
            if wanted is not None and actual != wanted:
                raise RequestError("PERSISTED_QUERY_HASH_MISMATCH",
                                   "The query does not match its sha256Hash.")
            if self.manifest is not None:
                if actual not in self.manifest:
                    raise RequestError("OPERATION_NOT_IN_ALLOWLIST", "This gateway runs only "
                                       "the operations in its persisted-query manifest.",
                                       403)
            else:
                return Resolved(query, register=actual)
        return Resolved(query)

    def wanted(self, extensions: dict[str, Any] | None) -> str | None:
        """The hash a request asks for (None without one; a bad one is a RequestError)."""
        return _persisted_hash((extensions or {}).get("persistedQuery"))

    def recalled(self, digest: str, text: str) -> Resolved | None:
        """A query found elsewhere (Redis) under `digest`, kept here too if it is
        what the hash says."""
        if self.manifest is not None or sha256(text) != digest:
            return None
        self._store.put(digest, text)
        return Resolved(text)

    def remember(self, resolved: Resolved) -> None:
        """Keep a registered query: call once it ran (parsed, validated, limits passed)."""
        if resolved.register is not None:
            self._store.put(resolved.register, resolved.query)

    def _lookup(self, digest: str) -> str | None:
        if self.manifest is not None:
            return self.manifest.get(digest)
        return self._store.get(digest)


def _persisted_hash(value: Any) -> str | None:
    if value is None:
        return None
    digest = value.get("sha256Hash") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("version") != 1 or not isinstance(digest, str) \
            or not _HASH.fullmatch(digest.lower()):
        raise RequestError("BAD_REQUEST", "extensions.persistedQuery must be "
                           '{"version": 1, "sha256Hash": "<64 hex digits>"}.')
    return digest.lower()


def load_manifest(path: str) -> dict[str, str]:
    """Read a manifest; every entry's hash is checked against its body."""
    key = "persisted_queries.manifest"
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path} as JSON ({exc})") from None
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        entries = [(op.get("id"), op.get("body")) if isinstance(op, dict) else (None, None)
                   for op in raw["operations"]]
    elif isinstance(raw, dict):
        entries = list(raw.items())
    else:
        raise ConfigError(key, f"{path}: expected an object with 'operations' or "
                          "{hash: query}")
    manifest: dict[str, str] = {}
    for number, (digest, body) in enumerate(entries, 1):
        if not isinstance(digest, str) or not isinstance(body, str):
            raise ConfigError(key, f"{path}: entry {number} needs a string id and body")
        if sha256(body) != digest.lower():
            raise ConfigError(key, f"{path}: entry {number} ({digest[:12]}...): the id is not "
                              "the sha256 of its body")
        manifest[digest.lower()] = body
    return manifest
