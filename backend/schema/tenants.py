"""GraphQL for tenants, the org tree, users and roles (administration of the contract)."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.authz.roles import AccountKind
from backend.core.errors import NotFound
from backend.schema.context import Ctx, RequestContext
from backend.schema.enums import OrgUnitLevel, Role
from backend.schema.relay import Node
from backend.tenants import models, service
from backend.tenants.flows import onboard_tenant


@strawberry.type(name="OrgUnit")
class OrgUnitType(Node):
    id: strawberry.ID
    path: str
    slug: str
    name: str
    level: OrgUnitLevel
    depth: int

    @classmethod
    def of(cls, unit: models.OrgUnit) -> OrgUnitType:
        return cls(
            id=strawberry.ID(str(unit.id)),
            path=unit.path,
            slug=unit.slug,
            name=unit.name,
            level=OrgUnitLevel(unit.level),
            depth=unit.depth,
        )

    @strawberry.field(description="Direct children of this unit.")
    async def children(self, info: Ctx) -> list[OrgUnitType]:
        ctx = info.context
        async with ctx.read() as session:
            units = await service.list_org_units(session, ctx.principal, parent_path=self.path)
        return [OrgUnitType.of(u) for u in units]


@strawberry.type(name="Tenant")
class TenantType:
    id: strawberry.ID
    slug: str
    name: str
    timezone: str
    case_prefix: str
    _model: strawberry.Private[models.Tenant]
    _root: strawberry.Private[models.OrgUnit | None] = None

    @classmethod
    def of(cls, tenant: models.Tenant, root: models.OrgUnit | None = None) -> TenantType:
        return cls(
            id=strawberry.ID(str(tenant.id)),
            slug=tenant.slug,
            name=tenant.name,
            timezone=tenant.timezone,
            case_prefix=tenant.case_prefix,
            _model=tenant,
            _root=root,
        )

    @strawberry.field
    async def root_unit(self, info: Ctx) -> OrgUnitType | None:
        if self._root is None:
            ctx = info.context
            async with ctx.read() as session:
                self._root = await service.root_unit(session, ctx.principal, self._model)
        return OrgUnitType.of(self._root) if self._root else None


@strawberry.type(name="RoleGrant")
class RoleGrantType:
    role: Role
    org_unit: OrgUnitType | None


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    username: str
    display_name: str
    phone: str | None = None
    tenant: TenantType | None = None
    roles: list[RoleGrantType] = strawberry.field(default_factory=list)
    service_account: bool = strawberry.field(
        default=False,
        description="An integration's account: authenticates with API keys, never a token.",
    )


def _user_of(
    user: models.User, grants: list[tuple[str, models.OrgUnit]], kind: Any = None
) -> UserType:
    return UserType(
        id=strawberry.ID(str(user.id)),
        username=user.username,
        display_name=user.display_name,
        phone=user.phone,
        roles=[RoleGrantType(role=Role(r), org_unit=OrgUnitType.of(u)) for r, u in grants],
        service_account=kind is AccountKind.SERVICE_ACCOUNT,
    )


async def _me(ctx: RequestContext, principal: Principal) -> UserType:
    async with ctx.read() as session:
        profile = await service.profile(session, principal)
    grants = [
        RoleGrantType(role=Role(g.role), org_unit=OrgUnitType.of(g.unit)) for g in profile.grants
    ]
    if not grants:
        grants = [RoleGrantType(role=r, org_unit=None) for r in profile.staff_roles]
    return UserType(
        id=strawberry.ID(str(principal.account_id)),
        username=principal.username,
        display_name=profile.display_name,
        phone=profile.phone,
        tenant=TenantType.of(profile.tenant) if profile.tenant else None,
        roles=grants,
        service_account=principal.is_service_account,
    )


@strawberry.type
class TenantQueries:
    @strawberry.field(description="The caller: username, tenant and roles with their org units.")
    async def me(self, info: Ctx) -> UserType:
        return await _me(info.context, info.context.principal)

    @strawberry.field(description="Tenants the caller may read (own city, province, or all).")
    async def tenants(self, info: Ctx) -> list[TenantType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await service.visible_tenants(session, ctx.principal)
        return [TenantType.of(t) for t in rows]

    @strawberry.field(description="Children of parentPath; without it, the visible root units.")
    async def org_units(self, info: Ctx, parent_path: str | None = None) -> list[OrgUnitType]:
        ctx = info.context
        async with ctx.read() as session:
            units = await service.list_org_units(session, ctx.principal, parent_path=parent_path)
        return [OrgUnitType.of(u) for u in units]

    @strawberry.field(
        description="One org unit by path: null + NOT_FOUND when absent or not visible; other fields survive."
    )
    async def org_unit(self, info: Ctx, path: str) -> OrgUnitType | None:
        ctx = info.context
        async with ctx.read() as session:
            unit = await service.get_org_unit(session, ctx.principal, path=path)
        if unit is None:
            raise NotFound(f"org unit {path} not found")
        return OrgUnitType.of(unit)


@strawberry.input
class CreateTenantInput:
    slug: str
    name: str
    province: str
    province_name: str | None = None
    case_prefix: str | None = strawberry.field(
        default=None, description="Prefix of case numbers (e.g. SQ); default: first 2 letters"
    )


@strawberry.input
class CreateOrgUnitInput:
    parent_path: str
    slug: str
    name: str
    level: OrgUnitLevel


@strawberry.input
class CreateUserInput:
    tenant: str
    username: str
    display_name: str
    phone: str | None = None


@strawberry.input
class CreateServiceAccountInput:
    tenant: str
    username: str = strawberry.field(description="In the city's namespace, e.g. sq_hotline.")
    display_name: str


@strawberry.input
class RoleGrantFields:
    username: str
    role: Role
    org_unit_path: str


@strawberry.input
class AssignRoleInput(RoleGrantFields):
    pass


@strawberry.input
class RevokeRoleInput(RoleGrantFields):
    pass


async def _change_grant(ctx: RequestContext, change: Any, input: RoleGrantFields) -> UserType:
    """assignRole / revokeRole: one transaction, then the user's grants as they now are."""

    async def grant_and_read(session: AsyncSession, principal: Principal) -> UserType:
        user = await change(
            session,
            principal,
            username=input.username,
            role=input.role,
            org_unit_path=input.org_unit_path,
        )
        grants = await service.grants_of(session, user.id)
        return _user_of(user, grants, await service.account_kind(session, user.id))

    return await ctx.mutate(grant_and_read)


async def _create_user(
    ctx: RequestContext, input: CreateUserInput | CreateServiceAccountInput, kind: Any
) -> UserType:
    user = await ctx.mutate(
        service.create_user,
        tenant=input.tenant,
        username=input.username,
        display_name=input.display_name,
        phone=getattr(input, "phone", None),
        kind=kind,
    )
    return _user_of(user, [], kind)


@strawberry.input
class CreateProvincialSupervisorInput:
    username: str
    display_name: str
    province: str


@strawberry.type
class TenantMutations:
    @strawberry.mutation(description="Create a city and its root unit /<slug> (platform admin).")
    async def create_tenant(self, info: Ctx, input: CreateTenantInput) -> TenantType:
        tenant, root = await info.context.mutate(
            onboard_tenant,
            slug=input.slug,
            name=input.name,
            province=input.province,
            province_name=input.province_name,
            case_prefix=input.case_prefix,
        )
        return TenantType.of(tenant, root)

    @strawberry.mutation
    async def create_org_unit(self, info: Ctx, input: CreateOrgUnitInput) -> OrgUnitType:
        unit = await info.context.mutate(
            service.create_org_unit,
            parent_path=input.parent_path,
            slug=input.slug,
            name=input.name,
            level=input.level,
        )
        return OrgUnitType.of(unit)

    @strawberry.mutation
    async def create_user(self, info: Ctx, input: CreateUserInput) -> UserType:
        return await _create_user(info.context, input, AccountKind.TENANT_USER)

    @strawberry.mutation(
        description="An integration's account (a 12345 hotline): give it only the roles it "
        "needs with assignRole, then mint its API key. It can never get a token."
    )
    async def create_service_account(self, info: Ctx, input: CreateServiceAccountInput) -> UserType:
        return await _create_user(info.context, input, AccountKind.SERVICE_ACCOUNT)

    @strawberry.mutation
    async def assign_role(self, info: Ctx, input: AssignRoleInput) -> UserType:
        return await _change_grant(info.context, service.assign_role, input)

    @strawberry.mutation
    async def revoke_role(self, info: Ctx, input: RevokeRoleInput) -> UserType:
        return await _change_grant(info.context, service.revoke_role, input)

    @strawberry.mutation(description="A read-only supervisor of every city of a province.")
    async def create_provincial_supervisor(
        self, info: Ctx, input: CreateProvincialSupervisorInput
    ) -> UserType:
        account = await info.context.mutate(
            service.create_provincial_supervisor,
            username=input.username,
            display_name=input.display_name,
            province=input.province,
        )
        return UserType(
            id=strawberry.ID(str(account.id)),
            username=account.username,
            display_name=account.display_name,
            roles=[RoleGrantType(role=Role.PROVINCIAL_SUPERVISOR, org_unit=None)],
        )
