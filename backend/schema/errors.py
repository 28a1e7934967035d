"""Shape every GraphQL error into the contract: a known code, a masked INTERNAL otherwise."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from backend.core.errors import AppError, ErrorCode
from backend.core.logging import get_logger

log = get_logger(__name__)


def error_code(error: GraphQLError) -> ErrorCode:
    original = error.original_error
    if isinstance(original, AppError):
        return original.code
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # parse/validation of the document, or coercion of the variables (graphql-core wraps
        # the coercion failure in a GraphQLError): the request is wrong, not the server
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.INTERNAL


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    code = error_code(error)
    formatted: dict[str, Any] = error.formatted  # message, locations, path, extensions
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
    extensions = dict(formatted.get("extensions") or {})
    extensions["code"] = str(code)
    formatted["extensions"] = extensions
    return formatted
