"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

from backend.cases import models as _cases  # noqa: F401
from backend.core import persisted as _persisted  # noqa: F401
from backend.core.db import Base
from backend.evaluations import models as _evaluations  # noqa: F401
from backend.jobs import models as _jobs  # noqa: F401
from backend.notifications import models as _notifications  # noqa: F401
from backend.rosters import models as _rosters  # noqa: F401
from backend.stats import models as _stats  # noqa: F401
from backend.tenants import api_keys as _api_keys  # noqa: F401
from backend.tenants import audit_log as _audit_log  # noqa: F401
from backend.tenants import models as _tenants  # noqa: F401

metadata = Base.metadata
