"""Tables of the scheduled jobs: the run log and the scan indexes.

``job_runs`` is platform data (no RLS): one row per job run and per tenant a
fan-out touched. Its tenant column is ``target_tenant_id``, not ``tenant_id``,
on purpose: every table with a ``tenant_id`` column is a tenant table behind
row-level security (tests/test_rls.py checks the catalogue), and this log is
written for all tenants by the platform.

The extra indexes below make the deadline scan touch only the rows whose colour or
overdue mark is about to change (docs/jobs.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from backend.cases.models import Case, CaseDeadline
from backend.core.db import Base, TimestampedId, UtcDateTime


class JobRun(TimestampedId, Base):
    """One run of a job (``target_tenant_id`` NULL: the whole fan-out)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_name_started", "name", "started_at"),
        Index("ix_job_runs_done", "name", "target_tenant_id", "key", "status"),
        Index("ix_job_runs_started", "started_at"),
    )

    name: Mapped[str] = mapped_column(String(64))
    target_tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"))
    # The unit of work the run stands for, e.g. the local day of a digest ("2026-11-23")
    # or the month of a report ("2026-10"); lets a job see that a slot is already done.
    key: Mapped[str | None] = mapped_column(String(32))
    runner: Mapped[str] = mapped_column(String(16), default="arq")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")  # RUNNING OK PARTIAL FAILED
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


# --- indexes of the deadline scan on the case tables (migrations 0004 and 0011) -------------
# Each colour mismatch of a step becomes a few index range scans on (tenant, colour, due)
# instead of a pass over every open step; the overdue marks likewise. No index of ``cases``
# names ``warning_color`` or ``red_since``: the scan's colour updates of cases stay HOT (no
# index entry written, migration 0011); stale cases are found through their steps, red
# cases (digest) by due time.
SCAN_INDEXES = (
    Index(
        "ix_cases_open_due",
        Case.tenant_id,
        Case.due_at,
        postgresql_where=Case.due_at.is_not(None),
    ),
    Index(
        "ix_case_deadlines_open_colour_due",
        CaseDeadline.tenant_id,
        CaseDeadline.warning_color,
        CaseDeadline.due_at,
        postgresql_where=CaseDeadline.status == "OPEN",
    ),
    Index(
        "ix_case_deadlines_not_overdue",
        CaseDeadline.tenant_id,
        CaseDeadline.due_at,
        postgresql_where=(CaseDeadline.status == "OPEN") & CaseDeadline.overdue_since.is_(None),
    ),
    Index(
        "ix_case_deadlines_overdue",
        CaseDeadline.tenant_id,
        CaseDeadline.due_at,
        postgresql_where=(CaseDeadline.status == "OPEN") & CaseDeadline.overdue_since.is_not(None),
    ),
)
