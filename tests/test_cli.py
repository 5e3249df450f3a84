"""The commands, as a user runs them: real processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeClock, live_server, process_answering
from faults import free_port

ROOT = Path(__file__).resolve().parent.parent
TESSERA = [sys.executable, "-m", "tessera"]


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports."""
    for _ in range(50):
        base = free_port()
        if base + count > 65000:
            continue
        try:
            socks = []
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


@contextmanager
def running(*args: str, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([*TESSERA, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"tessera {args[0]} exited: {log.read().decode()}")
            try:
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start in 30 s"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:  # the test may have stopped it already
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_export_schema_prints_the_snapshot() -> None:
    out = subprocess.run([*TESSERA, "export-schema"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == (ROOT / "schema.graphql").read_text().strip()


def test_serve_with_embedded_demo_and_graphiql(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running("serve", "--port", str(port), ready_url=f"{url}/healthz"):
        page = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        body = httpx.post(f"{url}/graphql", json={
            "query": '{ order(id: "42") { user { name } items { product { name } } } }'}).json()
        assert body["data"]["order"]["user"]["name"] == "Aziz"
        via_get = httpx.get(f"{url}/graphql", params={"query": '{ product(id: "1") { name } }'})
        assert via_get.json() == {"data": {"product": {"name": "Widget"}}}
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"


def test_gateway_over_demo_backends_on_real_sockets(tmp_path: Path) -> None:
    base = free_port_run(5)
    names = ["orders", "users", "products", "inventory", "reviews"]
    config = tmp_path / "tessera.toml"
    config.write_text("".join(f'[backends.{name}]\nurl = "http://127.0.0.1:{base + i}"\n'
                              for i, name in enumerate(names)))
    port = free_port()
    with running("demo-backends", "--port", str(base), "--fail", "users",
                 ready_url=f"http://127.0.0.1:{base}/orders/42"), \
            running("serve", "--config", str(config), "--port", str(port),
                    ready_url=f"http://127.0.0.1:{port}/healthz"):
        response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={
            "query": '{ order(id: "42") { total user { name } items { stock } } }'})
    body = response.json()
    assert body["data"]["order"] == {"total": 70.0, "user": None,
                                     "items": [{"stock": 120}, {"stock": 0}]}
    assert body["errors"][0]["extensions"] == {"code": "BACKEND_UNAVAILABLE",
                                               "service": "users", "status": 503}
    assert str(base + 1) not in response.text


def test_benchmark_relay_makes_the_query_calls_hop_by_hop() -> None:
    """The benchmark's relay variant (a gateway of no cost, `bench.py --relay`):
    each request it answers makes the recorded calls, over its own kept-alive
    connections, and answers 200 with a fixed body; its health check makes none."""
    base, port = free_port_run(5), free_port()
    hops = [[[base, "/orders/42"]], [[base + 1, "/users/7"], [base + 2, "/products?ids=100"]]]
    relay = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--relay",
             json.dumps({"hops": hops, "port": port})]
    with running("demo-backends", "--port", str(base),
                 ready_url=f"http://127.0.0.1:{base}/_demo/calls"), \
            process_answering(relay, [f"http://127.0.0.1:{port}/healthz"]):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            answers = [client.post("/graphql", json={"query": "{ a }"}) for _ in range(3)]
        seen = [httpx.get(f"http://127.0.0.1:{base + i}/_demo/calls").json() for i in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"data": {}})] * 3
    assert [each["calls"] for each in seen] == [3, 3, 3]
    orders_at = [at for at, _ in seen[0]["recent"]]
    users_at = [at for at, _ in seen[1]["recent"]]
    assert all(o < u for o, u in zip(orders_at, users_at, strict=True))  # hop after hop


def test_demo_backends_serve_each_service_at_its_configured_url(tmp_path: Path) -> None:
    """The README's walkthrough: with the `url`s uncommented, `demo-backends --config`
    serves the fixtures where those urls point, and `serve` of the same config
    answers through them."""
    books, authors, port = free_port(), free_port(), free_port()
    config = tmp_path / "tessera.toml"
    config.write_text(f'[graph]\nmodule = "{ROOT / "examples" / "library" / "graph.py"}"\n'
                      f'[backends.books]\nurl = "http://127.0.0.1:{books}"\n'
                      f'[backends.authors]\nurl = "http://127.0.0.1:{authors}"\n')
    with running("demo-backends", "--config", str(config),
                 ready_url=f"http://127.0.0.1:{authors}/_demo/calls"), \
            running("serve", "--config", str(config), "--port", str(port),
                    ready_url=f"http://127.0.0.1:{port}/healthz"):
        body = httpx.post(f"http://127.0.0.1:{port}/graphql",
                          json={"query": "{ books { title author { name } } }"}).json()
        seen = [httpx.get(f"http://127.0.0.1:{at}/_demo/calls").json() for at in (books, authors)]
    assert "errors" not in body and len(body["data"]["books"]) == 4
    assert body["data"]["books"][0]["author"] == {"name": "Ursula K. Le Guin"}
    assert [each["calls"] for each in seen] == [1, 1]
    # what the benchmark replays: each call's target, in the order they arrived
    (books_at, books_call), = seen[0]["recent"]
    (authors_at, authors_call), = seen[1]["recent"]
    assert books_call == "/books" and authors_call == "/authors?id=1&id=2&id=3"
    assert books_at < authors_at


@pytest.mark.anyio
@pytest.mark.parametrize(("work", "failing", "status", "sent_at", "read_before"), [
    (0.03, False, 200, 0.05, 0.0),   # the work is within the 50 ms, not added to it
    (0.07, False, 200, 0.07, 0.0),   # work longer than the latency: answered when done
    (0.0, True, 503, 0.05, 0.0),     # --fail answers 503 after the same latency
    (0.0, False, 200, 0.05, 0.02),   # stamped on arrival (ARRIVED): 20 ms of other
])                                   # requests' work before the app got it count too
async def test_demo_latency_counts_from_the_requests_arrival(
        work: float, failing: bool, status: int, sent_at: float, read_before: float) -> None:
    """`--latency-ms 50`: a service answers 50 ms after the request arrived, as a
    service of that latency would, its own work done within that time. (It slept
    first and worked after: latency + work per call, and calls arriving together
    queued for the work, so latency x hops was no floor for the benchmark.) The
    arrival is when the request's bytes did, where the server stamped it
    (tessera.demo.ARRIVED), not when the app got the request."""
    from starlette.responses import JSONResponse

    from tessera.demo import ARRIVED, Conditions

    clock = FakeClock()
    start = clock.now

    async def service(scope: Any, receive: Any, send: Any) -> None:
        clock.advance(work)
        await JSONResponse({"ok": True})(scope, receive, send)

    sent: list[tuple[float, Any]] = []

    async def send(message: Any) -> None:
        sent.append((clock.now - start, message.get("status")))

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    def later(delay: float, callback: Any) -> Any:
        clock.advance(delay)
        return asyncio.get_running_loop().call_soon(callback)

    demo = Conditions(service, 50, failing, clock=clock, later=later)
    scope = {"type": "http", "method": "GET", "path": "/books", "raw_path": b"/books",
             "query_string": b"", "headers": []}
    if read_before:
        scope[ARRIVED] = start
        clock.advance(read_before)
    await demo(scope, receive, send)
    assert [at for at, _ in sent] == [pytest.approx(sent_at)] * 2
    assert sent[0][1] == status
    assert demo.recent[0] == (start, "/books") and demo.calls == 1


@pytest.mark.anyio
async def test_demo_answer_is_written_by_the_timer_itself() -> None:
    """The held answer is written in the timer's callback, before it returns (not by
    the request's task a loop pass later, behind what other requests queued); a
    request cancelled while held cancels its timer."""
    from starlette.responses import JSONResponse

    from tessera.demo import Conditions

    timers: list[Any] = []
    handles: list[asyncio.TimerHandle] = []

    def later(delay: float, callback: Any) -> Any:
        timers.append(callback)
        handles.append(asyncio.get_running_loop().call_later(3600, callback))
        return handles[-1]

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    demo = Conditions(JSONResponse({"ok": True}), 50, False, later=later)
    scope = {"type": "http", "method": "GET", "path": "/a", "raw_path": b"/a",
             "query_string": b"", "headers": []}
    held = asyncio.ensure_future(demo(scope, receive, send))
    while not timers:
        await asyncio.sleep(0)
    assert sent == []
    timers[0]()
    assert sent == ["http.response.start", "http.response.body"]
    await held

    other = asyncio.ensure_future(demo(scope, receive, send))
    while len(timers) < 2:
        await asyncio.sleep(0)
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    assert len(sent) == 2 and handles[1].cancelled()
    handles[0].cancel()


def test_demo_servers_stamp_each_request_with_when_its_bytes_arrived() -> None:
    """The demo services' protocol: each request's scope carries when its bytes
    arrived, on the monotonic clock, before the app runs; two requests sent in
    one write carry the same stamp."""
    from tessera.demo import ARRIVED, ArrivalStamped

    seen: list[tuple[float, float]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope[ARRIVED], time.monotonic()))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with live_server(app, http=ArrivalStamped, lifespan="off") as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            before = time.monotonic()
            client.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            answers = b""
            while answers.count(b"HTTP/1.1 200") < 2:
                answers += client.recv(4096)
    (first, ran), (second, _) = seen
    assert before <= first <= ran and second == first


def test_demo_loop_waits_on_epoll_with_a_fine_timeout() -> None:
    """The demo services' loop: timeouts below epoll's millisecond go to select() on
    the epoll descriptor; what is ready is still reported, at once, and the loop
    runs a server's sockets and timers."""
    import asyncio
    import selectors

    from tessera.demo import FineTimerSelector, run_demo_backends

    selector = FineTimerSelector(spin=0.0004)
    a, b = socket.socketpair()
    with selector, a, b:
        selector.register(a, selectors.EVENT_READ)
        assert selector.select(0.0005) == []
        assert selector.select(0.0002) == []  # polled only
        b.send(b"x")
        assert [key.fileobj for key, _ in selector.select(0.0002)] == [a]
        assert [key.fileobj for key, _ in selector.select(30)] == [a]
        assert [key.fileobj for key, _ in selector.select(0)] == [a]

    got: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader, writer = socket.socketpair()
        with reader, writer:
            reader.setblocking(False)
            loop.call_later(0.0015, writer.send, b"late")
            got.append(await asyncio.wait_for(loop.sock_recv(reader, 10), 30))

    run_demo_backends(main(), spin=0.0004)
    assert got == [b"late"]
    slack = Path("/proc/self/timerslack_ns")  # Linux: the loop's thread wakes on time
    if slack.exists() and os.access(slack, os.W_OK):
        assert slack.read_text().strip() == "1"


def test_serve_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[limits]\nmax_depth = \"deep\"\n")
    done = subprocess.run([*TESSERA, "serve", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "limits.max_depth" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["demo-backends", "--fail", "payments"]])
def test_demo_backends_rejects_unknown_service(args: list[str]) -> None:
    done = subprocess.run([*TESSERA, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "payments" in done.stderr
