"""The demo province (``xinfang seed-demo``): real counties of Shangqiu and Zhoukou in Henan,
a few townships, villages, grids and departments, one user per role, and a second province
(Zhejiang, Hangzhou) to prove province boundaries. Idempotent: an existing tenant is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import SYSTEM
from backend.core.db import Database
from backend.tenants import service
from backend.tenants.flows import onboard_tenant
from backend.tenants.models import OrgUnitLevel as L
from backend.tenants.models import Role

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
    return created
