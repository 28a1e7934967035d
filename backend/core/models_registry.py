"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

from backend.cases import models as _cases  # noqa: F401
from backend.core.db import Base
from backend.evaluations import models as _evaluations  # noqa: F401
from backend.jobs import models as _jobs  # noqa: F401
from backend.notifications import models as _notifications  # noqa: F401
from backend.rosters import models as _rosters  # noqa: F401
from backend.tenants import models as _tenants  # noqa: F401

metadata = Base.metadata
