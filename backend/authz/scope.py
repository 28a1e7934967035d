"""Org-unit scope → SQL: a grant at ``/a/b`` reaches ``/a/b`` and ``/a/b/...``, never siblings.

"Strictly below ``/a/b``" is the byte range ``['/a/b/', '/a/b0')`` (``'0'`` follows ``'/'``),
not ``LIKE '/a/b/%'``: under row-level security PostgreSQL may only use *leakproof*
operators as index conditions, and ``LIKE`` (``textlike``) is not, so a LIKE would scan
every row of the tenant. The ``text_pattern_ops`` operators ``~>=~``/``~<~`` are leakproof
and answer the range from the ``(tenant_id, path text_pattern_ops)`` index; SQLite's
default BINARY collation makes plain ``>=``/``<`` the same byte range (docs/tenancy.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Boolean, ColumnElement, false, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.functions import FunctionElement


def path_covers(ancestor: str, path: str) -> bool:
    """Python twin of :func:`subtree_filter` for single values."""
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def minimal_paths(paths: Iterable[str]) -> list[str]:
    """Drop paths already covered by another (fewer OR branches in SQL)."""
    given = tuple(paths)
    if len(given) < 2:
        return list(given)
    return list(_minimal_paths(given))


@lru_cache(maxsize=4096)
def _minimal_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`minimal_paths`, memoised process-wide on the paths themselves.

    Every request of a many-grant official asks the same quadratic question again; a
    pure function of its strings, so sharing the answer between principals leaks
    nothing. Bounded: keys are the path sets of actual callers, 4,096 of them (a few
    hundred bytes each) cover a busy process without growing it unboundedly.
    """
    result: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(path_covers(q, p) for q in result):
            result.append(p)
    return tuple(result)


def subtree_filter(column: InstrumentedAttribute[str], paths: Iterable[str]) -> ColumnElement[bool]:
    """``column`` lies in the subtree of any of ``paths``; false for none."""
    clauses = [or_(column == p, _below(column, p.rstrip("/"))) for p in minimal_paths(paths)]
    return or_(*clauses) if clauses else false()


def subtree_of(path: Any, root: Any) -> ColumnElement[bool]:
    """``path`` is ``root`` or lies below it, both SQL expressions (e.g. a literal path and
    a case's accused unit): the same byte range as :func:`subtree_filter`, for a root that
    is a column rather than a known string."""
    path, root = _expr(path), _expr(root)
    return or_(path == root, _strictly_below(path, root + "/", root + "0"))


def _expr(value: Any) -> Any:
    return literal(value) if isinstance(value, str) else value


class _strictly_below(FunctionElement[bool]):
    """``column`` in the byte range ``[lo, hi)`` (compiled per dialect below)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate: no "= 1" on SQLite
    name = "strictly_below"


def _below(column: InstrumentedAttribute[str], path: str) -> ColumnElement[bool]:
    return _strictly_below(column, literal(path + "/"), literal(path + "0"))


def _range_sql(element: _strictly_below, compiler: Any, ge: str, lt: str, **kw: Any) -> str:
    column, lo, hi = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} {ge} ({lo}) AND {column} {lt} ({hi}))"


@compiles(_strictly_below)
def _range_binary(element: _strictly_below, compiler: Any, **kw: Any) -> str:
    return _range_sql(element, compiler, ">=", "<", **kw)


@compiles(_strictly_below, "postgresql")
def _range_pattern_ops(element: _strictly_below, compiler: Any, **kw: Any) -> str:
    return _range_sql(element, compiler, "~>=~", "~<~", **kw)
