"""Per-tenant case categories; every new tenant starts with the common list below."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.models import Category
from backend.tenants.flows import tenant_created

# 28 categories common in municipal 信访 statistics (code, name).
DEFAULT_CATEGORIES: list[tuple[str, str]] = [
    ("land", "土地征收与使用"),
    ("demolition", "房屋征收与拆迁"),
    ("housing", "住房保障与物业"),
    ("construction-quality", "建筑工程质量"),
    ("wages", "拖欠农民工工资"),
    ("labor", "劳动关系与劳动保障"),
    ("social-insurance", "社会保险"),
    ("pension", "养老与退休待遇"),
    ("medical", "医疗卫生"),
    ("education", "教育"),
    ("environment", "生态环境污染"),
    ("agriculture", "农业农村与惠农政策"),
    ("rural-affairs", "村务公开与集体资产"),
    ("civil-affairs", "民政与社会救助"),
    ("veterans", "退役军人事务"),
    ("law-enforcement", "政法与执法"),
    ("litigation", "涉法涉诉"),
    ("discipline", "纪检监察与干部作风"),
    ("transport", "交通运输"),
    ("urban-management", "城市管理"),
    ("market-regulation", "市场监管与消费维权"),
    ("finance", "金融与非法集资"),
    ("enterprise", "企业改制与经营"),
    ("water-power", "水电气暖"),
    ("household-registration", "户籍与证照"),
    ("family-planning", "计划生育与家庭"),
    ("public-security", "社会治安"),
    ("other", "其他"),
]


@tenant_created.register
async def seed_default_categories(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """A new city starts with the standard category list (the tenants' creation hook)."""
    existing = set(await session.scalars(select(Category.code)))
    for code, name in DEFAULT_CATEGORIES:
        if code not in existing:
            session.add(Category(tenant_id=tenant_id, code=code, name=name))
    await session.flush()


async def list_categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.code)))
