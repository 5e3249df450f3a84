"""Settings: one TOML or JSON file, validated at start.

    settings = load_settings("tessera.toml")          # or TESSERA_CONFIG, or defaults
    settings.policy("users").timeout_ms                # defaults merged with [backends.users]

Per-backend settings follow the Apollo Router shape: `[defaults]` applies to every
backend and `[backends.NAME]` overrides any of it for one. Any NAME is a backend;
one with no `url` is served by the graph's embedded demo service of that name.
`[graph] module` names the graph served (the shop when absent).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

BACKEND_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"

MiB = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorsSettings(_Section):
    """`[server.cors]`: which browser origins may call the gateway. Off (no origin)
    by default; `["*"]` allows any origin but never with credentials."""

    allow_origins: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=lambda: [
        "content-type", "authorization", "accept-language", "x-request-id",
        "apollo-require-preflight", "x-api-key"])
    allow_credentials: bool = False
    max_age_s: int = Field(600, ge=0, le=86_400)

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsSettings:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("allow_credentials cannot be used with allow_origins = [\"*\"]; "
                             "list the origins")
        return self


Profile = Literal["development", "production"]

# What `profile = "production"` turns off, unless the file sets the key itself.
PRODUCTION_OFF = ("graphiql", "introspection", "suggestions")


class ServerSettings(_Section):
    """`[server]`: where and how the gateway listens. `profile = "production"`
    turns GraphiQL, introspection and "Did you mean" suggestions off (each can
    still be set explicitly)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)  # "auto" in the file: one per core
    profile: Profile = "development"
    graphiql: bool = True
    introspection: bool = True
    suggestions: bool = True
    csrf_require_preflight: bool = False
    cors: CorsSettings = CorsSettings()
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    # the decoded bytes of backend answers all requests in progress may hold at once,
    # per worker; past it a call is refused (BACKEND_UNAVAILABLE, "memory_limit")
    max_backend_bytes: int = Field(64 * MiB, ge=1024)
    request_timeout_ms: int = Field(5000, ge=10)
    completeness_report: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    request_log: bool = True  # one line per client request on tessera.request
    shutdown_grace_s: float = Field(20, ge=0, le=600)
    drain_delay_s: float = Field(0, ge=0, le=120)
    # Slow clients: a request's headers must arrive within header_timeout_s of the
    # connection opening (or of the previous response), its body within
    # body_timeout_s of its headers; an idle kept-alive connection closes after
    # keep_alive_s; beyond max_connections open connections, requests get 503.
    header_timeout_s: float = Field(10, gt=0, le=300)
    body_timeout_s: float = Field(30, gt=0, le=600)
    keep_alive_s: float = Field(5, gt=0, le=300)
    max_connections: int = Field(1000, ge=1, le=1_000_000)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("profile") == "production":
            data = {**{key: False for key in PRODUCTION_OFF}, **data}
        if isinstance(data, dict) and data.get("workers") == "auto":
            data = {**data, "workers": max(1, min(64, len(os.sched_getaffinity(0))
                                                  if hasattr(os, "sched_getaffinity")
                                                  else os.cpu_count() or 1))}
        return data


class LimitSettings(_Section):
    """`[limits]`: checked before any backend call."""

    max_depth: int = Field(10, ge=1)
    max_aliases: int = Field(30, ge=0)
    max_tokens: int = Field(2000, ge=10)
    max_ids: int = Field(500, ge=1)
    max_cost: int = Field(5000, ge=1)
    assumed_list_size: int = Field(10, ge=1, le=1000)
    max_batch_operations: int = Field(10, ge=1, le=1000)


class TracingSettings(_Section):
    """`[tracing]`: OpenTelemetry spans, exported over OTLP/HTTP (needs
    `pip install 'tessera-gateway[otel]'`). Off by default; the standard OTEL_* variables
    apply when `otlp_endpoint` is not set."""

    enabled: bool = False
    service_name: str = "tessera"
    otlp_endpoint: str | None = None  # e.g. http://collector:4318/v1/traces
    sample_ratio: float = Field(1.0, ge=0, le=1)


class PersistedQuerySettings(_Section):
    """`[persisted_queries]`: Automatic Persisted Queries (the Apollo protocol) kept
    in a bounded in-process store (entries and bytes; only documents that parsed,
    validated and passed the limits are kept); with `manifest`, an allow-list:
    only the operations in that file run."""

    enabled: bool = True
    cache_size: int = Field(1000, ge=1, le=1_000_000)
    cache_bytes: int = Field(8 * MiB, ge=1024)  # query text kept, in UTF-8 bytes
    manifest: str | None = None


class RateLimitSettings(_Section):
    """`[rate_limit]`: a token bucket per client, in-process: per API key for the
    keys listed in `api_keys` (sent in `key_header`), else per peer address (an
    unknown key buys no bucket of its own). A batch of N operations takes N tokens."""

    enabled: bool = False
    requests_per_second: float = Field(50, gt=0)
    burst: int = Field(100, ge=1)
    key_header: str = "x-api-key"
    api_keys: list[str] = Field(default_factory=list)
    max_clients: int = Field(100_000, ge=1)


class RetryBudgetSettings(_Section):
    """`retry_budget`: retries may add at most `ratio` of the calls of the last
    `window_s` seconds, plus `min_per_second` (see `tessera.resilience.budget`)."""

    ratio: float = Field(0.2, ge=0, le=1)
    min_per_second: float = Field(1.0, ge=0)
    window_s: int = Field(10, ge=1, le=300)


class CircuitBreakerSettings(_Section):
    """`circuit_breaker`: opens when `failure_rate` of the last `window` calls failed
    (once `minimum_calls` are known); stays open `open_ms`; then lets
    `half_open_probes` calls decide (see `tessera.resilience.breaker`)."""

    enabled: bool = True
    failure_rate: float = Field(0.5, gt=0, le=1)
    window: int = Field(20, ge=1, le=10_000)
    minimum_calls: int = Field(10, ge=1)
    open_ms: int = Field(5000, ge=1)
    half_open_probes: int = Field(3, ge=1)


class BulkheadSettings(_Section):
    """`bulkhead`: at most `max_concurrent` calls in flight to the backend, at most
    `max_waiting` more waiting (within the request's deadline) for a slot."""

    max_concurrent: int = Field(100, ge=1)
    max_waiting: int = Field(1000, ge=0)


class FaultSettings(_Section):
    """`fault`: injected before the network, for demos and drills. Off by default."""

    latency_ms: int = Field(0, ge=0, le=600_000)
    error_rate: float = Field(0.0, ge=0, le=1)
    status: int = Field(503, ge=400, le=599)

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.error_rate > 0


class CacheSettings(_Section):
    """`cache`: the entity cache, off unless `ttl_s` > 0. Answers are kept per key
    for `ttl_s` (or less, when the backend's Cache-Control says so), per caller
    (the forwarded Authorization) unless the backend marks them public or
    `shared = true` declares its answers the same for every caller. Bounded in
    entries and bytes (see `tessera.resilience.cache`)."""

    ttl_s: float = Field(0, ge=0, le=86_400)
    shared: bool = False
    max_entries: int = Field(10_000, ge=1, le=10_000_000)
    max_bytes: int = Field(32 * MiB, ge=1024)


class BackendPolicy(_Section):
    """`[defaults]`: how Tessera calls a backend; every key may be overridden per
    backend, a table key by key (`[backends.users.circuit_breaker] open_ms = 100`)."""

    timeout_ms: int = Field(1000, ge=1, description="bounds one attempt, body included")
    retries: int = Field(1, ge=0, le=5)
    retry_backoff_ms: int = Field(25, ge=0, le=10_000)
    retry_budget: RetryBudgetSettings = RetryBudgetSettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    bulkhead: BulkheadSettings = BulkheadSettings()
    stale_if_error_s: float = Field(0, ge=0, le=86_400)
    fault: FaultSettings = FaultSettings()
    max_connections: int = Field(100, ge=1)
    max_batch_size: int = Field(100, ge=1)
    max_response_bytes: int = Field(10 * MiB, ge=1)
    # "httptools": Tessera's own keep-alive pool on httptools' parser, for http://
    # URLs (https:// ones use aiohttp's); "aiohttp"; "httpx" (see README).
    http_client: Literal["httptools", "aiohttp", "httpx"] = "httptools"
    # Concurrent GETs of the same path for the same caller share one call.
    coalesce: bool = True
    cache: CacheSettings = CacheSettings()


class BackendSettings(BackendPolicy):
    """`[backends.NAME]`: the service's URL plus any `[defaults]` key overridden.
    Only the keys written in the file override (pydantic's `model_fields_set`)."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


def _overlay(base: BaseModel, override: BaseModel) -> dict[str, Any]:
    """`base` as a dict with the keys written in `override` laid over it, tables key by key."""
    merged = base.model_dump()
    for name in override.model_fields_set & set(type(base).model_fields):
        value = getattr(override, name)
        if isinstance(value, BaseModel):
            merged[name] = _overlay(getattr(base, name), value)
        else:
            merged[name] = value
    return merged


class BackendRequest(_Section):
    """One backend call of an aggregation route (README: REST aggregation routes)."""

    service: str = Field(pattern=BACKEND_NAME)
    path_template: str = Field(pattern=r"^/")
    source: str | None = None
    name: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    fallback: Any = None

    @property
    def key(self) -> str:
        return self.name or self.service

    @property
    def has_fallback(self) -> bool:
        return "fallback" in self.model_fields_set


FailureStrategy = Literal["partial", "ignore", "fail_fast"]


class Aggregation(_Section):
    """`[aggregations."/api/x/*"]`: backend requests and a response template, or a
    GraphQL `operation` with `variables` (`"$1"` is the first wildcard)."""

    backend_requests: list[BackendRequest] = Field(default_factory=list)
    response_template: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int = Field(2000, ge=1)
    failure_strategy: FailureStrategy = "partial"
    operation: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class RedisSettings(_Section):
    """`[redis]`: what replicas share (APQ queries, rate-limit buckets, the entity
    cache's second level), off unless `url` is set. Redis down or slow never fails
    a request: each call is bounded by `timeout_ms`, and after a failure Tessera
    serves without it for `retry_after_s` before trying again."""

    url: str | None = Field(None, pattern=r"^(redis|rediss|unix)://")
    prefix: str = "tessera:"
    timeout_ms: int = Field(50, ge=1, le=10_000)
    retry_after_s: float = Field(5, ge=0.1, le=3600)
    apq_ttl_s: int = Field(86_400, ge=1)


class AdminSettings(_Section):
    """`[admin]`: the admin endpoint (`POST /admin/cache/purge`), off unless `token`
    is set; or set `token_env` to the name of an environment variable holding it."""

    token: str | None = Field(None, min_length=16)
    token_env: str | None = None

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        if self.token:
            return self.token
        if self.token_env:
            found = (environ if environ is not None else os.environ).get(self.token_env)
            return found or None
        return None


class GraphSettings(_Section):
    """`[graph]`: what is served. `module` is an importable module or a .py file
    (relative to the config file) defining `graph = tessera.compose.Graph(...)`;
    absent, the shop (`tessera.shop.graph`). `federation = true` serves it as an
    Apollo Federation 2 subgraph (`_service`, `_entities`, `@key` on entities)."""

    module: str | None = None
    federation: bool = False


class Settings(_Section):
    """The whole configuration. Every section is optional; `aggregations`, when
    given, replaces the graph's own routes."""

    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    persisted_queries: PersistedQuerySettings = PersistedQuerySettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    tracing: TracingSettings = TracingSettings()
    graph: GraphSettings = GraphSettings()
    admin: AdminSettings = AdminSettings()
    redis: RedisSettings = RedisSettings()
    defaults: BackendPolicy = BackendPolicy()
    backends: dict[str, BackendSettings] = Field(default_factory=dict)
    aggregations: dict[str, Aggregation] | None = None  # None: the graph's own routes

    @field_validator("backends")
    @classmethod
    def _backend_names(cls, value: dict[str, BackendSettings]) -> dict[str, BackendSettings]:
        for name in value:
            if not re.fullmatch(BACKEND_NAME, name):
                raise ValueError(f"{name!r} is not a backend name (letters, digits, _ and -)")
        return value

    def policy(self, service: str) -> BackendPolicy:
        """The defaults with this backend's overrides applied."""
        override = self.backends.get(service)
        if override is None:
            return self.defaults
        return BackendPolicy.model_validate(_overlay(self.defaults, override))

    def url(self, service: str) -> str | None:
        override = self.backends.get(service)
        return override.url if override else None


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config named by `path`, else by TESSERA_CONFIG, else defaults."""
    environ = os.environ if environ is None else environ
    chosen = path if path is not None else environ.get("TESSERA_CONFIG") or None
    if chosen is None:
        return Settings()
    source = str(chosen)
    settings = parse_settings(_read(Path(chosen)), source=source)
    folder = Path(chosen).resolve().parent
    manifest = settings.persisted_queries.manifest
    if manifest is not None and not Path(manifest).is_absolute():
        # A manifest named in a file is found next to that file.
        resolved = str(folder / manifest)
        settings = settings.model_copy(update={"persisted_queries": settings.persisted_queries
                                               .model_copy(update={"manifest": resolved})})
    module = settings.graph.module
    if module is not None and _is_path(module) and not Path(module).is_absolute():
        settings = settings.model_copy(update={"graph": settings.graph.model_copy(
            update={"module": str(folder / module)})})  # beside the config file too
    return settings


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module


def parse_settings(data: Any, *, source: str | None = None) -> Settings:
    """Validate already-parsed config data; errors name the key and the problem."""
    if not isinstance(data, dict):
        raise ConfigError("", "the top level must be a table/object", source=source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _first_problem(exc, source) from None


def _read(path: Path) -> Any:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", "file not found", source=source) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read file ({exc.strerror})", source=source) from None
    except UnicodeDecodeError:
        raise ConfigError("", "file is not UTF-8 text", source=source) from None
    is_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".toml" and text.lstrip().startswith("{"))
    try:
        return json.loads(text) if is_json else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("", f"invalid JSON at line {exc.lineno}: {exc.msg}",
                          source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"invalid TOML: {exc}", source=source) from None


def _first_problem(exc: ValidationError, source: str | None) -> ConfigError:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {err['input']!r})"
        problems.append((key, msg))
    key, msg = problems[0]
    if len(problems) > 1:
        msg += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}: " + \
            "; ".join(f"{k}: {m}" for k, m in problems[1:4]) + ")"
    return ConfigError(key, msg, source=source)
