"""Guards in front of GraphQL: JSON-only POST, a body cap, a sane body, rate limits, refusals.

CSRF: a browser can send a cross-site POST without a CORS preflight only with
a "simple" content type (form, multipart, text/plain), so ``POST /graphql``
takes ``application/json`` only (415 otherwise), and ``GET`` runs no
operation at all (405; it serves GraphiQL to browsers in dev). The body is
read against ``XF_MAX_BODY_BYTES`` as it arrives — a declared
``Content-Length`` over the cap is refused before reading anything, a
chunked body as soon as it passes the cap — and answered 413.

The body must then be one GraphQL request — a JSON object (UTF-8) whose ``query``
and ``operationName`` are strings and ``variables`` and ``extensions`` objects —
with no NUL character or lone surrogate in any string, key or literal of the
document: anything else is a 400 that says what is wrong, before authentication
of the operation's fields or any database work (``null``, ``1``, JSON nested
50,000 deep and NUL bytes used to end as 500s).

Every refusal here is GraphQL-shaped (``data: null``, ``errors[0].extensions.code``)
so clients handle it like any other error; statuses come from the error class
(``backend/core/errors.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from backend.cases.queries import id_number_search_key
from backend.core.errors import RETRY_AFTER_SECONDS, AppError, BadUserInput, ErrorCode, Unavailable
from backend.core.ratelimit import RateLimiter
from backend.core.validation import storable_json, storable_text
from backend.schema.errors import error_code
from backend.schema.persisted import requested_hash
from backend.web.errors import app_error_response


def _refusal(status: int, message: str, accept: str, **extensions: Any) -> JSONResponse:
    return app_error_response(BadUserInput(message, **extensions), status, accept=accept)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return ""


class BodyTooLarge(Exception):
    pass


async def screen(scope: Scope, receive: Receive, max_body: int) -> JSONResponse | bytes | None:
    """A refusal, the POST body (read within the cap), or ``None`` to pass a GET through."""
    method = scope.get("method")
    accept = _header(scope, b"accept")  # the refusals' media type (backend/web/errors.py)
    if method in ("GET", "HEAD"):
        if "text/html" in accept:
            return None  # GraphiQL in dev; strawberry answers 404 in prod
        refusal = _refusal(
            405, "GraphQL operations are sent with POST and Content-Type: application/json", accept
        )
        refusal.headers["Allow"] = "POST"
        return refusal
    media_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _refusal(
            415, "Content-Type must be application/json", accept, reason="UNSUPPORTED_MEDIA_TYPE"
        )
    too_large = _refusal(
        413,
        f"request body exceeds {max_body} bytes",
        accept,
        reason="BODY_TOO_LARGE",
        maxBytes=max_body,
    )
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > max_body:
        return too_large
    try:
        body = await read_body(receive, max_body)
    except BodyTooLarge:
        return too_large
    try:
        check_body(body)
    except BadUserInput as exc:
        return app_error_response(exc, accept=accept)
    return body


_REQUEST_FIELDS = {"query": str, "operationName": str, "variables": dict, "extensions": dict}
_SHAPE = 'a JSON object {"query": "…", "variables": {…}, "operationName": "…"}'


def check_body(body: bytes) -> None:
    """Refuse (``BadUserInput``) a body that is not one well-formed GraphQL request."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BadUserInput("request body is nested too deeply", reason="MALFORMED_BODY") from None
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        raise BadUserInput(
            "request body is not valid JSON in UTF-8", reason="MALFORMED_BODY"
        ) from None
    if not isinstance(payload, dict):
        raise BadUserInput(f"request body must be {_SHAPE}", reason="MALFORMED_BODY")
    for key, kind in _REQUEST_FIELDS.items():
        value = payload.get(key)
        if value is not None and not isinstance(value, kind):
            raise BadUserInput(
                f"{key} must be {'a string' if kind is str else 'an object'}",
                field=key,
                reason="MALFORMED_BODY",
            )
    try:
        storable_json(payload)
        if not payload.get("query") and requested_hash(payload) is None:
            raise BadUserInput("query is required (or a persisted query's id)", field="query")
    except BadUserInput as exc:
        exc.extensions["reason"] = "MALFORMED_BODY"
        raise


async def read_body(receive: Receive, max_body: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``max_body``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


# Errors that refuse the whole request whatever else it holds, strongest first.
_REQUEST_WIDE = (ErrorCode.UNAUTHENTICATED, ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED)


def request_refusal(errors: list[GraphQLError]) -> AppError | None:
    """The error whose HTTP status the response takes, if any (else 200).

    Missing credentials (401), a lost database (503) and a rate limit (429) anywhere;
    otherwise an application error raised before execution (no ``path``: the cost limit,
    text no column can store) with its own status. Field errors of an answered request
    keep 200, as GraphQL over HTTP has it.
    """
    found: dict[ErrorCode, AppError] = {}
    for error in errors:
        code, original = error_code(error), error.original_error
        if not isinstance(original, AppError):
            if code is not ErrorCode.UNAVAILABLE:
                continue
            original = Unavailable("unavailable", retryAfter=RETRY_AFTER_SECONDS)
        if code in _REQUEST_WIDE or error.path is None:
            found.setdefault(code, original)
    for code in _REQUEST_WIDE:
        if code in found:
            return found[code]
    return next(iter(found.values()), None)


def graphql_response_refusal(data: Any, errors: list[GraphQLError]) -> AppError | None:
    """The error whose status an ``application/graphql-response+json`` answer takes, if any.

    GraphQL over HTTP: a response with ``data`` (even partial) is 200 whatever failed; one
    whose ``data`` is null takes a request-wide refusal's status (401, 503, 429, the cost
    limit's 400: :func:`request_refusal`), or 400 when every error came before execution
    (the document did not parse or validate, the variables did not coerce), and then
    carries no ``data``; otherwise field errors nulled the whole answer and it stays 200.
    """
    if data is not None:
        return None
    refusal = request_refusal(errors)
    if refusal is None and all(error.path is None for error in errors):
        if any(error_code(error) is ErrorCode.INTERNAL for error in errors):
            return AppError("internal error")  # 500; the message is never shown
        return BadUserInput("request error")  # only its status is used
    return refusal


class StorableStrings(ASTValidationRule):
    """A string literal of the document must be storable text (no NUL, no lone surrogate)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        try:
            storable_text(node.value)
        except BadUserInput as exc:
            self.report_error(GraphQLError(exc.message, node, original_error=exc))


def operation_points(document: DocumentNode, operation_name: str | None, mutation_cost: int) -> int:
    """Rate-limit points of the operation to run: one per root field (every alias, every
    fragment's field), ``mutation_cost`` per mutation field; at least 1."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 1  # refused by validation anyway
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operation = operations[0]
    fields, seen = 0, set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    while pending:  # iterative, and each fragment once: the document is not validated yet
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                fields += selection.name.value != "__typename"
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    per_field = mutation_cost if operation.operation.value == "mutation" else 1
    return max(1, fields * per_field)


def operation_selection_error(document: DocumentNode, operation_name: str | None) -> str | None:
    """Why ``document`` has no one operation to run for ``operation_name``, if it has not.

    GraphQL over HTTP (GetOperation): a document of several operations needs an
    ``operationName``, and the name must be one of them. Both are request errors."""
    names = [
        d.name.value if d.name else None
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    if operation_name is None:
        if len(names) > 1:
            return (
                f"the document holds {len(names)} operations: name the one to run in operationName"
            )
        return None  # one operation, or none (validation says so)
    if operation_name not in names:
        return f'operationName "{operation_name}" names no operation of the document'
    return None


class OperationSelection(SchemaExtension):
    """Refuses a request whose operation is ambiguous or unknown, as a 400 GraphQL error.

    Strawberry picks the document's *first* operation when ``operationName`` is missing
    (``query A … mutation B …`` ran A, and a first mutation ran), and answers an unknown
    name with a plain-text 400. Checked as soon as the document is parsed — before the
    rate limit, validation or anything runs — and raised as :class:`BadUserInput`, so
    the view answers 400 with ``errors[0].extensions.code == "BAD_USER_INPUT"`` in the
    media type the client accepts, like every other request error (``view.py``).
    Persisted queries are filled into the body before this and take the same path.
    """

    async def on_parse(self) -> AsyncIterator[None]:
        yield
        ctx = self.execution_context
        if ctx.graphql_document is None:
            return  # did not parse: a parse error answers
        # what the client sent: strawberry's ``operation_name`` falls back to the first one
        requested = getattr(ctx, "_provided_operation_name", None)
        check_operation_selection(ctx.graphql_document, requested)


def check_operation_selection(document: DocumentNode, operation_name: str | None) -> None:
    """:func:`operation_selection_error` as the request error it is, over HTTP and over
    the subscriptions' socket alike."""
    problem = operation_selection_error(document, operation_name)
    if problem is not None:
        raise BadUserInput(problem, field="operationName", reason="OPERATION_SELECTION")


def _root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[FieldNode]:
    """The operation's root fields, through fragments and inline fragments (each once)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: list[FieldNode] = []
    seen: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return found


def id_number_searches(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> list[str]:
    """The id numbers the operation's ``cases(filter: {petitionerIdNumber})`` fields search.

    Read from the validated document and the coerced variables, so a request charges the
    id-search bucket once for all of its searches, before any of them runs
    (:class:`RateLimit`); variables that do not coerce search nothing (the request fails)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return []
    operation = operations[0]
    cases = schema.query_type.fields.get("cases") if schema.query_type else None
    if cases is None:
        return []
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return []  # refused before execution: nothing searched
    found: list[str] = []
    for node in _root_fields(document, operation):
        if node.name.value != "cases":
            continue
        try:
            filter_ = get_argument_values(cases, node, coerced).get("filter")
        except GraphQLError:
            continue
        value = (filter_ or {}).get("petitionerIdNumber") if isinstance(filter_, dict) else None
        if isinstance(value, str) and value:
            found.append(value)
    return found


class RateLimit(SchemaExtension):
    """Charges the caller's and its city's buckets once the document is parsed.

    It runs when validation starts (the document is parsed, its operation known), so a
    flood of invalid documents is limited too. Every root field is charged, so thirty
    aliased mutations cost thirty mutations (:func:`operation_points`).

    Searches by id number are charged to their own, tight bucket once the document is
    valid and before anything runs, all of a request's searches at once: a request with
    more than the bucket holds is refused whole (429) and charges nothing, rather than
    spending the allowance on searches whose answers the refusal then withholds
    (:meth:`~backend.schema.context.RequestContext.search_by_id_number` counts what was
    paid for here).
    """

    def __init__(self, *, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def on_validate(self) -> AsyncIterator[None]:
        if self.limiter.enabled:
            ctx = self.execution_context
            request_ctx = ctx.context
            principal = getattr(request_ctx, "principal_or_none", None)
            client = getattr(getattr(request_ctx, "request", None), "client", None)
            if ctx.graphql_document is not None:
                points = operation_points(
                    ctx.graphql_document, ctx.operation_name, self.limiter.mutation_cost
                )
            else:
                points = self.limiter.mutation_cost if (
                    ctx.operation_type is OperationType.MUTATION
                ) else 1  # fmt: skip
            await self.limiter.charge(principal, client.host if client else None, points)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        request_ctx = ctx.context
        principal = getattr(request_ctx, "principal_or_none", None)
        if self.limiter.enabled and principal is not None and ctx.graphql_document is not None:
            searches = id_number_searches(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
            )
            keys = 0
            for value in searches:  # what the field will search (a refused one searches nothing)
                try:
                    id_number_search_key(principal, value)
                except AppError:
                    continue
                keys += 1
            if keys:
                await self.limiter.check_id_search(principal, keys)  # all or nothing
                request_ctx.id_searches_paid = keys
        yield
