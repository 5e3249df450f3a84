"""The Tessera benchmark: real servers, a real load tool, figures that can be checked.

    make bench                                   # the full run (~20 minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --duration 5 --queries Q1 --latencies 0

For each backend latency it starts the graph's demo services as real HTTP
servers (`tessera demo-backends`), then each gateway variant (Tessera as
`tessera serve` with the shipped defaults; the naive baseline without loaders,
with a 10 s backend timeout and no breaker so it survives; and the Node peer
from ../shared/peer, Apollo Server 4 + dataloader + undici, when node and npm
are here; "quiet", Tessera without its request log line, to price it; and with
`--before REF`, the tessera package of an older commit, run with this venv's
libraries: `make bench` passes the commit the speed issue measured), each pinned
to core 0 where `taskset` exists while the backends and wrk share core 1. All
variants are up at once, each on its own port, and are driven in turn, round
after round (median of `--rounds`, 3). Queries are sent with variables, as
clients send them. For each query it warms up, then drives the gateway with wrk
and prints rps, p50, p99, the gateway's CPU time per request (from /proc, every
process of the gateway), backend calls per request (counted by the demo
services), peak RSS, the floor (latency x dependent hops) and the floor measured
(hops x the median time of one call to the demo services alone, timers and
HTTP exchange included) and the floor replayed ("repl.": the p50 of a client of
no cost doing only the query's own backend calls, recorded from the demo
services, at the same number of connections, up to 4: what the backends allow
at that load, their queueing under the same bursts included), then Tessera's ratios to
the peer from the same run. At those loads a "relay" row too: a gateway of no cost
(relay_server: a server that answers each request by making the query's recorded
calls, hop after hop, and writing a fixed body), driven by wrk like the gateways,
in the same rounds: the replayed floor plus the client's own HTTP hop, what any
gateway meets on this machine. Q4 is the blog example's N+1 query; the
peer serves the shop only, so Q4's Node figure comes from benchmarks/peer_blog.mjs,
the blog's schema and loaders written in the peer's style on its stack and
settings (Apollo Server 4, dataloader, undici, its backend checks). Nothing is
shared across requests: caching is off, and so is coalescing (on by default, it
lets wrk's identical concurrent queries share backend calls that the peer makes
once per request: Q1's CPU per request was ~15 % lower with it, a figure real
traffic of varied ids would not see).
Figures also go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVICES = ("orders", "users", "products", "inventory", "reviews")  # the shop's, in port order
BLOG = ("comments", "posts", "users")  # examples/blog's fixture services, in port order
BACKEND_PORT = 8401
GATEWAY_PORT = 8400
TICK = os.sysconf("SC_CLK_TCK")
REPLAYED_UP_TO = 4  # connections: the floor is replayed at loads up to this one
RELAY_PORT = GATEWAY_PORT + 9  # the relay variant's (see relay_server)

# name: (what, dependent hops, query, variables, graph)
QUERIES: dict[str, tuple[str, int, str, dict[str, object], str]] = {
    "Q1": ("order with user, items, product, stock", 2,
           "query($id: ID!) { order(id: $id) { id status total user { id name email } "
           "items { quantity unitPrice stock inStock product { id name price } } } }",
           {"id": "42"}, "shop"),
    "Q2": ("user with orders(limit: 20), items, product", 3,
           "query($id: ID!, $limit: Int!) { user(id: $id) { name orders(limit: $limit) "
           "{ id total items { quantity product { name price } } } } }",
           {"id": "7", "limit": 20}, "shop"),
    "Q3": ("products(ids: [100 ids]) with name, price, stock", 1,  # stock loads alongside
           "query($ids: [ID!]!) { products(ids: $ids) { name price stock } }",
           {"ids": [str(n) for n in range(100, 200)]}, "shop"),
    "Q4": ("blog: posts with user (the N+1 query)", 2,
           "{ posts { id title user { id name email } } }", {}, "blog"),
}
GRAPHS = {"shop": (SERVICES, None), "blog": (BLOG, ROOT / "examples" / "blog")}
PEER = ROOT.parent / "shared" / "peer"


@dataclass
class Row:
    variant: str
    query: str
    latency_ms: int
    connections: int
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    calls_per_req: int
    peak_rss_mb: float
    floor_ms: int
    errors: int
    # hops x the median time of one call to the demo backends alone, at this latency:
    # the floor measured (what the backends themselves take), next to the nominal one
    measured_floor_ms: float = 0.0
    # p50 of the query's own calls replayed by a client of no cost at this many
    # connections (_replay): the floor at this load, backends' queueing included
    replayed_floor_ms: float = 0.0


def _taskset(cores: str | None) -> list[str]:
    if cores is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cores]


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited at start (status {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: {what} did not answer {url} within 60 s")


def _refuse_taken(*ports: int) -> None:
    """Stop when something already listens on a port we are about to serve on: its
    answers would be taken for ours (a server left over from an earlier run, with
    other settings, answering the readiness check and then the load)."""
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"bench: port {port} is already in use (a server left "
                                 "from an earlier run?): stop it, then run the bench again")


@contextmanager
def _process(cmd: list[str], url: str, what: str, env: dict[str, str] | None = None,
             ports: Iterable[int] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd` on `ports` (the url's port and any others given), which must be
    free, and wait until `url` answers."""
    _refuse_taken(*{urllib.parse.urlsplit(url).port or 80, *ports})
    log = tempfile.TemporaryFile()  # never a pipe: nobody reads it while it runs
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_for(url, proc, what)
        yield proc
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group we started (it may have exited already)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tree(pid: int) -> list[int]:
    """`pid` and every live descendant (uvicorn workers included)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, []))
    return out


def _cpu_seconds(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def _rss_mb(pid: int, key: str = "VmHWM", *, tree: bool = True) -> float:
    """`key` of /proc/PID/status in MB, summed over `pid`'s descendants unless not
    `tree`."""
    total = 0
    for p in _tree(pid) if tree else [pid]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _demo_calls(services: int = len(SERVICES)) -> list[dict[str, Any]]:
    """Each demo service's `GET /_demo/calls`: the calls it served, and its recent
    targets with their arrival times."""
    answers = []
    for offset in range(services):
        url = f"http://127.0.0.1:{BACKEND_PORT + offset}/_demo/calls"
        with urllib.request.urlopen(url, timeout=5) as response:
            answers.append(json.load(response))
    return answers


def _backend_calls(services: int = len(SERVICES)) -> int:
    return sum(answer["calls"] for answer in _demo_calls(services))


def _settled_calls(services: int) -> int:
    """The backend calls served so far, once no more are arriving (requests queued
    by the last load run may still be finishing)."""
    calls = _backend_calls(services)
    for _ in range(50):
        time.sleep(0.2)
        calls, before = _backend_calls(services), calls
        if calls == before:
            break
    return calls


def _hops(seen: list[tuple[float, int, str]], latency: int) -> list[list[tuple[int, str]]]:
    """Calls as the demo services saw them arrive ((time, port, target), in order), in
    hops: a call arriving more than half a latency after its hop's first starts the
    next."""
    hops: list[list[tuple[int, str]]] = []
    first = -1.0
    for at, port, target in seen:
        if not hops or at - first > latency / 2000:
            hops.append([])
            first = at
        hops[-1].append((port, target))
    return hops


def _replay(hops: list[list[tuple[int, str]]], connections: int, seconds: int) -> float:
    """The floor at this load as the backends allow it: p50, in ms, of a client doing
    nothing but the query's recorded calls (each hop's at once, hops in turn, over
    keep-alive connections) from `connections` concurrent requests, pinned where
    the gateway runs. What a gateway of no cost would see: the demo services'
    timers and their own queueing under the same bursts included."""
    done = subprocess.run(
        [*_taskset("0"), sys.executable, __file__, "--replay",
         json.dumps({"hops": hops, "connections": connections, "seconds": seconds})],
        capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"bench: the replay failed: {done.stderr[-300:]}")
    return float(done.stdout)


async def _message(reader: Any) -> tuple[bytes, bool]:
    """One HTTP/1.1 message off a stream: its head, lower-cased, and whether it had a
    Content-Length (its body, that long, read and dropped)."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    length = re.search(rb"\r\ncontent-length: *(\d+)", head)
    if length is not None:
        await reader.readexactly(int(length.group(1)))
    return head, length is not None


async def _call(stream: tuple[Any, Any], target: str) -> None:
    """One recorded call over a kept-alive connection (raw HTTP/1.1 over asyncio
    streams), its answer read whole."""
    reader, writer = stream
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head, sized = await _message(reader)
    if not head.startswith(b"http/1.1 200"):
        raise SystemExit(f"replay: {target} answered {head[:40]!r}")
    if not sized:
        raise SystemExit(f"replay: {target} answered without a Content-Length")


async def _connect(hops: list[list[tuple[int, str]]]) -> dict[int, tuple[Any, Any]]:
    import asyncio

    ports = sorted({port for hop in hops for port, _ in hop})
    return {port: await asyncio.open_connection("127.0.0.1", port) for port in ports}


async def _calls(hops: list[list[tuple[int, str]]],
                 streams: dict[int, tuple[Any, Any]]) -> None:
    """The query's calls: each hop's at once, hops in turn."""
    import asyncio

    for hop in hops:
        await asyncio.gather(*(_call(streams[port], target) for port, target in hop))


def replay_client(spec: dict[str, Any]) -> float:
    """`bench.py --replay SPEC`: the client _replay runs (raw HTTP/1.1 over asyncio
    streams, so its own cost stays far below a gateway's)."""
    import asyncio

    hops, connections, seconds = spec["hops"], spec["connections"], spec["seconds"]

    async def requests(until: float, times: list[float]) -> None:
        streams = await _connect(hops)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                await _calls(hops, streams)
                times.append(time.perf_counter() - started)
        finally:
            for _, writer in streams.values():
                writer.close()

    async def run() -> float:
        warm: list[float] = []
        await asyncio.gather(*(requests(time.perf_counter() + 1, warm)
                               for _ in range(connections)))
        times: list[float] = []
        await asyncio.gather(*(requests(time.perf_counter() + seconds, times)
                               for _ in range(connections)))
        return sorted(times)[len(times) // 2] * 1000

    return asyncio.run(run())


RELAYED = b'{"data":{}}'


def relay_server(spec: dict[str, Any]) -> None:
    """`bench.py --relay SPEC`: the "relay" variant, a gateway of no cost. An HTTP
    server on SPEC's port (on uvloop where it is installed, as `tessera serve` runs)
    that answers each request by making the query's recorded calls (as the replay
    does, over kept-alive connections of its own per client connection) and writing
    a fixed body. Driven by wrk like the gateways, its p50 is the floor a gateway
    meets on this machine at this load: the replayed floor plus the client's own
    hop (its HTTP exchange and the wake-ups on each side), which every gateway pays
    and the replay leaves out. `GET /healthz` answers at once."""
    import asyncio

    hops, port = spec["hops"], spec["port"]
    ok = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
          + str(len(RELAYED)).encode() + b"\r\n\r\n" + RELAYED)

    async def serve(reader: Any, writer: Any) -> None:
        streams = await _connect(hops)
        try:
            while True:
                try:
                    head, _ = await _message(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if not head.startswith(b"get /healthz "):
                    await _calls(hops, streams)
                writer.write(ok)
        finally:
            writer.close()
            for _, backend in streams.values():
                backend.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def _body(query: str, variables: dict[str, object]) -> str:
    return json.dumps({"query": query, "variables": variables} if variables
                      else {"query": query})


def _wrk(query: str, variables: dict[str, object], connections: int, seconds: int,
         lua_dir: Path, port: int = GATEWAY_PORT) -> dict[str, float]:
    script = lua_dir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(_body(query, variables))}\n")
    out = subprocess.run(
        [*_taskset("1"), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/graphql"],
        capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if "Latency Distribution" not in out:
        raise SystemExit(f"bench: wrk gave no latency figures:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {"requests": requests,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "p99": _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "errors": (int(bad.group(1)) if bad else 0)
            + (sum(int(n) for n in errors.groups()) if errors else 0)}


def _check_answer(query: str, variables: dict[str, object], services: int,
                  port: int = GATEWAY_PORT) -> tuple[int, list[tuple[float, int, str]]]:
    """Send the query once: it must answer without errors. Returns the backend calls
    it cost (counted alone, so requests in flight at a run's edges do not blur it) and
    those the demo services recall, as (arrival on the host's monotonic clock, port,
    target), in order."""
    before = _settled_calls(services)
    started = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=_body(query, variables).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    if "errors" in body or not body.get("data"):
        raise SystemExit(f"bench: the gateway answered with errors: {json.dumps(body)[:300]}")
    after = _demo_calls(services)
    seen = sorted((at, BACKEND_PORT + offset, target) for offset, answer in enumerate(after)
                  for at, target in answer["recent"] if at >= started)
    return sum(answer["calls"] for answer in after) - before, seen


def _peer_ready() -> Path | None:
    """The Node peer, installed once into benchmarks/.peer (shared/ is read-only);
    None, saying why, where node or npm is missing or the install fails."""
    if not (shutil.which("node") and shutil.which("npm")):
        print("bench: the Node peer is SKIPPED: node and npm are not installed", flush=True)
        return None
    if not (PEER / "server.mjs").exists():
        print(f"bench: the Node peer is SKIPPED: {PEER} is not here", flush=True)
        return None
    home = ROOT / "benchmarks" / ".peer"
    if not (home / "node_modules").exists():
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(PEER, home)
        print("bench: installing the Node peer (npm ci)", flush=True)
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=home,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            shutil.rmtree(home, ignore_errors=True)
            print(f"bench: the Node peer is SKIPPED: npm ci failed: {done.stderr[-300:]}",
                  flush=True)
            return None
    # The blog's peer (Q4): ours, in the peer's style, run where its modules are.
    shutil.copy(ROOT / "benchmarks" / "peer_blog.mjs", home / "blog.mjs")
    return home


def _before_tree(ref: str, tmp: Path) -> Path | None:
    """The tessera package as it was at commit `ref`, unpacked into `tmp` (run with
    this venv's libraries, so "before" and "after" differ only in our code)."""
    home = tmp / "before"
    home.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "tessera"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"bench: the --before variant is SKIPPED: no commit {ref} here "
              f"({archive.stderr.decode().strip()[-200:]})", flush=True)
        return None
    subprocess.run(["tar", "-x", "-C", str(home)], input=archive.stdout, check=True)
    # GraphiQL's fetched files are not in git; that commit's page only needs them to exist
    static = ROOT / "tessera" / "web" / "static"
    if static.exists() and not (home / "tessera" / "web" / "static").exists():
        shutil.copytree(static, home / "tessera" / "web" / "static")
    return home


def _gateway_cmd(variant: str, workers: int, port: int = GATEWAY_PORT,
                 graph: str = "shop") -> list[str]:
    if variant == "before":
        return [str(BIN / "python"), "-P", "-m", "tessera", "serve", "--port", str(port)]
    if variant == "node":  # the peer's server, or for the blog ours in its style
        script = "server.mjs" if graph == "shop" else "blog.mjs"
        return ["node", str(ROOT / "benchmarks" / ".peer" / script), "--port", str(port)]
    if variant == "naive":
        return [str(BIN / "python"), str(ROOT / "benchmarks" / "naive_gateway.py"),
                "--port", str(port)]
    return [str(BIN / "tessera"), "serve", "--port", str(port)]


def _config(tmp: Path, workers: int, variant: str = "tessera", graph: str = "shop") -> Path:
    lines = ["[server]", f"workers = {workers}"]  # as shipped, but for coalescing
    if variant == "quiet":  # what the request log costs: Tessera without it
        lines.append("request_log = false")
    lines.append("")
    services, folder = GRAPHS[graph]
    if folder is not None:
        lines += ["[graph]", f'module = "{folder / "graph.py"}"', ""]
    lines += ["[defaults]"]
    if variant != "before" or "coalesce:" in (tmp / "before/tessera/config.py").read_text():
        lines += ["coalesce = false"]  # no sharing across requests (ddc6f77 had none)
    if variant == "naive":
        # The baseline makes tens of calls per query and overloads its backends at
        # 32 connections; without this its breakers open and it stops answering.
        lines += ["timeout_ms = 10000", "retries = 0",
                  "circuit_breaker = { enabled = false }"]
    lines.append("")
    for offset, name in enumerate(services):
        lines += [f"[backends.{name}]", f'url = "http://127.0.0.1:{BACKEND_PORT + offset}"']
    path = tmp / f"bench-{variant}-{workers}-{graph}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    variants = list(args.variants)
    if "node" in variants and _peer_ready() is None:
        variants.remove("node")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.before and _before_tree(args.before, tmp) is not None:
            variants.insert(0, "before")
        for graph in dict.fromkeys(QUERIES[q][4] for q in args.queries):
            queries = [q for q in args.queries if QUERIES[q][4] == graph]
            services, folder = GRAPHS[graph]
            chosen = []
            for variant in variants:
                if variant == "before" and graph != "shop" and \
                        not (tmp / "before" / "tessera" / "compose" / "graph.py").exists():
                    continue  # ddc6f77, before the speed work, served the shop only
                chosen += [(variant, w) for w in args.workers if variant == "tessera" or w == 1]
            for latency in args.latencies:
                backends = [*_taskset("1"), str(BIN / "tessera"), "demo-backends",
                            "--port", str(BACKEND_PORT), "--latency-ms", str(latency)]
                if folder is not None:
                    backends += ["--config", str(folder / "tessera.toml")]
                with _process(backends, f"http://127.0.0.1:{BACKEND_PORT}/_demo/calls",
                              "demo backends",
                              ports=range(BACKEND_PORT, BACKEND_PORT + len(services))):
                    call_ms = _lone_call_ms() if latency else 0.0
                    rows += _run_gateways(args, tmp, chosen, latency, graph, queries, call_ms)
    return rows


def _lone_call_ms(samples: int = 21) -> float:
    """The median time, in ms, of one call to a demo service with nothing else
    running: a path it does not serve, so its answer (a 404 after the latency) is
    the least work it does. Hops times this is the floor as the backends allow it
    (their timers and HTTP exchange included), next to latency x hops."""
    connection = http.client.HTTPConnection("127.0.0.1", BACKEND_PORT, timeout=10)
    times = []
    try:
        for _ in range(samples + 2):  # the first two open the connection and warm up
            started = time.perf_counter()
            connection.request("GET", "/_floor_probe")
            connection.getresponse().read()
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
    kept = sorted(times[2:])
    return round(kept[len(kept) // 2] * 1000, 2)


def _run_gateways(args: argparse.Namespace, tmp: Path, chosen: list[tuple[str, int]],
                  latency: int, graph: str, queries: list[str],
                  call_ms: float = 0.0) -> list[Row]:
    """Every variant's gateway up at once, each on its own port (idle ones cost
    nothing), driven in turn, round after round: a slow patch of the machine then
    falls on every variant alike instead of on whichever ran last. Each figure is
    the median of `args.rounds` rounds (by CPU per request)."""
    services = len(GRAPHS[graph][0])
    rows: list[Row] = []
    with ExitStack() as stack:
        gateways: dict[tuple[str, int], tuple[subprocess.Popen[bytes], int]] = {}
        for index, (variant, workers) in enumerate(chosen):
            port = GATEWAY_PORT + 10 + index  # past the backends (8401-8405)
            env = dict(os.environ, TESSERA_CONFIG=str(_config(tmp, workers, variant, graph)),
                       FAKES_BASE=f"http://127.0.0.1:{BACKEND_PORT}",
                       BLOG_BASE=f"http://127.0.0.1:{BACKEND_PORT}", NODE_ENV="production")
            if variant == "before":
                env["PYTHONPATH"] = str(tmp / "before")
            cores = "0" if workers == 1 else None
            proc = stack.enter_context(_process(
                [*_taskset(cores), *_gateway_cmd(variant, workers, port, graph)],
                f"http://127.0.0.1:{port}/healthz", f"gateway ({variant})", env))
            gateways[(variant, workers)] = (proc, port)
        connection_counts = [args.connections] + \
            ([4] if latency and args.connections != 4 else [])
        for name in queries:
            _, hop_count, query, variables, _ = QUERIES[name]
            checked = {key: _check_answer(query, variables, services, port)
                       for key, (_, port) in gateways.items()}
            calls = {key: count for key, (count, _) in checked.items()}
            # replayed: the calls as this code makes them (not the --before commit's)
            own = checked.get(("tessera", 1)) or next(iter(checked.values()))
            hops = _hops(own[1], latency) if latency else []
            with _relay(hops) as relay:
                rows += _run_rounds(args, tmp, name, latency, call_ms, connection_counts,
                                    gateways, calls, hops, relay)
    return rows


@contextmanager
def _relay(hops: list[list[tuple[int, str]]]
           ) -> Iterator[tuple[subprocess.Popen[bytes], int] | None]:
    """The relay variant (relay_server) for this query's calls, pinned where the
    gateways run; none at 0 ms (no floor to show)."""
    if not hops:
        yield None
        return
    cmd = [*_taskset("0"), sys.executable, __file__, "--relay",
           json.dumps({"hops": hops, "port": RELAY_PORT})]
    with _process(cmd, f"http://127.0.0.1:{RELAY_PORT}/healthz", "relay") as proc:
        yield proc, RELAY_PORT


def _run_rounds(args: argparse.Namespace, tmp: Path, name: str, latency: int,
                call_ms: float, connection_counts: list[int],
                gateways: dict[tuple[str, int], tuple[subprocess.Popen[bytes], int]],
                calls: dict[tuple[str, int], int], hops: list[list[tuple[int, str]]],
                relay: tuple[subprocess.Popen[bytes], int] | None) -> list[Row]:
    rows: list[Row] = []
    _, hop_count, query, variables, _ = QUERIES[name]
    if relay is not None:
        calls = {**calls, ("relay", 1): sum(len(hop) for hop in hops)}
    for connections in connection_counts:
        # at a few connections only: at 32 the one-process demo services are
        # saturated, and a client with a connection per request per service
        # meets them unlike a gateway's pool (it came out above the gateways'
        # medians: no floor there)
        near = bool(hops) and connections <= REPLAYED_UP_TO
        replayed = round(_replay(hops, connections, args.duration), 1) if near else 0.0
        drivers = dict(gateways)
        if relay is not None and near:
            drivers[("relay", 1)] = relay
        samples: dict[tuple[str, int], list[Row]] = {key: [] for key in drivers}
        for round_no in range(args.rounds):
            for (variant, workers), (proc, port) in drivers.items():
                if round_no == 0:
                    _wrk(query, variables, connections, args.warmup, tmp, port)
                cpu = _cpu_seconds(proc.pid)
                result = _wrk(query, variables, connections, args.duration, tmp, port)
                cpu = _cpu_seconds(proc.pid) - cpu
                n = max(1, int(result["requests"]))
                samples[(variant, workers)].append(Row(
                    variant, name, latency, connections, workers, round(result["rps"]),
                    result["p50"], result["p99"], round(cpu / n * 1e6),
                    calls[(variant, workers)], round(_rss_mb(proc.pid), 1),
                    hop_count * latency, int(result["errors"]),
                    round(hop_count * call_ms, 1), replayed))
        for measured in samples.values():
            row = sorted(measured, key=lambda r: r.cpu_us_per_req)[len(measured) // 2]
            print(_format(row), flush=True)
            rows.append(row)
    return rows


def soak(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Q1 at `args.connections` for `args.soak` seconds, once per `--workers` value;
    each worker's RSS read every 10 s. A gateway that keeps something per request
    grows here; a flat line per worker is the goal."""
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backends = [*_taskset("1"), str(BIN / "tessera"), "demo-backends",
                    "--port", str(BACKEND_PORT)]
        with _process(backends, f"http://127.0.0.1:{BACKEND_PORT}/_demo/calls", "backends",
                      ports=range(BACKEND_PORT, BACKEND_PORT + len(SERVICES))):
            for workers in args.workers:
                results.append(_soak_workers(args, tmp, workers))
    return results


def _soak_workers(args: argparse.Namespace, tmp: Path, workers: int) -> dict[str, Any]:
    env = dict(os.environ, TESSERA_CONFIG=str(_config(tmp, workers)))
    cores = "0" if workers == 1 else None  # as measure() runs them
    with _process([*_taskset(cores), *_gateway_cmd("tessera", workers)],
                  f"http://127.0.0.1:{GATEWAY_PORT}/healthz", "gateway", env) as gw:
        _, _, query, variables, _ = QUERIES["Q1"]
        _wrk(query, variables, args.connections, 5, tmp)  # warm: caches and pools filled
        pids = _workers_of(gw.pid)
        if len(pids) != workers:
            raise SystemExit(f"bench: soak: {len(pids)} worker processes, not {workers}")
        samples, requests = [[_rss_mb(p, "VmRSS", tree=False) for p in pids]], 0
        for _ in range(max(1, args.soak // 10)):
            requests += int(_wrk(query, variables, args.connections, 10, tmp)["requests"])
            samples.append([_rss_mb(p, "VmRSS", tree=False) for p in pids])
            print(f"soak: {workers} worker(s), {requests:>7} requests, RSS per worker "
                  f"{' / '.join(f'{mb:.1f}' for mb in samples[-1])} MB", flush=True)
    for index, (first, last) in enumerate(zip(samples[0], samples[-1], strict=True)):
        print(f"soak: {workers} worker(s), worker {index + 1}: RSS {first:.1f} -> {last:.1f} MB "
              f"over {requests} requests in all ({last - first:+.1f} MB)")
    return {"workers": workers, "requests": requests,
            "rss_start_mb": samples[0], "rss_end_mb": samples[-1]}


def _workers_of(pid: int) -> list[int]:
    """The processes serving requests: uvicorn's spawned workers under a supervisor,
    else the gateway itself."""
    spawned = []
    for child in _tree(pid)[1:]:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                spawned.append(child)
        except OSError:
            continue
    return sorted(spawned) or [pid]


HEADER = (f"{'variant':<8} {'query':<5} {'lat':>4} {'conn':>4} {'wrk':>3} {'rps':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'cpu µs/req':>10} {'calls/req':>9} "
          f"{'rss MB':>7} {'floor':>5} {'meas.':>5} {'repl.':>5} {'errs':>4}")


def _format(r: Row) -> str:
    return (f"{r.variant:<8} {r.query:<5} {r.latency_ms:>4} {r.connections:>4} {r.workers:>3} "
            f"{r.rps:>6} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.cpu_us_per_req:>10} "
            f"{r.calls_per_req:>9} {r.peak_rss_mb:>7} {r.floor_ms:>5} "
            f"{r.measured_floor_ms:>5} {r.replayed_floor_ms:>5} {r.errors:>4}")


def ratios(rows: list[Row], other: str = "node") -> list[str]:
    """Tessera against another variant (the Node peer, or the --before commit), per
    query, from this run's figures only."""
    lines = []
    for r in rows:
        if r.variant != "tessera" or r.workers != 1:
            continue
        peer = next((p for p in rows if p.variant == other and (p.query, p.latency_ms,
                     p.connections) == (r.query, r.latency_ms, r.connections)), None)
        if peer is None or not peer.rps or not peer.cpu_us_per_req:
            continue
        lines.append(f"{r.query:<5} {r.latency_ms:>4} {r.connections:>4}  rps {r.rps:>6} vs "
                     f"{peer.rps:>6} = {r.rps / peer.rps:.2f}x   CPU µs/req "
                     f"{r.cpu_us_per_req:>6} vs {peer.cpu_us_per_req:>6} = "
                     f"{r.cpu_us_per_req / peer.cpu_us_per_req:.2f}x   p50 "
                     f"{r.p50_ms:.1f} vs {peer.p50_ms:.1f} ms")
    return lines


def _ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk (Debian package)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        raise SystemExit("bench: needs the load tool wrk (`apt-get install wrk`, "
                         "`brew install wrk`); not found")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per figure, variants interleaved; the median is kept")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--latencies", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 20], help="backend latencies in ms, e.g. 0,20")
    parser.add_argument("--queries", type=lambda s: s.split(","), default=list(QUERIES))
    parser.add_argument("--variants", type=lambda s: s.split(","),
                        default=["tessera", "node", "quiet", "naive"])
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--before", metavar="REF", default="",
                        help="also run the tessera package of this git commit (e.g. ddc6f77, "
                        "the code the speed issue measured), same backends, same run")
    parser.add_argument("--label", default="", help="a name for this run in the JSON file")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS",
                        help="instead: Q1 for this long with each --workers value, "
                        "reading each worker's RSS every 10 s")
    parser.add_argument("--replay", metavar="SPEC", help=argparse.SUPPRESS)  # _replay's
    parser.add_argument("--relay", metavar="SPEC", help=argparse.SUPPRESS)  # _relay's
    args = parser.parse_args(argv)
    if args.replay:
        print(f"{replay_client(json.loads(args.replay)):.3f}")
        return 0
    if args.relay:
        relay_server(json.loads(args.relay))
        return 0
    # stopped (SIGTERM): unwind, so every server this run started is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: stopped"))
    unknown = set(args.queries) - set(QUERIES) or \
        set(args.variants) - {"tessera", "naive", "node", "quiet"}
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    _ensure_wrk()
    print(f"bench: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {args.duration:g} s per figure; "
          "nothing shared across requests (caching and coalescing off)", flush=True)
    if args.soak:
        soak(args)
        return 0
    print(HEADER, flush=True)
    rows = measure(args)
    compared = ratios(rows)
    if compared:
        print("\nTessera / Node peer, same run (query, latency ms, connections):")
        print("\n".join(compared))
    quiet = ratios(rows, "quiet")
    if quiet:
        print("\nTessera / Tessera without its request log line (quiet), same run:")
        print("\n".join(quiet))
    earlier = ratios(rows, "before")
    if earlier:
        print(f"\nTessera / Tessera at {args.before}, same run (query, latency ms, "
              "connections):")
        print("\n".join(earlier))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = out_dir / f"{stamp}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps({"date": stamp, "label": args.label, "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform()}, "args": {k: v for k, v in vars(args).items()},
        "shared_across_requests": "none: caching and coalescing off",
        "rows": [asdict(r) for r in rows], "ratios_to_peer": compared,
        "ratios_to_before": earlier, "ratios_to_quiet": quiet}, indent=2))
    print(f"bench: figures written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
