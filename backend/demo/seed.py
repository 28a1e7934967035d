"""``xinfang seed-demo``: the demo world, and its last months replayed through the services.

Idempotent: a demo city that exists is left alone (its data was generated when it was
created; ``make clean`` and ``make run`` start over with today's dates). Nothing here
writes a row itself: tenants, users and roles come from the tenant services, cases,
rosters and evaluations from theirs (timeline.py), and the colours, statistics, digest,
monthly report and outbox from the scheduled jobs, run as of now.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import backend.domains  # noqa: F401 — the hooks the story relies on (categories, first receivers)
from backend.authz.principal import SYSTEM
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.db import Database
from backend.demo.cases import tell
from backend.demo.evaluations import Panels
from backend.demo.rosters import PLANNED_DAYS_AGO, Rosters
from backend.demo.timeline import Timeline
from backend.demo.world import DEMO_TENANTS, PLATFORM_ADMIN, SUPERVISORS, DemoTenant
from backend.jobs.registry import CRON_JOBS
from backend.tenants import service
from backend.tenants.flows import onboard_tenant

# the scheduled jobs, in the order that makes "now" complete: colours first, the outbox last
JOBS_AFTERWARDS = (
    "deadline_scan",
    "stats_refresh",
    "red_digest",
    "monthly_report",
    "notifications_dispatch",
)


async def seed_demo(db: Database) -> list[str]:
    """Load what is missing; returns the slugs of the cities it created."""
    async with db.transaction() as session:
        created = [d for d in DEMO_TENANTS if await service.tenant_by_slug(session, d.slug) is None]
        zone = DEFAULT_TIMEZONE
        for demo in created:
            tenant = await _create_city(session, demo)
            zone = tenant.timezone
        await _create_staff(session)
    if created:
        await _replay(db, created, ZoneInfo(zone))
        await _jobs_as_of_now(db, [d.slug for d in created])
    return [d.slug for d in created]


async def _create_city(session: AsyncSession, demo: DemoTenant):
    tenant, _ = await onboard_tenant(
        session,
        SYSTEM,
        slug=demo.slug,
        name=demo.name,
        province=demo.province,
        province_name=demo.province_name,
        case_prefix=demo.prefix,
    )
    for rel, name, level in demo.units:
        parent, _, slug = f"/{demo.slug}/{rel}".rpartition("/")
        await service.create_org_unit(
            session, SYSTEM, parent_path=parent, slug=slug, name=name, level=level
        )
    for i, (username, display, role, rel) in enumerate(demo.users):
        if await service.account_by_username(session, username) is None:
            await service.create_user(
                session,
                SYSTEM,
                tenant=demo.slug,
                username=username,
                display_name=display,
                phone=f"1380000{i:04d}",
            )
        if role is not None:
            path = f"/{demo.slug}/{rel}".rstrip("/")
            await service.assign_role(
                session, SYSTEM, username=username, role=role, org_unit_path=path
            )
    return tenant


async def _create_staff(session: AsyncSession) -> None:
    """The provincial supervisors and the platform administrator."""
    for username, display, province in SUPERVISORS:
        if await service.account_by_username(session, username) is None:
            await service.create_provincial_supervisor(
                session, SYSTEM, username=username, display_name=display, province=province
            )
    if await service.account_by_username(session, PLATFORM_ADMIN) is None:
        await service.create_platform_admin(
            session, username=PLATFORM_ADMIN, display_name="平台管理员"
        )


async def _replay(db: Database, created: list[DemoTenant], tz: ZoneInfo) -> int:
    timeline = Timeline(db, tz)
    for demo in created:
        index = DEMO_TENANTS.index(demo)
        panels = Panels(demo)
        panels.enrol(timeline)
        tell(timeline, demo, index, panels)
        Rosters(timeline, demo, index).schedule()
    outbox = _job("notifications_dispatch")
    for days_ago in range(PLANNED_DAYS_AGO - 1, -1, -1):  # each morning's reminders go out
        morning = timeline.moment(days_ago, time(9, 1))
        if morning < timeline.started:
            timeline.schedule(morning, "outbox", _run(outbox, db, None))
    return await timeline.play()


async def _jobs_as_of_now(db: Database, slugs: list[str]) -> None:
    for name in JOBS_AFTERWARDS:
        for slug in slugs:
            await _run(_job(name), db, slug)()


def _job(name: str):
    return next(job for job in CRON_JOBS if job.name == name)


def _run(job, db: Database, slug: str | None):
    async def run() -> None:
        await job.coroutine({"db": db, "runner": "demo", "force": True, "tenant": slug})

    return run
