"""Batch functions: many keys in, one backend call per chunk, results in key order.

The DataLoader contract (graphql/dataloader): the result list has the keys'
length and order; a key's slot holds its value, None when the backend does not
have it, or the exception that stopped it. A chunk's failure lands in the slots
of that chunk's keys only, unless the backend keeps stale answers
(`stale_if_error_s`): then a key it answered before gets a `Stale` value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..backends import MISSING, BackendClient, CallScope
from ..backends.urls import DOT_SEGMENTS, list_chunks, resource
from ..errors import BackendBadResponse
from ..resilience import StaleStore

Slot = Any  # a value, None, a Stale value, or an Exception

Fetch = Callable[[list[str]], Awaitable[dict[str, Any]]]


async def _by_chunks(keys: Sequence[str], size: int, fetch: Fetch,
                     alone: Fetch | None = None, *,
                     stale: tuple[StaleStore | None, str] = (None, "")) -> list[Slot]:
    """Run `fetch` over chunks of keys concurrently and lay results out in key order.

    Keys that cannot travel in a comma-separated list go to `alone` (or to
    `fetch` on their own). The empty string is never a valid id: it is None.
    """
    wanted = [k for k in dict.fromkeys(keys) if k != ""]
    listable = [k for k in wanted if "," not in k]
    calls: list[tuple[list[str], Awaitable[dict[str, Any]]]] = []
    for key in wanted:
        if "," in key or (alone is not None and len(wanted) == 1):
            calls.append(([key], (alone or fetch)([key])))
    if len(wanted) > 1 or alone is None:
        calls += [(chunk, fetch(chunk)) for chunk in list_chunks(listable, size)]
    found: dict[str, Slot] = {}
    store, namespace = stale
    outcomes = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)
    for (chunk, _), outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            for key in chunk:
                found[key] = outcome if store is None else store.recall(namespace, key, outcome)
        else:
            if store is not None:
                store.remember(namespace, outcome)
            found.update(outcome)
    return [found.get(key) for key in keys]


def _bad(client: BackendClient, what: str) -> BackendBadResponse:
    return BackendBadResponse(client.service, f"answered with {what}")


def _index_entities(client: BackendClient, answer: Any) -> dict[str, Any]:
    if not isinstance(answer, list):
        raise _bad(client, "a body that is not a list")
    out: dict[str, Any] = {}
    for item in answer:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str | int):
            raise _bad(client, "an item that has no id")
        item["id"] = str(item["id"])
        out[item["id"]] = item
    return out


async def entities(client: BackendClient, collection: str, keys: Sequence[str],
                   scope: CallScope) -> list[Slot]:
    """`GET /{collection}?ids=...`, or `GET /{collection}/{id}` for a lone key."""

    async def many(chunk: list[str]) -> dict[str, Any]:
        answer = await client.get_json(f"/{collection}", {"ids": ",".join(chunk)}, scope=scope)
        return _index_entities(client, answer)

    async def one(chunk: list[str]) -> dict[str, Any]:
        if chunk[0] in DOT_SEGMENTS:  # not a path segment: asked for in the list form
            return await many(chunk)
        answer = await client.get_json(resource(collection, chunk[0]), scope=scope,
                                       missing_ok=True)
        if answer is MISSING:
            return {}
        if not isinstance(answer, dict):
            raise _bad(client, "a body that is not an object")
        return {chunk[0]: _index_entities(client, [answer]).get(str(answer.get("id")))}

    return await _by_chunks(keys, client.max_batch_size, many, one,
                            stale=(client.stale, collection))


async def stock_levels(client: BackendClient, keys: Sequence[str],
                       scope: CallScope) -> list[Slot]:
    """`GET /inventory?ids=...` -> `{"A1": 120}`; an unknown product is None."""

    async def many(chunk: list[str]) -> dict[str, Any]:
        answer = await client.get_json("/inventory", {"ids": ",".join(chunk)}, scope=scope)
        if not isinstance(answer, dict):
            raise _bad(client, "a body that is not an object")
        levels: dict[str, Any] = {}
        for key, level in answer.items():
            if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
                raise _bad(client, "a stock level that is not an integer")
            levels[str(key)] = level
        return levels

    return await _by_chunks(keys, client.max_batch_size, many, stale=(client.stale, "stock"))


async def reviews_by_product(client: BackendClient, keys: Sequence[str],
                             scope: CallScope) -> list[Slot]:
    """`GET /reviews?product_ids=...`, grouped; a product with none gets []."""

    async def many(chunk: list[str]) -> dict[str, Any]:
        answer = await client.get_json("/reviews", {"product_ids": ",".join(chunk)},
                                       scope=scope)
        grouped: dict[str, Any] = {key: [] for key in chunk}
        for review in _index_entities(client, answer).values():
            product_id = str(review.get("product_id"))
            if product_id in grouped:
                grouped[product_id].append(review)
        return grouped

    return await _by_chunks(keys, client.max_batch_size, many,
                            stale=(client.stale, "by_product"))


async def lists_per_key(keys: Sequence[Any], fetch: Callable[[Any], Awaitable[Any]], *,
                        stale: tuple[StaleStore | None, str] = (None, "")) -> list[Slot]:
    """For calls the contract cannot batch (one `user_id` per call): one call per
    distinct key, all concurrent."""
    store, namespace = stale
    outcomes = await asyncio.gather(*(fetch(key) for key in keys), return_exceptions=True)
    slots: list[Slot] = []
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            slots.append(outcome if store is None else store.recall(namespace, key, outcome))
        else:
            if store is not None:
                store.remember(namespace, {key: outcome})
            slots.append(outcome)
    return slots


def entity_list(client: BackendClient, answer: Any) -> list[dict[str, Any]]:
    return list(_index_entities(client, answer).values())
