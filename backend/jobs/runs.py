"""Every job goes through here: a ``job_runs`` row, Prometheus metrics, per-tenant fan-out.

:func:`job_run` records one run (start, end, status, counts, error) in its own
short transactions, so the record survives the job's own rollback.
:func:`fan_out` runs a per-tenant step for every tenant (or the one named with
``--tenant``), one transaction per tenant inside the step, a few tenants at a
time (:func:`tenant_concurrency`), and a failing tenant
is logged, recorded as FAILED and skipped: the others go on.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import delete, select, update

from backend.core.clock import now
from backend.core.db import Database
from backend.core.logging import get_logger
from backend.jobs.models import JobRun
from backend.tenants.models import Tenant

log = get_logger(__name__)

JOB_DURATION = Histogram(
    "xinfang_job_duration_seconds",
    "Duration of a job run (scope=all: the whole fan-out, tenant: one tenant's step)",
    ["job", "scope"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
JOB_RUNS = Counter("xinfang_job_runs_total", "Job runs by outcome", ["job", "scope", "status"])
JOB_ITEMS = Counter(
    "xinfang_job_items_total",
    "Items a job processed (events, notifications, reports…)",
    ["job", "item"],
)
JOB_LAST_SUCCESS = Gauge(
    "xinfang_job_last_success_timestamp_seconds", "Unix time of the last successful run", ["job"]
)

JOB_RUNS_KEEP = timedelta(days=30)


class TenantNotFound(LookupError):
    """``--tenant`` named no tenant."""


@dataclass
class RunRecord:
    """What a running job fills in; the wrapper stores it when the job ends."""

    name: str
    tenant_id: uuid.UUID | None
    key: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    status: str = "OK"
    id: uuid.UUID | None = None

    def add(self, **counts: int) -> None:
        for item, n in counts.items():
            self.counts[item] = self.counts.get(item, 0) + n


@asynccontextmanager
async def job_run(
    db: Database,
    name: str,
    *,
    tenant_id: uuid.UUID | None = None,
    key: str | None = None,
    runner: str = "arq",
    record_start: bool = True,
) -> AsyncIterator[RunRecord]:
    """Record one run; re-raises the job's exception after recording it as FAILED.

    ``record_start``: write a RUNNING row first (a run whose process dies stays
    visible as RUNNING). Per-tenant runs of a fan-out skip it and write one row at
    the end — one commit less per tenant; the fan-out's own row shows the run.
    """
    record = RunRecord(name, tenant_id, key)
    scope = "tenant" if tenant_id else "all"
    started_at = now()
    if record_start:
        async with db.transaction() as session:
            row = JobRun(
                name=name,
                target_tenant_id=tenant_id,
                key=key,
                runner=runner[:16],
                started_at=started_at,
                status="RUNNING",
                counts={},
            )
            session.add(row)
        record.id = row.id
    started = time.perf_counter()
    error: str | None = None
    try:
        yield record
    except BaseException as exc:
        record.status = "FAILED"
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
        raise
    finally:
        elapsed = time.perf_counter() - started
        JOB_DURATION.labels(name, scope).observe(elapsed)
        JOB_RUNS.labels(name, scope, record.status).inc()
        if scope == "all":
            for item, n in record.counts.items():
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    JOB_ITEMS.labels(name, item).inc(n)
            if record.status == "OK":
                JOB_LAST_SUCCESS.labels(name).set(time.time())
        counts = dict(record.counts, seconds=round(elapsed, 3))
        done = {
            "finished_at": now(),
            "status": record.status,
            "key": record.key,
            "counts": counts,
            "error": error,
        }
        try:
            async with db.transaction() as session:
                if record.id is None:
                    row = JobRun(
                        name=name,
                        target_tenant_id=tenant_id,
                        runner=runner[:16],
                        started_at=started_at,
                        **done,
                    )
                    session.add(row)
                else:
                    await session.execute(
                        update(JobRun).where(JobRun.id == record.id).values(**done)
                    )
        except Exception:  # the run log must never hide the job's own outcome
            log.exception("jobs.run_record_failed", job=name)


async def tenants_for(db: Database, slug: str | None = None) -> list[Tenant]:
    """Every tenant, or the one named ``slug`` (:class:`TenantNotFound` if none)."""
    async with db.transaction() as session:
        query = select(Tenant).order_by(Tenant.slug)
        if slug:
            query = query.where(Tenant.slug == slug)
        tenants = list(await session.scalars(query))
    if slug and not tenants:
        raise TenantNotFound(slug)
    return tenants


async def already_done(db: Database, name: str, tenant_id: uuid.UUID, key: str) -> bool:
    """Whether a run of ``name`` for ``tenant_id`` and slot ``key`` finished OK."""
    async with db.transaction() as session:
        found = await session.scalar(
            select(JobRun.id)
            .where(
                JobRun.name == name,
                JobRun.target_tenant_id == tenant_id,
                JobRun.key == key,
                JobRun.status == "OK",
            )
            .limit(1)
        )
    return found is not None


TenantStep = Callable[[Database, Tenant, RunRecord], Awaitable[None]]
# Is the tenant due? The slot key (e.g. the local day) if so, None if not (no run recorded).
TenantDue = Callable[[Database, Tenant, bool], Awaitable[str | None]]


async def _always(_db: Database, _tenant: Tenant, _force: bool) -> str | None:
    return ""


async def fan_out(
    ctx: dict[str, Any], name: str, step: TenantStep, due: TenantDue = _always
) -> dict[str, Any]:
    """Run ``step`` for each tenant (``ctx["tenant"]``: only that slug), each recorded.

    ``due(db, tenant, force)`` decides first whether the tenant has work now (local
    time of day, slot already done) and names the slot; ``force`` (``ctx["force"]``,
    set by ``xinfang jobs run``) asks to ignore the time of day. ``step`` fills the
    per-tenant :class:`RunRecord` and opens its own transaction(s). Tenants run
    :func:`tenant_concurrency` at a time.
    """
    db: Database = ctx["db"]
    runner = str(ctx.get("runner", "arq"))
    force = bool(ctx.get("force"))
    async with job_run(db, name, runner=runner) as total:
        tenants = await tenants_for(db, ctx.get("tenant"))
        gate = asyncio.Semaphore(tenant_concurrency(db))
        failed = 0

        async def one(tenant: Tenant) -> None:
            nonlocal failed
            async with gate:
                try:
                    key = await due(db, tenant, force)
                    if key is None:
                        total.add(notDue=1)
                        return
                    async with job_run(
                        db,
                        name,
                        tenant_id=tenant.id,
                        key=key or None,
                        runner=runner,
                        record_start=False,
                    ) as run:
                        await step(db, tenant, run)
                except Exception:  # one tenant's failure must not stop the others
                    failed += 1
                    log.exception("jobs.tenant_failed", job=name, tenant=tenant.slug)
                    return
                total.add(**{k: v for k, v in run.counts.items() if isinstance(v, int)})
                total.add(tenants=1)

        await asyncio.gather(*(one(t) for t in tenants))
        total.add(failed=failed)
        if failed:
            total.status = "FAILED" if failed == len(tenants) else "PARTIAL"
        log.info("jobs.done", job=name, status=total.status, **total.counts)
        return dict(total.counts, status=total.status)


def tenant_concurrency(db: Database) -> int:
    """How many tenants' steps a fan-out runs at once (``XF_JOB_TENANT_CONCURRENCY``).

    Each tenant's step is its own transaction on its own connection, and no two tenants
    share a row, so on PostgreSQL two cities' scans overlap: one's SQL runs while the
    other's Python builds its batch, and the server's second core works too (the 1M scan
    and digest, docs/performance.md). SQLite has one writer: one tenant at a time.
    """
    if db.dialect != "postgresql":
        return 1
    return db.settings.job_tenant_concurrency


async def prune_job_runs(db: Database, keep: timedelta = JOB_RUNS_KEEP) -> int:
    """Drop run records older than ``keep`` (the metrics keep the long-term picture)."""
    async with db.transaction() as session:
        result = await session.execute(delete(JobRun).where(JobRun.started_at < now() - keep))
    return result.rowcount or 0
