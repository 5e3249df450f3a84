"""The one exception tree of Tessera.

    TesseraError                  base; never shown to clients unless it is a ClientError
    ├── ConfigError               a bad config file: names the key and the problem
    └── ClientError               safe to show: carries `code` and GraphQL `extensions`
        ├── InputError            BAD_USER_INPUT: a value the client sent cannot be used
        │                         (too long to send to a backend, ...); no call is made
        ├── RequestError          the HTTP request itself is refused (bad body, CSRF,
        │                         rate limit, persisted query): carries the HTTP status
        └── BackendError          a backend call failed; carries `service`
            ├── BackendTimeout        BACKEND_TIMEOUT
            ├── BackendUnavailable    BACKEND_UNAVAILABLE  (refused, reset, 5xx; reason
            │                         circuit_open / bulkhead_full when Tessera refused it)
            └── BackendBadResponse    BACKEND_BAD_RESPONSE (not JSON, wrong shape, too large, 4xx)

Backend errors are raised once, at the client boundary (`tessera.backends.client`),
translated from httpx with ``raise ... from exc``. Their messages are written by us
and never carry a URL, host name, port or stack trace: only the service name.
graphql-core copies `extensions` from the original exception into the GraphQL error.
"""

from __future__ import annotations

from typing import Any


class TesseraError(Exception):
    """Base class of every error Tessera raises on purpose."""


class ConfigError(TesseraError):
    """A configuration file that cannot be used.

    >>> str(ConfigError("server.port", "must be between 1 and 65535", source="tessera.toml"))
    'tessera.toml: server.port: must be between 1 and 65535'
    """

    def __init__(self, key: str, problem: str, *, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{problem}")


def framed_out(error: BaseException) -> BaseException:
    """`error`, kept as a value (a loader's slot, a field's error), without the
    frames it was raised through when it is one of ours on purpose (a ClientError:
    its message says all there is, and it is logged in one line). Those frames
    hold what the failed call had read and, through the loader holding the error,
    the whole request: a reference cycle only the cyclic collector would free."""
    if isinstance(error, ClientError):
        error.__traceback__ = None
        error.__context__ = error.__cause__ = None
    return error


class ClientError(TesseraError):
    """An error whose message and extensions are safe to send to a client."""

    code = "INTERNAL_SERVER_ERROR"

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code}


class InputError(ClientError):
    """A value from the client that no backend call can carry.

    >>> InputError("The id is too long.").extensions
    {'code': 'BAD_USER_INPUT'}
    """

    code = "BAD_USER_INPUT"


class RequestError(ClientError):
    """A request refused before any operation runs, answered with `status`.

    >>> RequestError("RATE_LIMITED", "Too many requests.", 429).extensions
    {'code': 'RATE_LIMITED'}
    """

    def __init__(self, code: str, message: str, status: int = 400, *,
                 headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.code = code
        self.status = status
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(message)

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.extra}


class BackendError(ClientError):
    """A call to one backend service failed."""

    code = "BACKEND_ERROR"

    def __init__(self, service: str, detail: str, *, status: int | None = None,
                 reason: str | None = None) -> None:
        self.service = service
        self.status = status
        self.detail = detail
        self.reason = reason  # set when Tessera refused the call itself: circuit_open, ...
        super().__init__(f"The {service} service {detail}.")

    @property
    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code, "service": self.service}
        if self.status is not None:
            ext["status"] = self.status
        if self.reason is not None:
            ext["reason"] = self.reason
        return ext


class BackendTimeout(BackendError):
    code = "BACKEND_TIMEOUT"


class BackendUnavailable(BackendError):
    code = "BACKEND_UNAVAILABLE"


class BackendBadResponse(BackendError):
    code = "BACKEND_BAD_RESPONSE"
