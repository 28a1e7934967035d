"""Org-unit scope → SQL: a grant at ``/a/b`` reaches ``/a/b`` and ``/a/b/...``, never siblings.

Paths only hold ``[a-z0-9-]`` and ``/`` so the LIKE pattern needs no escaping,
and ``path LIKE 'prefix/%'`` uses the ``text_pattern_ops`` index on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.orm import InstrumentedAttribute


def path_covers(ancestor: str, path: str) -> bool:
    """Python twin of :func:`subtree_filter` for single values."""
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def minimal_paths(paths: Iterable[str]) -> list[str]:
    """Drop paths already covered by another (fewer OR branches in SQL)."""
    result: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(path_covers(q, p) for q in result):
            result.append(p)
    return result


def subtree_filter(column: InstrumentedAttribute[str], paths: Iterable[str]) -> ColumnElement[bool]:
    """``column`` lies in the subtree of any of ``paths``; false for none."""
    clauses = [or_(column == p, column.like(p.rstrip("/") + "/%")) for p in minimal_paths(paths)]
    return or_(*clauses) if clauses else false()
