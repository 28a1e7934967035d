"""`make test`: the suite on PostgreSQL, then again on the embedded SQLite.

With ``XF_DATABASE_URL`` set (``.ci/run`` does) that database is used as is.
Otherwise, when the local PostgreSQL answers, a fresh database is created for
the run and dropped after; when it does not, only the SQLite pass runs.
The SQLite pass skips tests marked ``postgres`` (row-level security etc.).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

LOCAL_PG = os.environ.get("XF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


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


def pytest(env: dict[str, str], *args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def main() -> int:
    args = sys.argv[1:]
    base = {k: v for k, v in os.environ.items()}
    created = None
    if not base.get("XF_DATABASE_URL"):
        name = f"xf_test_{uuid.uuid4().hex[:10]}"
        if asyncio.run(_admin(f'CREATE DATABASE "{name}"')):
            created = name
            base["XF_DATABASE_URL"] = LOCAL_PG.replace("postgresql://", "postgresql+asyncpg://").rsplit(
                "/", 1
            )[0] + f"/{name}"
    rc = 0
    try:
        if base.get("XF_DATABASE_URL", "").startswith("postgresql"):
            print(f"== pytest on PostgreSQL ({base['XF_DATABASE_URL'].rsplit('/', 1)[-1]})", flush=True)
            rc = pytest(base, *args)
        else:
            print("== PostgreSQL not reachable: SQLite pass only", flush=True)
        sqlite_env = dict(base, XF_DATABASE_URL="")
        print("== pytest on SQLite (embedded default)", flush=True)
        rc = pytest(sqlite_env, "-m", "not postgres", "-q", *args) or rc
    finally:
        if created:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
