"""The `tessera` command: a thin layer over the package.

    tessera serve [--config FILE] [--host H] [--port P]
    tessera demo-backends [--config FILE] [--port 8101] [--latency-ms N] [--fail NAME ...]
                          [--only NAME]
    tessera stdio [--config FILE]
    tessera check [--config FILE]            # declarations, backends, N+1 paths
    tessera export-schema [--config FILE] [--federation]
    tessera schema-diff OLD.graphql NEW.graphql
    tessera check-config FILE
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .config import Settings, load_settings
from .errors import ConfigError

DEMO_PORT = 8101  # demo-backends' first port unless a config or --port says

if TYPE_CHECKING:
    from .gateway import Gateway

EXIT_CONFIG = 2
DISTRIBUTION = "tessera-gateway"  # the package index name ("tessera" is someone else's)


def _gateway(path: str | None) -> Gateway:
    """Load the config and build everything from it (graph, schema, routes, backends),
    or stop with the config error."""
    from .gateway import Gateway
    from .observability import tracing
    from .web.persisted import PersistedQueries

    try:
        settings = load_settings(path)
        gateway = Gateway.build(settings)
        PersistedQueries.from_settings(settings.persisted_queries)  # reads the manifest
        tracing.check(settings.tracing)
        return gateway
    except ConfigError as exc:
        print(f"tessera: config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _settings(path: str | None) -> Settings:
    return _gateway(path).settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .observability.logs import configure_logging

    gateway = _gateway(args.config)
    settings = gateway.settings
    server = settings.server
    host = args.host or server.host
    port = args.port or server.port
    configure_logging(server)
    print(f"tessera: serving the graph '{gateway.graph.name}' over "
          f"{len(gateway.backends)} backends", file=sys.stderr)
    embedded = [name for name in gateway.backends if settings.url(name) is None]
    if embedded:
        print(f"tessera: embedded demo backends for: {', '.join(embedded)}", file=sys.stderr)
    faulty = [name for name in gateway.backends if settings.policy(name).fault.active]
    if faulty:
        print(f"tessera: FAULT INJECTION on for: {', '.join(faulty)} (drill config)",
              file=sys.stderr)
    print(f"tessera: {describe_profile(settings)}", file=sys.stderr)
    if server.graphiql:
        print(f"tessera: GraphiQL at http://{host}:{port}/graphql", file=sys.stderr)
    if server.workers > 1:
        return _serve_workers(args, gateway, host, port)
    from .app import create_app
    from .observability import tracing
    from .web.health import DrainingServer
    from .web.server import raise_fd_limit, settle_heap, uvicorn_options

    tracing.setup(settings.tracing)
    raise_fd_limit(server.max_connections + _backend_connections(gateway) + 64)
    config = uvicorn.Config(create_app(settings, graph=gateway.graph), host=host, port=port,
                            **uvicorn_options(settings))
    settle_heap()
    DrainingServer(config, server.drain_delay_s).run()
    return 0


def _serve_workers(args: argparse.Namespace, gateway: Gateway, host: str, port: int) -> int:
    """N worker processes (uvicorn's supervisor). Each imports the factory and reads
    the same file; their metrics meet in a fresh multiprocess directory."""
    import shutil
    import tempfile

    import uvicorn

    from .observability.metrics import MULTIPROC_ENV
    from .web.server import raise_fd_limit, uvicorn_options

    settings = gateway.settings
    if args.config:
        os.environ["TESSERA_CONFIG"] = os.path.abspath(args.config)
    raise_fd_limit(settings.server.max_connections + _backend_connections(gateway) + 64)
    metrics_dir = tempfile.mkdtemp(prefix="tessera-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run("tessera.app:serve_app", factory=True, host=host, port=port,
                    workers=settings.server.workers, **uvicorn_options(settings))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _backend_connections(gateway: Gateway) -> int:
    return sum(gateway.settings.policy(name).max_connections for name in gateway.backends)


def describe_profile(settings: Settings) -> str:
    """One line: the profile and what it implies, as configured."""
    server = settings.server
    switches = ", ".join(f"{name} {'on' if getattr(server, name) else 'off'}"
                         for name in ("graphiql", "introspection", "suggestions"))
    extra = []
    if settings.persisted_queries.manifest:
        extra.append("persisted-query allow-list on")
    extra.append(f"rate limit {'on' if settings.rate_limit.enabled else 'off'}")
    hint = "" if server.profile == "production" else \
        ' (set [server] profile = "production" for a public deployment)'
    return f"profile {server.profile}: {switches}; {', '.join(extra)}{hint}"


def _demo_backends(args: argparse.Namespace) -> int:
    from .compose.graph import graph_for
    from .demo import SPIN_S, PortTaken, run_demo_backends, serve_demo_backends

    try:
        settings = load_settings(args.config)
        graph = graph_for(settings)
    except ConfigError as exc:
        print(f"tessera: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    names = graph.demo_names
    if not names:
        print(f"tessera: demo-backends: the graph '{graph.name}' has no demo services",
              file=sys.stderr)
        return EXIT_CONFIG
    unknown = sorted((set(args.fail) | ({args.only} if args.only else set())) - set(names))
    if unknown:
        print(f"tessera: --fail/--only: unknown service {', '.join(unknown)}; "
              f"the services are {', '.join(names)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        run_demo_backends(serve_demo_backends(graph, args.host, args.port or DEMO_PORT,
                                              latency_ms=args.latency_ms, failing=args.fail,
                                              only=args.only,
                                              at=None if args.port else _configured_ports(
                                                  settings, names, args.host)),
                          spin=SPIN_S if args.latency_ms else 0.0)
    except PortTaken as exc:
        print(f"tessera: demo-backends: {exc}; choose another with --port", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        pass
    return 0


def _configured_ports(settings: Settings, names: Iterable[str], host: str) -> dict[str, int]:
    """The port of each service whose configured `url` points at this host: there
    its demo is served, so the gateway of the same config finds it."""
    ports: dict[str, int] = {}
    for name in names:
        url = urlsplit(settings.url(name) or "")
        if url.scheme == "http" and url.port and url.hostname in (host, "localhost",
                                                                   "127.0.0.1"):
            ports[name] = url.port
    return ports


def _stdio(args: argparse.Namespace) -> int:
    from .stdio import serve_stdio

    settings = _settings(args.config)
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    asyncio.run(serve_stdio(settings))
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    if not args.federation:
        print(_gateway(args.config).schema.as_str())
        return 0
    from .gateway import Gateway

    settings = _settings(args.config)
    federated = settings.model_copy(update={"graph": settings.graph.model_copy(
        update={"federation": True})})
    print(Gateway.build(federated).schema.as_str())
    return 0


def _check(args: argparse.Namespace) -> int:
    from .compose.check import report

    gateway = _gateway(args.config)
    text, failed = report(gateway)
    print(text)
    return 1 if failed else 0


def _schema_diff(args: argparse.Namespace) -> int:
    from .compose.diff import diff_files

    try:
        text, breaking = diff_files(args.old, args.new)
    except ConfigError as exc:
        print(f"tessera: schema-diff: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(text)
    return 1 if breaking else 0


def _cache_purge(args: argparse.Namespace) -> int:
    """Ask a running gateway to forget cached answers (its admin endpoint)."""
    import httpx

    settings = _settings(args.config)
    token = settings.admin.secret() or os.environ.get("TESSERA_ADMIN_TOKEN")
    if not token:
        print("tessera: cache purge needs the admin token: [admin] token / token_env in "
              "the config, or TESSERA_ADMIN_TOKEN", file=sys.stderr)
        return EXIT_CONFIG
    url = args.url or f"http://{settings.server.host}:{settings.server.port}"
    params = {k: v for k, v in (("backend", args.backend), ("key", args.key)) if v}
    try:
        answer = httpx.post(f"{url.rstrip('/')}/admin/cache/purge", params=params,
                            headers={"authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as exc:
        print(f"tessera: cache purge: cannot reach {url}: {type(exc).__name__}",
              file=sys.stderr)
        return 1
    if answer.status_code != 200:
        print(f"tessera: cache purge: {answer.status_code} {answer.text[:200]}",
              file=sys.stderr)
        return 1
    print(f"purged {answer.json()['purged']} cached answer(s)")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    gateway = _gateway(args.file)
    settings = gateway.settings
    embedded = [name for name in gateway.backends if settings.url(name) is None]
    print(f"{args.file}: ok (graph '{gateway.graph.name}'; "
          f"{len(gateway.backends) - len(embedded)} backends by URL, "
          f"{len(embedded)} embedded demo)")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tessera", description="GraphQL composition gateway")
    parser.add_argument("--version", action="version", version=f"tessera {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", help="TOML or JSON config file (default: $TESSERA_CONFIG)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo-backends",
                               help="serve the graph's demo services over HTTP")
    demo.add_argument("--config", help="TOML or JSON config file naming the graph")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int,
                      help="the first service's port, the others following (default: a "
                      "service whose url in --config is on this host gets that url's "
                      f"port, the rest {DEMO_PORT} and on)")
    demo.add_argument("--latency-ms", type=float, default=0.0)
    demo.add_argument("--only", metavar="SERVICE",
                      help="serve just this service, on --port (one container each)")
    demo.add_argument("--fail", action="append", default=[], metavar="SERVICE",
                      help="answer 503 from this service (repeatable)")
    demo.set_defaults(run=_demo_backends)

    stdio = commands.add_parser("stdio", help="the JSON line protocol on stdin/stdout")
    stdio.add_argument("--config", help="TOML or JSON config file (default: $TESSERA_CONFIG)")
    stdio.set_defaults(run=_stdio)

    export = commands.add_parser("export-schema", help="print the graph's schema SDL")
    export.add_argument("--config", help="TOML or JSON config file naming the graph")
    export.add_argument("--federation", action="store_true",
                        help="the Apollo Federation 2 subgraph SDL (@key, _service, _entities)")
    export.set_defaults(run=_export_schema)

    check_graph = commands.add_parser(
        "check", help="check the graph's declarations against the config; list N+1 paths")
    check_graph.add_argument("--config", help="TOML or JSON config file")
    check_graph.set_defaults(run=_check)

    diff = commands.add_parser("schema-diff", help="breaking and dangerous changes between "
                               "two SDL files (exit 1 on a breaking one)")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(run=_schema_diff)

    cache = commands.add_parser("cache", help="the entity cache of a running gateway")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    purge = cache_commands.add_parser("purge", help="forget cached answers")
    purge.add_argument("--config", help="the gateway's config (its admin token, address)")
    purge.add_argument("--backend", help="only this backend's answers")
    purge.add_argument("--key", help="only this key's answers")
    purge.add_argument("--url", help="the gateway's base URL (default: from the config)")
    purge.set_defaults(run=_cache_purge)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
    check.set_defaults(run=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
