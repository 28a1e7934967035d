"""`make test`: the suite on PostgreSQL, then again on the embedded SQLite.

With ``XF_DATABASE_URL`` set (``.ci/run`` does) that database is used as is.
Otherwise, when the local PostgreSQL answers, a fresh database is created for
the run and dropped after; when it does not, only the SQLite pass runs.
The SQLite pass deselects tests marked ``postgres`` (row-level security etc.).
Redis likewise: ``XF_REDIS_URL`` as set, else the local Redis when it answers
(``XF_TEST_REDIS_URL``, default database 0 as in CI), else the tests that need it skip.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

LOCAL_PG = os.environ.get("XF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCAL_REDIS = os.environ.get("XF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin(sql: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(LOCAL_PG, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
    return True


@contextmanager
def fresh_postgres(env: dict[str, str]) -> Iterator[str | None]:
    """The PostgreSQL URL to test on: ``XF_DATABASE_URL`` when it names one, else a new
    database on the local server (dropped on exit), else ``None`` (not reachable)."""
    given = env.get("XF_DATABASE_URL", "")
    if given:
        yield given if given.startswith("postgresql") else None
        return
    name = f"xf_test_{uuid.uuid4().hex[:10]}"
    if not asyncio.run(_admin(f'CREATE DATABASE "{name}"')):
        yield None
        return
    try:
        server = LOCAL_PG.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
        yield f"{server}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def local_redis(env: dict[str, str], local: str = LOCAL_REDIS) -> str | None:
    """The Redis to test with: ``XF_REDIS_URL`` when set, else ``local`` if it answers."""
    if env.get("XF_REDIS_URL"):
        return env["XF_REDIS_URL"]
    import redis

    client = redis.Redis.from_url(local, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return local


def pytest(env: dict[str, str], *args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def main() -> int:
    args = sys.argv[1:]
    base = dict(os.environ)
    redis_url = local_redis(base)
    if redis_url:
        base["XF_REDIS_URL"] = redis_url
    print(f"== Redis: {redis_url or 'not reachable (the tests that need it skip)'}", flush=True)
    rc = 0
    with fresh_postgres(base) as pg_url:
        if pg_url:
            print(f"== pytest on PostgreSQL ({pg_url.rsplit('/', 1)[-1]})", flush=True)
            rc = pytest(dict(base, XF_DATABASE_URL=pg_url), *args)
        else:
            print("== PostgreSQL not reachable: SQLite pass only", flush=True)
        print("== pytest on SQLite (embedded default)", flush=True)
        rc = pytest(dict(base, XF_DATABASE_URL=""), "-m", "not postgres", "-q", *args) or rc
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
