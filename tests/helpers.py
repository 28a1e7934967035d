"""Shared test helpers: a GraphQL-over-HTTP client and a two-province world of tenants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.cases.pii import check_character
from backend.core.db import Database
from backend.tenants import service
from backend.tenants.flows import onboard_tenant
from backend.tenants.models import OrgUnitLevel as L


@dataclass
class Response:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    @property
    def code(self) -> str | None:
        return self.codes[0] if self.codes else None

    @property
    def field(self) -> str | None:
        return self.errors[0].get("extensions", {}).get("field") if self.errors else None

    def ok(self) -> Any:
        assert self.status == 200 and not self.errors, self.body
        return self.data


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        resp = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=hdrs
        )
        return Response(resp.status_code, resp.json())


@dataclass
class City:
    slug: str
    province: str
    tokens: dict[str, str] = field(default_factory=dict)

    def path(self, rel: str = "") -> str:
        return f"/{self.slug}/{rel}".rstrip("/")

    def token(self, who: str) -> str:
        return self.tokens[who]


@dataclass
class World:
    """Cities A and B in one province, C in another; tokens by short role names."""

    a: City
    b: City
    c: City
    tokens: dict[str, str]


UNITS = [
    ("c1", L.COUNTY),
    ("c2", L.COUNTY),
    ("dept", L.DEPARTMENT),
    ("c1/t1", L.TOWNSHIP),
    ("c1/t2", L.TOWNSHIP),
    ("c2/t1", L.TOWNSHIP),
    ("c1/t1/v1", L.VILLAGE),
    ("c1/t1/v1/g1", L.GRID),
]
USERS = [
    ("admin", Role.CITY_ADMIN, ""),
    ("officer", Role.PETITION_OFFICER, ""),
    ("leader", Role.LEADER, ""),
    ("c1_officer", Role.PETITION_OFFICER, "c1"),
    ("c2_officer", Role.PETITION_OFFICER, "c2"),
    ("c1_leader", Role.LEADER, "c1"),
    ("t1_officer", Role.PETITION_OFFICER, "c1/t1"),
    ("handler", Role.DEPARTMENT_HANDLER, "dept"),
    ("grid", Role.GRID_WORKER, "c1/t1/v1/g1"),
    ("evaluator", Role.EVALUATOR, ""),
]


def id_number(n: int, area: str = "411403") -> str:
    """A valid GB 11643 resident id number derived from ``n`` (born 1980)."""
    body = f"{area}1980{n % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    return body + check_character(body)


def refusal_shape(resp: Response, *secrets: str) -> tuple:
    """What a caller learns from a refusal, with the values it sent itself blanked out."""
    message = resp.errors[0]["message"]
    for secret in secrets:
        message = message.replace(secret, "<sent>")
    extensions = dict(resp.errors[0].get("extensions", {}))
    return resp.status, resp.data, extensions, message


async def create_supervisors(db: Database, provinces: dict[str, str]) -> dict[str, str]:
    """A provincial supervisor per ``name → province``; returns their tokens by name."""
    tokens: dict[str, str] = {}
    async with db.transaction() as session:
        for name, province in provinces.items():
            username = unique(name)
            await service.create_provincial_supervisor(
                session, SYSTEM, username=username, display_name=name, province=province
            )
            tokens[name] = issue_token(username)
    return tokens


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def build_city(db: Database, slug: str, province: str) -> City:
    city = City(slug, province)
    async with db.transaction() as session:
        await onboard_tenant(session, SYSTEM, slug=slug, name=f"City {slug}", province=province)
        for rel, level in UNITS:
            parent, _, leaf = city.path(rel).rpartition("/")
            await service.create_org_unit(
                session, SYSTEM, parent_path=parent, slug=leaf, name=leaf, level=level
            )
        for short, role, rel in USERS:
            username = f"{slug}_{short}"
            await service.create_user(
                session,
                SYSTEM,
                tenant=slug,
                username=username,
                display_name=short,
                phone="13800001234",
            )
            await service.assign_role(
                session, SYSTEM, username=username, role=role, org_unit_path=city.path(rel)
            )
            city.tokens[short] = issue_token(username)
    return city


async def build_world(db: Database) -> World:
    p1, p2 = unique("p"), unique("q")
    a = await build_city(db, unique("a"), p1)
    b = await build_city(db, unique("b"), p1)
    c = await build_city(db, unique("c"), p2)
    tokens = await create_supervisors(db, {"sup1": p1, "sup2": p2})
    async with db.transaction() as session:
        admin = unique("platform")
        await service.create_platform_admin(session, username=admin)
        tokens["platform"] = issue_token(admin)
    return World(a=a, b=b, c=c, tokens=tokens)
