"""One city's org tree, officials and role assignments as plain rows (no database here).

Shape (the large cities, like Shangqiu): city → ~10 counties → ~20 townships
each → ~20 villages each (≈ 4,000 villages), departments at the city and
each county, grids below some villages. Every unit has petition officers
and leaders; villages have a 包村 leader from their township on top, so the
largest city holds well over 10,000 role assignments.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from backend.authz.roles import AccountKind, Role
from backend.tenants.models import OrgUnitLevel


def uuid7(rng: random.Random, at: datetime) -> uuid.UUID:
    """A UUIDv7 for the instant ``at`` (as ``backend.core.ids.new_id`` makes them, but seeded).

    Time-ordered keys matter at this size: rows arrive in time order, so primary-key
    and ``case_id`` index inserts go to the right edge instead of all over the B-tree.
    """
    ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64)
                     | (0b10 << 62) | rng.getrandbits(62))  # fmt: skip


CITY_DEPARTMENTS = [
    ("housing", "市住房和城乡建设局"),
    ("hrss", "市人力资源和社会保障局"),
    ("natural-resources", "市自然资源和规划局"),
    ("education", "市教育局"),
    ("health", "市卫生健康委员会"),
    ("public-security", "市公安局"),
    ("civil-affairs", "市民政局"),
    ("ecology", "市生态环境局"),
    ("transport", "市交通运输局"),
    ("agriculture", "市农业农村局"),
    ("market", "市市场监督管理局"),
    ("urban-management", "市城市管理局"),
    ("water", "市水利局"),
    ("finance", "市财政局"),
    ("veterans", "市退役军人事务局"),
    ("justice", "市司法局"),
    ("emergency", "市应急管理局"),
    ("culture", "市文化广电和旅游局"),
    ("commerce", "市商务局"),
    ("medical-security", "市医疗保障局"),
]
COUNTY_DEPARTMENTS = [
    ("housing", "住建局"),
    ("hrss", "人社局"),
    ("natural-resources", "自然资源局"),
    ("agriculture", "农业农村局"),
    ("education", "教育局"),
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌玉兰鹏飞俊峰"
PLACE = "东西南北新安宁平和丰泰康兴华永长清河山城阳林桥庄集店屯营寨湖岗"


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def place_name(rng: random.Random) -> str:
    return rng.choice(PLACE) + rng.choice(PLACE)


@dataclass
class Unit:
    id: uuid.UUID
    path: str
    level: OrgUnitLevel
    name: str
    parent: Unit | None = None
    children: list[Unit] = field(default_factory=list)
    officers: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (user id, username)
    leaders: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    handlers: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # departments

    def ancestors(self) -> list[Unit]:
        """This unit and its parents, deepest first."""
        out, unit = [], self
        while unit is not None:
            out.append(unit)
            unit = unit.parent
        return out

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + "/")


@dataclass
class Shape:
    counties: int
    townships: int
    villages: int


def shape_for(rank: int, tenants: int) -> Shape:
    """The largest quarter of the province gets the full Shangqiu-sized tree."""
    if rank < max(1, tenants // 4):
        return Shape(10, 20, 20)
    return Shape(6 + rank % 4, 12 + (rank * 3) % 8, 10 + (rank * 5) % 10)


@dataclass
class City:
    """The generated tree of one tenant and the rows to COPY."""

    tenant_id: uuid.UUID
    slug: str
    root: Unit
    counties: list[Unit]
    city_departments: list[Unit]
    units: list[tuple] = field(default_factory=list)  # org_units rows (root excluded)
    accounts: list[tuple] = field(default_factory=list)
    users: list[tuple] = field(default_factory=list)
    roles: list[tuple] = field(default_factory=list)


UNIT_COLUMNS = [
    "tenant_id", "id", "parent_id", "path", "slug", "name", "level", "depth", "created_at",
]  # fmt: skip
ACCOUNT_COLUMNS = [
    "id", "username", "kind", "display_name", "tenant_id", "province_id", "disabled_at",
    "created_at",
]  # fmt: skip
USER_COLUMNS = ["tenant_id", "id", "username", "display_name", "phone", "created_at"]
ROLE_COLUMNS = ["tenant_id", "id", "user_id", "role", "org_unit_id", "created_at"]


@dataclass(frozen=True)
class CitySpec:
    """Which city to generate: its ids, names, shape and the instant it is dated at."""

    tenant_id: uuid.UUID
    province_id: uuid.UUID
    slug: str
    name: str
    root_id: uuid.UUID
    shape: Shape
    at: datetime


def build_city(rng: random.Random, spec: CitySpec) -> City:
    """The city's org tree and staff: departments, counties, townships, villages, grids."""
    builder = _CityBuilder(rng, spec)
    builder.city_level()
    for c in range(spec.shape.counties):
        builder.county(c)
    return builder.city


class _CityBuilder:
    """Rows of one generated city, added unit by unit (ids from the seeded ``rng``)."""

    def __init__(self, rng: random.Random, spec: CitySpec) -> None:
        self.rng, self.spec = rng, spec
        root = Unit(spec.root_id, f"/{spec.slug}", OrgUnitLevel.CITY, spec.name)
        self.city = City(spec.tenant_id, spec.slug, root, [], [])

    def uid(self) -> uuid.UUID:
        return uuid7(self.rng, self.spec.at)

    def unit(self, parent: Unit, seg: str, level: OrgUnitLevel, uname: str) -> Unit:
        u = Unit(self.uid(), f"{parent.path}/{seg}", level, uname, parent)
        parent.children.append(u)
        depth = u.path.count("/") - 1
        row = (self.spec.tenant_id, u.id, parent.id, u.path, seg, uname, level, depth)
        self.city.units.append((*row, self.spec.at))
        return u

    def user(self, u: Unit, tag: str, role: Role, extra_units: tuple[Unit, ...] = ()) -> None:
        spec, city, rng = self.spec, self.city, self.rng
        rel = u.path[len(city.root.path) + 1 :].replace("/", ".")
        username = f"{spec.slug}.{rel + '.' if rel else ''}{tag}"
        display = person_name(rng)
        user_id = self.uid()
        city.accounts.append(
            (user_id, username, AccountKind.TENANT_USER, display, spec.tenant_id,
             spec.province_id, None, spec.at)
        )  # fmt: skip
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        city.users.append((spec.tenant_id, user_id, username, display, phone, spec.at))
        for target in (u, *extra_units):
            city.roles.append((spec.tenant_id, self.uid(), user_id, role, target.id, spec.at))
            bucket = {
                Role.PETITION_OFFICER: target.officers,
                Role.LEADER: target.leaders,
                Role.DEPARTMENT_HANDLER: target.handlers,
            }.get(role)
            if bucket is not None:
                bucket.append((user_id, username))

    def staff(self, u: Unit, officers: int, leaders: int) -> None:
        for k in range(officers):
            self.user(u, f"off{k + 1}", Role.PETITION_OFFICER)
        for k in range(leaders):
            self.user(u, f"lead{k + 1}", Role.LEADER)

    def city_level(self) -> None:
        root = self.city.root
        self.user(root, "admin", Role.CITY_ADMIN)
        self.staff(root, 10, 8)
        for k in range(2):
            self.user(root, f"eval{k + 1}", Role.EVALUATOR)
        for seg, dname in CITY_DEPARTMENTS:
            d = self.unit(root, seg, OrgUnitLevel.DEPARTMENT, dname)
            self.city.city_departments.append(d)
            for k in range(3):
                self.user(d, f"handler{k + 1}", Role.DEPARTMENT_HANDLER)

    def county(self, c: int) -> None:
        name = place_name(self.rng) + "县"
        county = self.unit(self.city.root, f"c{c + 1:02d}", OrgUnitLevel.COUNTY, name)
        self.city.counties.append(county)
        self.staff(county, 4, 6)
        for seg, dname in COUNTY_DEPARTMENTS:
            d = self.unit(county, seg, OrgUnitLevel.DEPARTMENT, county.name + dname)
            for k in range(2):
                self.user(d, f"handler{k + 1}", Role.DEPARTMENT_HANDLER)
        for w in range(self.spec.shape.townships):
            self.township(county, w)

    def township(self, county: Unit, w: int) -> None:
        rng = self.rng
        town = self.unit(county, f"t{w + 1:02d}", OrgUnitLevel.TOWNSHIP, place_name(rng) + "镇")
        villages = [
            self.unit(town, f"v{k + 1:02d}", OrgUnitLevel.VILLAGE, place_name(rng) + "村")
            for k in range(self.spec.shape.villages)
        ]
        self.staff(town, 2, 0)
        for k in range(3):  # 包村: each township leader also answers for a third of its villages
            self.user(town, f"lead{k + 1}", Role.LEADER, tuple(villages[k::3]))
        for village in villages:
            self.staff(village, 1, 1)
            if rng.random() < 0.1:
                for g in range(2):
                    grid = self.unit(village, f"g{g + 1}", OrgUnitLevel.GRID, f"第{g + 1}网格")
                    self.user(grid, "worker", Role.GRID_WORKER)
