"""What a client sees of errors: deliberate ones as they are, the rest masked.

An error is shown as it is when it was raised on purpose: a `ClientError`
(backend failures, with code and service), a GraphQLError (syntax, validation,
limits), or no exception at all. Anything else is a bug or a surprise: it is
logged with its traceback here and the client gets "Unexpected error." with
code INTERNAL_SERVER_ERROR, so no message, URL or stack trace ever leaks.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError

from ..errors import ClientError

log = logging.getLogger("tessera.graphql")

UNEXPECTED = "Unexpected error."


def is_deliberate(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, ClientError | GraphQLError)


def mask(error: GraphQLError) -> GraphQLError:
    if is_deliberate(error):
        return error
    log.error("unexpected error at %s", error.path, exc_info=error.original_error)
    return GraphQLError(UNEXPECTED, nodes=error.nodes, path=error.path,
                        extensions={"code": "INTERNAL_SERVER_ERROR"})


# graphql-core's "Did you mean ...?" hints, which map the schema for a stranger.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?$")


def _request_code(message: str) -> str:
    """The code of an error raised before execution that carries none (Apollo's names)."""
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def format_errors(errors: list[GraphQLError], *,
                  suggestions: bool = True) -> list[dict[str, Any]]:
    out = [dict(mask(error).formatted) for error in errors]
    for error in out:
        if "extensions" not in error and "path" not in error:
            error["extensions"] = {"code": _request_code(str(error["message"]))}
    if not suggestions:
        for error in out:
            error["message"] = _SUGGESTION.sub("", str(error["message"]))
    return out
