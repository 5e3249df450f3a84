"""An answered request leaves nothing for the cyclic garbage collector: its
context, loaders, records and executor are freed by reference counting the
moment the answer is sent. (A reference cycle there kept whole requests alive
until a collection ran, and those collections were a fifth of the gateway's CPU
under load; `tessera serve` also raises the collector's threshold, which is
safe only while answered requests leave no cycles.)"""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

import pytest
from conftest import Recorder, gateway
from test_execution import BENCHMARK

OURS = ("tessera", "graphql", "strawberry", "aiodataloader")


def _ours(garbage: list[Any]) -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage
                   if type(o).__module__.split(".")[0] in OURS)


@pytest.mark.anyio
@pytest.mark.parametrize(("query", "variables"), BENCHMARK)
async def test_an_answered_request_leaves_no_reference_cycle(
        query: str, variables: dict[str, Any] | None) -> None:
    async with gateway({}, Recorder()) as client:
        body = {"query": query, "variables": variables}
        assert "data" in (await client.post("/graphql", json=body)).json()  # warm
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                answer = (await client.post("/graphql", json=body)).json()
                assert answer["data"] and not answer.get("errors")
            gc.collect()
            left = _ours(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert not left, left


def test_a_served_worker_freezes_its_startup_heap_and_raises_the_threshold(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from tessera.app import serve_app
    from tessera.web.server import YOUNG_THRESHOLD

    config = tmp_path / "tessera.toml"
    config.write_text("[server]\nlog_level = \"warning\"\n")
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    threshold = gc.get_threshold()
    try:
        serve_app()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 10_000  # the schema, the graph, the app
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
