"""What every benchmark needs: a throwaway PostgreSQL database, a table, a results file.

Benchmarks are scripts (``python -m tests.bench.bench_<name> …``), not pytest
tests: each prints one table and writes ``tests/bench/results/<name>.json``
(ignored by git; ``docs/performance.md`` keeps the table worth keeping).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ADMIN_URL = os.environ.get("XF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = Path(__file__).parent / "results"


def urls(db_name: str) -> tuple[str, str]:
    """(asyncpg/psql URL, SQLAlchemy URL) of database ``db_name`` on the admin server."""
    raw = f"{ADMIN_URL.rsplit('/', 1)[0]}/{db_name}"
    return raw, raw.replace("postgresql://", "postgresql+asyncpg://")


async def admin(sql: str) -> None:
    """Run one statement on the maintenance database (CREATE/DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def bench_env(sa_url: str) -> None:
    """Point this process (and its children) at ``sa_url`` with quiet test settings."""
    os.environ["XF_DATABASE_URL"] = sa_url
    os.environ.setdefault("XF_ENV", "test")
    os.environ.setdefault("XF_LOG_LEVEL", "WARNING")
    os.environ.setdefault("XF_JWT_SECRET", "bench-secret-0123456789-0123456789-abcdef")
    from backend.core.settings import get_settings

    get_settings.cache_clear()


@contextmanager
def fresh_database(
    name: str, *, keep: bool = False, reuse: bool = False
) -> Iterator[tuple[str, str]]:
    """A migrated database ``name`` for the block; dropped afterwards unless ``keep``.

    ``reuse`` keeps an existing database as it is (for re-running a benchmark on
    data generated once); it is migrated either way.
    """
    raw, sa_url = urls(name)
    if not reuse:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # already there (reuse)
        if not reuse:
            raise
        del exc
    bench_env(sa_url)
    from backend.cli import run_migrations

    run_migrations(sa_url)
    try:
        yield raw, sa_url
    finally:
        if not keep and not reuse:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of latencies in milliseconds (nearest-rank on the sorted samples)."""
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(samples_ms)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": round(statistics.median(ordered), 2), "p95": rank(0.95), "p99": rank(0.99)}


def format_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown) with a title line."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [title, "", line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    """What the numbers were measured on (goes into every results file)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """``tests/bench/results/<name>.json`` with the machine description added."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path
