"""The demo province (``xinfang seed-demo``): real counties of Shangqiu and Zhoukou in Henan,
a few townships, villages, grids and departments, one user per role, and a second province
(Zhejiang, Hangzhou) to prove province boundaries. Idempotent: an existing tenant is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.cases import service as cases
from backend.cases.models import CaseType, Channel
from backend.cases.pii import check_character
from backend.core.clock import now
from backend.core.db import Database
from backend.tenants import service
from backend.tenants.flows import onboard_tenant
from backend.tenants.models import OrgUnitLevel as L
from backend.tenants.principals import load_principal

# (path below the city, name, level); parents come before children.
Unit = tuple[str, str, L]


@dataclass
class DemoTenant:
    slug: str
    name: str
    province: str
    province_name: str
    prefix: str
    units: list[Unit]
    users: list[tuple[str, str, Role, str]] = field(
        default_factory=list
    )  # username, name, role, path


SHANGQIU = DemoTenant(
    "shangqiu",
    "商丘市",
    "henan",
    "河南省",
    "SQ",
    units=[
        ("liangyuan", "梁园区", L.COUNTY),
        ("suiyang", "睢阳区", L.COUNTY),
        ("yongcheng", "永城市", L.COUNTY),
        ("minquan", "民权县", L.COUNTY),
        ("suixian", "睢县", L.COUNTY),
        ("ningling", "宁陵县", L.COUNTY),
        ("zhecheng", "柘城县", L.COUNTY),
        ("yucheng", "虞城县", L.COUNTY),
        ("xiayi", "夏邑县", L.COUNTY),
        ("housing", "市住房和城乡建设局", L.DEPARTMENT),
        ("hrss", "市人力资源和社会保障局", L.DEPARTMENT),
        ("natural-resources", "市自然资源和规划局", L.DEPARTMENT),
        ("suiyang/dongfeng", "东风乡", L.TOWNSHIP),
        ("suiyang/gucheng", "古城街道", L.TOWNSHIP),
        ("suiyang/dongfeng/lizhuang", "李庄村", L.VILLAGE),
        ("suiyang/dongfeng/wangzhuang", "王庄村", L.VILLAGE),
        ("suiyang/gucheng/nanguan", "南关社区", L.VILLAGE),
        ("suiyang/dongfeng/lizhuang/g1", "李庄村第一网格", L.GRID),
        ("liangyuan/pingyuan", "平原街道", L.TOWNSHIP),
        ("liangyuan/pingyuan/xinhua", "新华社区", L.VILLAGE),
        ("yongcheng/chengguan", "城关镇", L.TOWNSHIP),
        ("yongcheng/chengguan/dongguan", "东关村", L.VILLAGE),
    ],
    users=[
        ("sq_admin", "商丘市平台管理员", Role.CITY_ADMIN, ""),
        ("sq_officer", "市信访局 张明", Role.PETITION_OFFICER, ""),
        ("sq_leader", "市领导 刘建国", Role.LEADER, ""),
        ("sq_suiyang_officer", "睢阳区信访局 王芳", Role.PETITION_OFFICER, "suiyang"),
        ("sq_suiyang_leader", "睢阳区领导 陈志强", Role.LEADER, "suiyang"),
        ("sq_liangyuan_officer", "梁园区信访局 赵磊", Role.PETITION_OFFICER, "liangyuan"),
        ("sq_dongfeng_officer", "东风乡信访办 孙丽", Role.PETITION_OFFICER, "suiyang/dongfeng"),
        ("sq_housing_handler", "市住建局 周涛", Role.DEPARTMENT_HANDLER, "housing"),
        ("sq_grid", "李庄村网格员 李娟", Role.GRID_WORKER, "suiyang/dongfeng/lizhuang/g1"),
        ("sq_evaluator", "评议员 吴律师", Role.EVALUATOR, ""),
    ],
)

ZHOUKOU = DemoTenant(
    "zhoukou",
    "周口市",
    "henan",
    "河南省",
    "ZK",
    units=[
        ("chuanhui", "川汇区", L.COUNTY),
        ("huaiyang", "淮阳区", L.COUNTY),
        ("xiangcheng", "项城市", L.COUNTY),
        ("fugou", "扶沟县", L.COUNTY),
        ("xihua", "西华县", L.COUNTY),
        ("shangshui", "商水县", L.COUNTY),
        ("shenqiu", "沈丘县", L.COUNTY),
        ("dancheng", "郸城县", L.COUNTY),
        ("taikang", "太康县", L.COUNTY),
        ("luyi", "鹿邑县", L.COUNTY),
        ("housing", "市住房和城乡建设局", L.DEPARTMENT),
        ("chuanhui/chenzhou", "陈州回族街道", L.TOWNSHIP),
        ("chuanhui/chenzhou/xiguan", "西关社区", L.VILLAGE),
        ("huaiyang/chengguan", "城关回族镇", L.TOWNSHIP),
        ("huaiyang/chengguan/beiguan", "北关村", L.VILLAGE),
    ],
    users=[
        ("zk_admin", "周口市平台管理员", Role.CITY_ADMIN, ""),
        ("zk_officer", "周口市信访局 马超", Role.PETITION_OFFICER, ""),
        ("zk_leader", "周口市领导 郑伟", Role.LEADER, ""),
        ("zk_chuanhui_officer", "川汇区信访局 何静", Role.PETITION_OFFICER, "chuanhui"),
    ],
)

HANGZHOU = DemoTenant(
    "hangzhou",
    "杭州市",
    "zhejiang",
    "浙江省",
    "HZ",
    units=[
        ("xihu", "西湖区", L.COUNTY),
        ("gongshu", "拱墅区", L.COUNTY),
        ("xihu/lingyin", "灵隐街道", L.TOWNSHIP),
    ],
    users=[
        ("hz_admin", "杭州市平台管理员", Role.CITY_ADMIN, ""),
        ("hz_officer", "杭州市信访局 沈悦", Role.PETITION_OFFICER, ""),
    ],
)

DEMO_TENANTS = [SHANGQIU, ZHOUKOU, HANGZHOU]
SUPERVISORS = [
    ("henan_supervisor", "河南省信访局督查员", "henan"),
    ("zhejiang_supervisor", "浙江省信访局督查员", "zhejiang"),
]
PLATFORM_ADMIN = "platform"


async def _seed_tenant(session: AsyncSession, demo: DemoTenant) -> None:
    await onboard_tenant(
        session,
        SYSTEM,
        slug=demo.slug,
        name=demo.name,
        province=demo.province,
        province_name=demo.province_name,
        case_prefix=demo.prefix,
    )
    for rel, name, level in demo.units:
        parent, _, slug = f"/{demo.slug}/{rel}".rpartition("/")
        await service.create_org_unit(
            session, SYSTEM, parent_path=parent, slug=slug, name=name, level=level
        )
    for i, (username, display, role, rel) in enumerate(demo.users):
        if await service.account_by_username(session, username) is None:
            await service.create_user(
                session,
                SYSTEM,
                tenant=demo.slug,
                username=username,
                display_name=display,
                phone=f"1380000{i:04d}",
            )
        path = f"/{demo.slug}/{rel}".rstrip("/")
        await service.assign_role(session, SYSTEM, username=username, role=role, org_unit_path=path)


async def seed_demo(db: Database) -> list[str]:
    """Load what is missing; returns the slugs of the tenants it created."""
    created: list[str] = []
    async with db.transaction() as session:
        for demo in DEMO_TENANTS:
            if await service.tenant_by_slug(session, demo.slug) is None:
                await _seed_tenant(session, demo)
                created.append(demo.slug)
        for username, display, province in SUPERVISORS:
            if await service.account_by_username(session, username) is None:
                await service.create_provincial_supervisor(
                    session, SYSTEM, username=username, display_name=display, province=province
                )
        if await service.account_by_username(session, PLATFORM_ADMIN) is None:
            await service.create_platform_admin(
                session, username=PLATFORM_ADMIN, display_name="平台管理员"
            )
    for demo in DEMO_TENANTS:
        if demo.slug in created:
            await seed_demo_cases(db, demo)
    return created


# (days ago received, channel, type, category, subject, location, steps to take)
DEMO_CASES = [
    (1, "VISIT", "CLAIM", "wages", "农民工工资被拖欠三个月", "suiyang/dongfeng/lizhuang", []),
    (3, "PHONE", "CLAIM", "housing", "安置房迟迟未交付", "suiyang/gucheng/nanguan", ["route"]),
    (6, "ONLINE", "SUGGESTION", "transport", "建议增设公交站点", "liangyuan/pingyuan/xinhua", []),
    (
        9,
        "LETTER",
        "CLAIM",
        "land",
        "征地补偿款未足额发放",
        "suiyang/dongfeng/wangzhuang",
        ["route", "accept"],
    ),
    (13, "QR_CODE", "CLAIM", "social-insurance", "养老保险转移接续受阻", "yongcheng/chengguan", []),
    (
        14,
        "VISIT",
        "ACCUSATION",
        "discipline",
        "反映村干部优亲厚友",
        "suiyang/dongfeng/lizhuang",
        [],
    ),
    (
        20,
        "PHONE",
        "CLAIM",
        "environment",
        "养殖场污染水源",
        "yongcheng/chengguan/dongguan",
        ["route", "accept"],
    ),
    (
        40,
        "VISIT",
        "CLAIM",
        "demolition",
        "拆迁安置面积争议",
        "suiyang/gucheng",
        ["route", "accept", "reply"],
    ),
    (58, "LETTER", "CLAIM", "pension", "退休待遇核定有误", "liangyuan", ["route", "accept"]),
]


def _valid_id(seed: int) -> str:
    """A demo id-card number with a correct GB 11643 check character."""
    body = f"411403198{seed % 10}0{(seed % 9) + 1}1{seed % 10}{seed % 10}3{seed % 10}"[:17]
    return body + check_character(body)


async def seed_demo_cases(db: Database, demo: DemoTenant) -> int:
    """A few cases in every state and colour, so the warning board has something to show."""
    officer = await load_principal(db, f"{demo.prefix.lower()}_officer")
    count = 0
    for i, (ago, channel, ctype, category, subject, rel, steps) in enumerate(DEMO_CASES):
        async with db.transaction(officer.scope()) as session:
            location = f"/{demo.slug}/{rel}"
            if await service.unit_by_path(session, location) is None:
                continue
            accused = f"/{demo.slug}/suiyang/dongfeng" if ctype == "ACCUSATION" else None
            case = await cases.register_case(
                session,
                officer,
                cases.RegisterCaseInput(
                    client_key=f"demo-{demo.slug}-{i}",
                    channel=Channel(channel),
                    type=CaseType(ctype),
                    category=category,
                    subject=subject,
                    content=f"{subject}。（演示数据）",
                    location_path=location,
                    petitioner=cases.PetitionerInput(
                        f"演示信访人{i + 1}", f"1390000{i:04d}", _valid_id(i)
                    ),
                    received_at=now() - timedelta(days=ago),
                    accused_unit_path=accused,
                ),
            )
            county = "/".join(location.split("/")[:3])
            for step in steps:
                ref = cases.CaseRef(str(case.id), case.version)
                if step == "route":
                    case = await cases.route_case(
                        session, officer, ref, to_unit_path=county, mode="ASSIGN"
                    )
                elif step == "accept":
                    case = await cases.accept_case(session, officer, ref)
                elif step == "reply":
                    case = await cases.reply_case(
                        session, officer, ref, opinion="经调查核实，已依法依规作出处理。"
                    )
            count += 1
    return count
