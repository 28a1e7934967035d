"""Who and where: the demo provinces, cities, org trees and users.

Henan with Shangqiu and Zhoukou (real counties/districts, some townships,
villages, grids and departments) and Zhejiang with Hangzhou, to show province
boundaries. ``places`` name the units the case stories happen at and ``actors``
the users who act in them, so one set of stories serves every city.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.authz.roles import Role
from backend.tenants.models import OrgUnitLevel as L

# (path below the city, name, level); parents come before children.
Unit = tuple[str, str, L]
# username, display name, role (None: no role of its own), unit path below the city
User = tuple[str, str, Role | None, str]

# Who stands in when a city lacks a user for a part (a small city has one officer).
ACTOR_FALLBACKS = {
    "township_officer": "county_officer",
    "county_officer": "officer",
    "county_leader": "leader",
    "deputy_leader": "county_leader",
    "handler": "officer",
    "grid": "county_officer",
}


@dataclass
class DemoTenant:
    slug: str
    name: str
    province: str
    province_name: str
    prefix: str
    units: list[Unit]
    users: list[User]
    places: dict[str, str]  # story place → path below the city ("" = the city itself)
    actors: dict[str, str]  # story part → username
    evaluators: list[tuple[str, str]] = field(default_factory=list)  # username, category
    rosters: bool = False

    def path(self, place: str) -> str:
        return f"/{self.slug}/{self.places.get(place, place)}".rstrip("/")

    def actor(self, part: str) -> str:
        while part not in self.actors:
            part = ACTOR_FALLBACKS[part]
        return self.actors[part]


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
        ("sq_suiyang_deputy", "睢阳区副区长 杨帆", Role.LEADER, "suiyang"),
        ("sq_liangyuan_officer", "梁园区信访局 赵磊", Role.PETITION_OFFICER, "liangyuan"),
        ("sq_dongfeng_officer", "东风乡信访办 孙丽", Role.PETITION_OFFICER, "suiyang/dongfeng"),
        ("sq_housing_handler", "市住建局 周涛", Role.DEPARTMENT_HANDLER, "housing"),
        ("sq_grid", "李庄村网格员 李娟", Role.GRID_WORKER, "suiyang/dongfeng/lizhuang/g1"),
        ("sq_evaluator", "评议员 吴律师", Role.EVALUATOR, ""),
        # the rest of the evaluator pool: the role comes with their enrolment
        ("sq_eval_scholar", "评议员 郑教授", None, ""),
        ("sq_eval_deputy", "评议员 人大代表 冯霞", None, ""),
        ("sq_eval_veteran", "评议员 退役军人 褚刚", None, ""),
        ("sq_eval_elder", "评议员 五老 卫德明", None, ""),
    ],
    places={
        "city": "",
        "county": "suiyang",
        "county2": "liangyuan",
        "township": "suiyang/dongfeng",
        "village": "suiyang/dongfeng/lizhuang",
        "village2": "suiyang/gucheng/nanguan",
        "grid": "suiyang/dongfeng/lizhuang/g1",
        "housing": "housing",
        "far": "yongcheng/chengguan/dongguan",
    },
    actors={
        "officer": "sq_officer",
        "county_officer": "sq_suiyang_officer",
        "township_officer": "sq_dongfeng_officer",
        "leader": "sq_leader",
        "county_leader": "sq_suiyang_leader",
        "deputy_leader": "sq_suiyang_deputy",
        "handler": "sq_housing_handler",
        "grid": "sq_grid",
        "admin": "sq_admin",
    },
    evaluators=[
        ("sq_evaluator", "LAWYER"),
        ("sq_eval_scholar", "EXPERT"),
        ("sq_eval_deputy", "DEPUTY"),
        ("sq_eval_veteran", "VETERAN"),
        ("sq_eval_elder", "ELDER"),
    ],
    rosters=True,
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
        ("zk_chenzhou_officer", "陈州街道信访办 吕洋", Role.PETITION_OFFICER, "chuanhui/chenzhou"),
    ],
    places={
        "city": "",
        "county": "chuanhui",
        "county2": "huaiyang",
        "township": "chuanhui/chenzhou",
        "village": "chuanhui/chenzhou/xiguan",
        "village2": "huaiyang/chengguan/beiguan",
        "grid": "chuanhui/chenzhou/xiguan",
        "housing": "housing",
        "far": "huaiyang/chengguan",
    },
    actors={
        "officer": "zk_officer",
        "county_officer": "zk_chuanhui_officer",
        "township_officer": "zk_chenzhou_officer",
        "leader": "zk_leader",
        "admin": "zk_admin",
    },
    rosters=True,
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
        ("housing", "市住房保障和房产管理局", L.DEPARTMENT),
        ("xihu/lingyin", "灵隐街道", L.TOWNSHIP),
        ("xihu/lingyin/lingshun", "灵顺社区", L.VILLAGE),
        ("gongshu/hushu", "湖墅街道", L.TOWNSHIP),
        ("gongshu/hushu/daguan", "大关社区", L.VILLAGE),
    ],
    users=[
        ("hz_admin", "杭州市平台管理员", Role.CITY_ADMIN, ""),
        ("hz_officer", "杭州市信访局 沈悦", Role.PETITION_OFFICER, ""),
        ("hz_leader", "杭州市领导 陆明", Role.LEADER, ""),
        ("hz_xihu_officer", "西湖区信访局 蒋琳", Role.PETITION_OFFICER, "xihu"),
        ("hz_lingyin_officer", "灵隐街道信访办 韩磊", Role.PETITION_OFFICER, "xihu/lingyin"),
    ],
    places={
        "city": "",
        "county": "xihu",
        "county2": "gongshu",
        "township": "xihu/lingyin",
        "village": "xihu/lingyin/lingshun",
        "village2": "gongshu/hushu/daguan",
        "grid": "xihu/lingyin/lingshun",
        "housing": "housing",
        "far": "gongshu/hushu",
    },
    actors={
        "officer": "hz_officer",
        "county_officer": "hz_xihu_officer",
        "township_officer": "hz_lingyin_officer",
        "leader": "hz_leader",
        "admin": "hz_admin",
    },
)

DEMO_TENANTS = [SHANGQIU, ZHOUKOU, HANGZHOU]
SUPERVISORS = [
    ("henan_supervisor", "河南省信访局督查员", "henan"),
    ("zhejiang_supervisor", "浙江省信访局督查员", "zhejiang"),
]
PLATFORM_ADMIN = "platform"
