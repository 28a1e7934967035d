"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

from backend.cases import models as _cases  # noqa: F401
from backend.core.db import Base
from backend.tenants import models as _tenants  # noqa: F401

metadata = Base.metadata
