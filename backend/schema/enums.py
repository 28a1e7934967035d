"""GraphQL enums, generated from the domain's StrEnums so names cannot drift."""

from __future__ import annotations

import strawberry

from backend.tenants.models import OrgUnitLevel, Role

OrgUnitLevelEnum = strawberry.enum(OrgUnitLevel, name="OrgUnitLevel")
RoleEnum = strawberry.enum(Role, name="Role")
