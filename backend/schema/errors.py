"""Shape every GraphQL error into the contract: a known code, a masked INTERNAL otherwise."""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError

from backend.core.db import is_unavailable
from backend.core.errors import RETRY_AFTER_SECONDS, AppError, ErrorCode
from backend.core.logging import get_logger

log = get_logger(__name__)


def error_code(error: GraphQLError) -> ErrorCode:
    original = error.original_error
    if isinstance(original, AppError):
        return original.code
    if is_unavailable(original):
        return ErrorCode.UNAVAILABLE  # lost/unreachable database: retryable, not a bug
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # parse/validation of the document, or coercion of the variables (graphql-core wraps
        # the coercion failure in a GraphQLError): the request is wrong, not the server
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.INTERNAL


# graphql-core's hints ("Did you mean 'createTenant'?") name fields, types, arguments and
# enum values: with introspection off they would hand out the schema piece by piece.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def format_error(
    error: GraphQLError, request_id: str, *, suggestions: bool = True
) -> dict[str, Any]:
    code = error_code(error)
    formatted: dict[str, Any] = error.formatted  # message, locations, path, extensions
    if not suggestions and "Did you mean" in formatted["message"]:
        formatted["message"] = _SUGGESTION.sub("", formatted["message"])
    if code is ErrorCode.INTERNAL:
        log.error(
            "graphql.internal_error",
            request_id=request_id,
            path=error.path,
            error=repr(error.original_error or error),
            exc_info=error.original_error,
        )
        formatted = {
            "message": "Internal server error",
            "locations": formatted.get("locations"),
            "path": formatted.get("path"),
        }
        formatted["extensions"] = {"code": str(code), "requestId": request_id}
        return formatted
    if code is ErrorCode.UNAVAILABLE and not isinstance(error.original_error, AppError):
        # expected during a database restart or failover: one line, no traceback
        log.warning(
            "graphql.unavailable",
            request_id=request_id,
            path=error.path,
            error=type(error.original_error).__name__,
        )
        return {
            "message": "Service temporarily unavailable; retry the request",
            "locations": formatted.get("locations"),
            "path": formatted.get("path"),
            "extensions": {
                "code": str(code),
                "retryAfter": RETRY_AFTER_SECONDS,
                "requestId": request_id,
            },
        }
    extensions = dict(formatted.get("extensions") or {})
    extensions["code"] = str(code)
    formatted["extensions"] = extensions
    return formatted
