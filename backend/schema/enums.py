"""GraphQL enums, generated from the domain's StrEnums so names cannot drift."""

from __future__ import annotations

import strawberry

from backend.authz.roles import Role
from backend.tenants.models import OrgUnitLevel

OrgUnitLevelEnum = strawberry.enum(OrgUnitLevel, name="OrgUnitLevel")
RoleEnum = strawberry.enum(Role, name="Role")
