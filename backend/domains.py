"""Every domain of the application, imported once.

Importing this module completes two registries that the lower layers cannot fill by
importing the higher ones (the import graph is a tree, tests/test_layers.py):

- ``Base.metadata``: every table, for Alembic (migrations/env.py) and the tests;
- the hooks the domains register on the ones below them (backend/core/hooks.py):
  case categories for a new city, first receivers of visits, evaluators' panel cases.

Every entry point — the app, the CLI, the arq worker — imports it before it serves.
"""

from __future__ import annotations

from backend.cases import categories as _categories  # noqa: F401 — tenant_created
from backend.cases import models as _cases  # noqa: F401
from backend.cases import practices as _practices  # noqa: F401
from backend.core import persisted as _persisted  # noqa: F401
from backend.core.db import Base
from backend.evaluations import models as _evaluation_models  # noqa: F401
from backend.evaluations import panels as _panels  # noqa: F401 — own_readers
from backend.jobs import models as _jobs  # noqa: F401
from backend.notifications import models as _notifications  # noqa: F401
from backend.rosters import first_receiver as _first_receiver  # noqa: F401 — case_registered
from backend.rosters import models as _rosters  # noqa: F401
from backend.stats import models as _stats  # noqa: F401
from backend.tenants import api_keys as _api_keys  # noqa: F401
from backend.tenants import audit_log as _audit_log  # noqa: F401
from backend.tenants import models as _tenants  # noqa: F401

metadata = Base.metadata
