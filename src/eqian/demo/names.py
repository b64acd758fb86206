"""Places and word lists for the synthetic district.

Stations, service points and streets are modelled on Zhili and Huzhou; street numbers, brands and
estate names are invented. Unit names are built from templates below: ``{p}`` is the place's short
name (织里, 南浔 …), ``{t}`` its town or street office, ``{a}`` a neighbourhood, ``{s}`` the unit's
street, ``{b}`` an invented children's-wear brand, ``{g}`` an invented trade name, ``{e}`` an
estate, ``{k}`` a bank, ``{c}`` a courier, ``{h}`` a hotel chain, ``{f}`` a fuel brand and ``{n}`` a
surname. Each template carries the first two characters of its unified social credit code, which
say what kind of registrant it is (GB 32100: 91 company, 92 sole trader, 12 public institution,
52 private non-profit), so a school is not registered like a garment workshop.
"""

from __future__ import annotations

from typing import NamedTuple


class StationPlace(NamedTuple):
    code: str
    name: str
    district: str  # 吴兴区 / 南浔区 / 南太湖新区
    locality: str  # the town or street office (织里镇, 爱山街道)
    short: str  # what local firms put in their names
    region: str  # administrative division code used in credit codes
    lat: float
    lng: float
    spread: float  # standard deviation of unit positions around the station, degrees
    in_zhili: bool
    weight: float  # share of the city's units; Zhili's stations only split the town among themselves
    address: str
    streets: tuple[str, ...]
    areas: tuple[str, ...]  # neighbourhoods / villages, for schools, clinics and estates
    service_points: tuple[tuple[str, float, float], ...]  # (name, lat offset, lng offset)


WUXING = "330502"
NANXUN = "330503"

ZHILI_STATIONS: tuple[StationPlace, ...] = (
    StationPlace(
        "zhinan",
        "织南派出所",
        "吴兴区",
        "织里镇",
        "织里",
        WUXING,
        30.8185,
        120.2640,
        0.0075,
        True,
        0.35,
        "湖州市吴兴区织里镇珍贝路318号",
        ("珍贝路", "利济路", "织里南路", "湖织大道", "晓河路", "秦家港路", "凯旋路", "南环路"),
        ("晓河", "秦家港", "利济", "珍贝", "湖织", "南港"),
        (
            ("东尼电子“e企安”员工服务中心", -0.006, -0.010),
            ("珍贝路服务点", 0.002, 0.004),
            ("织里南路童装城自治服务点", -0.003, 0.009),
            ("利济路服务点", 0.006, -0.006),
            ("晓河村自治服务点", -0.010, 0.002),
            ("秦家港服务点", -0.004, -0.016),
        ),
    ),
    StationPlace(
        "zhibei",
        "织北派出所",
        "吴兴区",
        "织里镇",
        "织里",
        WUXING,
        30.8560,
        120.2580,
        0.0080,
        True,
        0.40,
        "湖州市吴兴区织里镇大港路1288号",
        ("大港路", "栋梁路", "康泰路", "吴兴大道", "织里北路", "富民路", "长安路", "育才路"),
        ("香圩墩", "大港", "康泰", "栋梁", "河西", "北港"),
        (
            ("织里香圩墩园区“e企安”自治服务点", 0.007, -0.008),
            ("大港路童装园区自治服务点", -0.002, 0.006),
            ("吴兴大道服务点", -0.008, -0.004),
            ("吾悦广场“e企安”自治服务点", -0.005, 0.010),
            ("栋梁路童装产业园服务点", 0.004, 0.014),
            ("康泰社区自治服务点", 0.011, 0.003),
        ),
    ),
    StationPlace(
        "zhidong",
        "织东派出所",
        "吴兴区",
        "织里镇",
        "织里",
        WUXING,
        30.8420,
        120.2990,
        0.0080,
        True,
        0.25,
        "湖州市吴兴区织里镇阿祥路520号",
        ("阿祥路", "中华东路", "振兴路", "棉布城路", "东盛路", "太湖路", "轧村路"),
        ("轧村", "漾西", "乔溇", "东盛", "太湖", "义皋"),
        (
            ("阿祥路服务点", 0.001, -0.005),
            ("织东童装产业园自治服务点", -0.006, 0.007),
            ("轧村自治服务点", 0.009, 0.010),
            ("漾西服务点", -0.011, -0.002),
            ("乔溇生态警务服务点", 0.016, 0.004),
        ),
    ),
)


def _points(short: str) -> tuple[tuple[str, float, float], ...]:
    return (
        (f"{short}工业园区“e企安”自治服务点", 0.006, -0.007),
        (f"{short}商贸区自治服务点", -0.005, 0.006),
        (f"{short}社区服务点", 0.002, 0.011),
    )


HUZHOU_STATIONS: tuple[StationPlace, ...] = (
    StationPlace(
        "balidian",
        "八里店派出所",
        "吴兴区",
        "八里店镇",
        "八里店",
        WUXING,
        30.8600,
        120.1560,
        0.010,
        False,
        6,
        "湖州市吴兴区八里店镇南太湖大道1899号",
        ("南太湖大道", "西山漾路", "尹家圩路", "八里店路", "紫金桥路"),
        ("移沿山", "尹家圩", "潘店", "章家埭"),
        _points("八里店"),
    ),
    StationPlace(
        "yangjiabu",
        "杨家埠派出所",
        "南太湖新区",
        "杨家埠街道",
        "杨家埠",
        WUXING,
        30.8850,
        120.0400,
        0.010,
        False,
        4,
        "湖州市南太湖新区杨家埠街道杨家埠路66号",
        ("杨家埠路", "金盖山路", "西塞山路", "丘城路"),
        ("丘城", "西塞山", "龙山", "陆家湾"),
        _points("杨家埠"),
    ),
    StationPlace(
        "renhuangshan",
        "仁皇山派出所",
        "南太湖新区",
        "仁皇山街道",
        "仁皇山",
        WUXING,
        30.9050,
        120.0850,
        0.007,
        False,
        4,
        "湖州市南太湖新区仁皇山街道仁皇山路118号",
        ("仁皇山路", "太湖路", "环城北路", "金盖山路"),
        ("仁北", "滨湖", "太湖", "弁南"),
        _points("仁皇山"),
    ),
    StationPlace(
        "yuehe",
        "月河派出所",
        "吴兴区",
        "月河街道",
        "月河",
        WUXING,
        30.8600,
        120.1000,
        0.006,
        False,
        5,
        "湖州市吴兴区月河街道青铜路88号",
        ("青铜路", "二环南路", "红丰路", "月河路", "吉山路"),
        ("月河", "红丰", "吉山", "青铜"),
        _points("月河"),
    ),
    StationPlace(
        "aishan",
        "爱山派出所",
        "吴兴区",
        "爱山街道",
        "爱山",
        WUXING,
        30.8720,
        120.0950,
        0.005,
        False,
        6,
        "湖州市吴兴区爱山街道红旗路256号",
        ("红旗路", "人民路", "劳动路", "衣裳街", "环城东路"),
        ("爱山", "府庙", "馆驿河头", "碧浪"),
        _points("爱山"),
    ),
    StationPlace(
        "longquan",
        "龙泉派出所",
        "吴兴区",
        "龙泉街道",
        "龙泉",
        WUXING,
        30.8800,
        120.0750,
        0.006,
        False,
        4,
        "湖州市吴兴区龙泉街道苕溪西路199号",
        ("苕溪西路", "龙溪北路", "白鱼潭路", "外环西路"),
        ("龙泉", "白鱼潭", "龙溪", "潜庄"),
        _points("龙泉"),
    ),
    StationPlace(
        "fenghuang",
        "凤凰派出所",
        "吴兴区",
        "凤凰街道",
        "凤凰",
        WUXING,
        30.8850,
        120.1150,
        0.006,
        False,
        5,
        "湖州市吴兴区凤凰街道凤凰路399号",
        ("凤凰路", "西塞山路", "东吴路", "环城东路"),
        ("凤凰", "东白鱼潭", "马军巷", "潘公桥"),
        _points("凤凰"),
    ),
    StationPlace(
        "nanxun",
        "南浔派出所",
        "南浔区",
        "南浔镇",
        "南浔",
        NANXUN,
        30.8800,
        120.4200,
        0.010,
        False,
        7,
        "湖州市南浔区南浔镇人瑞路288号",
        ("人瑞路", "南林路", "适园路", "泰安路", "朝阳路"),
        ("东大街", "马家港", "百间楼", "横街"),
        _points("南浔"),
    ),
    StationPlace(
        "lianshi",
        "练市派出所",
        "南浔区",
        "练市镇",
        "练市",
        NANXUN,
        30.7200,
        120.4300,
        0.009,
        False,
        5,
        "湖州市南浔区练市镇练溪大道168号",
        ("练溪大道", "花园路", "新华路", "练市大道"),
        ("荻溇", "茹家甸", "湖盐", "朱家兜"),
        _points("练市"),
    ),
    StationPlace(
        "shuanglin",
        "双林派出所",
        "南浔区",
        "双林镇",
        "双林",
        NANXUN,
        30.7800,
        120.3350,
        0.009,
        False,
        5,
        "湖州市南浔区双林镇东升路99号",
        ("东升路", "塘桥路", "双林大道", "新风路"),
        ("塘桥", "向阳", "镇西", "蓬莱"),
        _points("双林"),
    ),
    StationPlace(
        "linghu",
        "菱湖派出所",
        "南浔区",
        "菱湖镇",
        "菱湖",
        NANXUN,
        30.7200,
        120.1900,
        0.009,
        False,
        5,
        "湖州市南浔区菱湖镇南上路66号",
        ("南上路", "菱湖大道", "人民路", "竹墩路"),
        ("竹墩", "射中", "下昂", "千金"),
        _points("菱湖"),
    ),
    StationPlace(
        "hefu",
        "和孚派出所",
        "南浔区",
        "和孚镇",
        "和孚",
        NANXUN,
        30.7700,
        120.1800,
        0.009,
        False,
        4,
        "湖州市南浔区和孚镇和孚大道200号",
        ("和孚大道", "荻港路", "重兆路", "民当路"),
        ("荻港", "重兆", "民当", "长超"),
        _points("和孚"),
    ),
)

# Zhili's share of a city-scale district: three stations out of fifteen, but the children's-wear
# capital holds a large part of Huzhou's registered firms.
ZHILI_CITY_WEIGHT = 40.0

# The town's extent: units scattered around a station are kept inside it.
ZHILI_BOX = (30.800, 30.880, 120.220, 120.330)  # lat min, lat max, lng min, lng max
TOWN_CENTRE = (30.835, 120.265)

# Category mixes (weights). Zhili is the children's-wear capital; the rest of Huzhou is not.
ZHILI_MIX: dict[str, float] = {
    "garment": 60.0,
    "property": 8.0,
    "market": 6.0,
    "hazchem": 1.0,
    "finance": 1.2,
    "education": 1.3,
    "medical": 1.2,
    "lodging": 5.0,
    "logistics": 7.0,
    "entertainment": 8.0,
    "transport": 1.3,
}
HUZHOU_MIX: dict[str, float] = {
    "garment": 12.0,
    "property": 16.0,
    "market": 12.0,
    "hazchem": 3.0,
    "finance": 4.0,
    "education": 4.5,
    "medical": 4.5,
    "lodging": 9.0,
    "logistics": 10.0,
    "entertainment": 19.0,
    "transport": 6.0,
}

# Children's-wear brands are cute and often doubled (贝贝乐); other trades pick auspicious words.
KID_HEADS = tuple("贝童乐星宝米可优嘉欧哈酷迪派果蓝糖爱美亲萌恩佳安捷兰彩丽雅诺琪伊尚韵朵蜜豆芽")
KID_TAILS = tuple("乐贝兔熊猫鸭妮宝米奇趣朵琪派果丫娃依豆萌星月虹欣悦")
BIZ_HEADS = tuple("恒鑫隆盛顺华金锦宏天永丰凯瑞嘉新东福富万德长荣和兴正中佳同汇众运博")
BIZ_TAILS = tuple("泰昌利祥发通诚信达源兴盛隆茂丰华鑫顺旺业成辉福安康恒")
ESTATE_WORDS = (
    "康泰",
    "华丰",
    "阳光",
    "东方",
    "美林",
    "锦绣",
    "富民",
    "新世纪",
    "金色",
    "翡翠",
    "龙湖",
    "御景",
    "滨湖",
    "香樟",
    "紫薇",
    "丽景",
    "明珠",
    "嘉苑",
    "吉祥",
    "绿洲",
    "江南",
    "万安",
    "荷花",
    "桂花",
    "银泰",
    "中央",
    "清水",
    "湖畔",
    "南湖",
    "梧桐",
    "天誉",
    "景都",
    "凤栖",
    "和平",
    "幸福",
    "太湖",
    "星河",
    "玉兰",
)
ESTATE_SUFFIXES = ("小区", "花园", "家园", "新村", "公寓", "苑", "华庭", "名邸", "府", "湾")
BANKS = (
    "中国农业银行",
    "中国工商银行",
    "中国建设银行",
    "中国银行",
    "交通银行",
    "中国邮政储蓄银行",
    "湖州银行",
    "浙江吴兴农村商业银行",
    "浙商银行",
    "招商银行",
    "兴业银行",
    "宁波银行",
)
COURIERS = (
    "中通快递",
    "圆通速递",
    "申通快递",
    "韵达快递",
    "顺丰速运",
    "极兔速递",
    "京东物流",
    "德邦快递",
    "邮政EMS",
)
HOTEL_CHAINS = (
    "汉庭酒店",
    "如家酒店",
    "锦江之星",
    "7天酒店",
    "格林豪泰",
    "维也纳酒店",
    "全季酒店",
    "城市便捷酒店",
)
FUEL_BRANDS = ("中国石化", "中国石油", "中化石油")
SURNAMES = tuple("王李张刘陈杨黄吴周徐孙沈朱钱胡姚潘邱")

BIG = "big"  # only for units with 100+ staff: a 股份有限公司 or a hospital is not a family workshop
SMALL = "small"  # only under 60 staff: sole traders (92…) and corner businesses
ANY = ""


class NameTemplate(NamedTuple):
    pattern: str
    credit_head: str
    size: str = ANY


T = NameTemplate

# A template repeated in a list is drawn more often.
UNIT_TEMPLATES: dict[str, tuple[NameTemplate, ...]] = {
    "garment": (
        T("湖州{p}{b}童装有限公司", "91"),
        T("湖州{p}{b}童装有限公司", "91"),
        T("湖州{b}服饰有限公司", "91"),
        T("湖州{p}{b}制衣有限公司", "91"),
        T("浙江{b}童装股份有限公司", "91", BIG),
        T("浙江{b}服饰集团有限公司", "91", BIG),
        T("{t}{b}童装厂", "92", SMALL),
        T("{t}{b}童装厂", "92", SMALL),
        T("{t}{b}服装加工厂", "92", SMALL),
        T("{t}{b}绣花厂", "92", SMALL),
        T("{p}{b}童装印花厂", "92", SMALL),
    ),
    "property": (
        T("{e}物业服务中心", "91"),
        T("{p}{e}物业服务中心", "91"),
        T("湖州{g}物业服务有限公司{e}项目部", "91"),
        T("{p}{e}物业管理处", "91"),
    ),
    "market": (
        T("{t}{g}广场", "91", BIG),
        T("{p}{s}{g}购物中心", "91", BIG),
        T("{p}{a}农贸市场", "91"),
        T("{p}{g}童装城", "91"),
        T("{p}{g}面辅料市场", "91"),
        T("湖州{p}{g}商贸有限公司", "91"),
        T("{p}{g}超市", "92", SMALL),
        T("{p}{a}{g}便利店", "92", SMALL),
    ),
    "hazchem": (
        T("湖州{g}化工有限公司", "91"),
        T("湖州{p}{g}染整有限公司", "91"),
        T("{p}{a}液化气供应站", "91"),
        T("湖州{g}涂料有限公司", "91"),
        T("湖州{p}{g}危险品仓储有限公司", "91"),
        T("湖州{g}气体有限公司", "91"),
    ),
    "finance": (
        T("{k}{p}支行", "91"),
        T("{k}{p}{s}支行", "91"),
        T("{k}{p}{a}分理处", "91"),
        T("财通证券{p}{s}营业部", "91"),
        T("湖州{p}{g}小额贷款有限公司", "91"),
    ),
    "education": (
        T("{t}中心幼儿园", "12"),
        T("{p}{a}幼儿园", "12"),
        T("{p}{b}双语幼儿园", "52", SMALL),
        T("{p}{a}小学", "12"),
        T("{p}实验小学{a}校区", "12"),
        T("{p}{a}中学", "12", BIG),
        T("湖州{p}{g}职业技能培训学校", "52"),
    ),
    "medical": (
        T("{t}卫生院", "12"),
        T("{p}{a}社区卫生服务站", "12"),
        T("湖州{p}{g}医院", "91"),
        T("湖州{g}康复医院", "52"),
        T("{p}{g}中医门诊部", "91"),
        T("湖州{p}{g}医院", "91", BIG),
        T("{p}{g}诊所", "92", SMALL),
        T("{p}{g}口腔门诊部", "91", SMALL),
        T("{g}大药房（{p}{s}店）", "91", SMALL),
    ),
    "lodging": (
        T("{h}（湖州{p}{s}店）", "91"),
        T("{p}{g}大酒店", "91"),
        T("{p}{g}宾馆", "92", SMALL),
        T("{p}{a}{g}民宿", "92", SMALL),
        T("{t}{g}旅馆", "92", SMALL),
    ),
    "logistics": (
        T("{c}{p}网点", "91"),
        T("{c}{p}{s}营业部", "91"),
        T("{c}{p}{a}分拨中心", "91", BIG),
        T("湖州{p}{g}物流有限公司", "91"),
        T("{p}{g}货运部", "92", SMALL),
        T("菜鸟驿站（{p}{e}店）", "92", SMALL),
    ),
    "entertainment": (
        T("{p}{g}大饭店", "91"),
        T("{p}{g}火锅店", "92", SMALL),
        T("{n}记面馆（{p}{s}店）", "92", SMALL),
        T("{p}{g}KTV", "91"),
        T("{p}{g}网咖", "92", SMALL),
        T("{p}{g}足浴店", "92", SMALL),
        T("{p}{g}酒吧", "92", SMALL),
        T("{p}{g}台球俱乐部", "92", SMALL),
        T("{p}{a}{g}烧烤店", "92", SMALL),
    ),
    "transport": (
        T("{f}{p}{s}加油站", "91"),
        T("{f}{p}{a}加油站", "91"),
        T("湖州{p}{g}汽车运输有限公司", "91"),
        T("湖州{g}出租汽车有限公司", "91"),
        T("{p}{g}驾驶员培训学校", "91"),
        T("{p}{a}公交首末站", "12", SMALL),
    ),
}

# Well-known names the town would be odd without; each is used once, by the first unit of its
# category in a Zhili station, before the templates take over.
ZHILI_LANDMARKS: dict[str, tuple[NameTemplate, ...]] = {
    "market": (
        T("织里镇吾悦广场", "91", BIG),
        T("中国织里童装城", "91", BIG),
        T("织里轻纺绣品城", "91", BIG),
    ),
    "logistics": (T("中通快递织里网点", "91"), T("圆通速递织里大港路营业部", "91")),
    "finance": (T("中国农业银行织里支行", "91"), T("浙江吴兴农村商业银行织里支行", "91")),
    "education": (T("织里镇中心幼儿园", "12"), T("织里实验小学", "12", BIG)),
    "property": (T("康泰小区物业服务中心", "91"),),
    "medical": (T("织里镇社区卫生服务中心", "12", BIG),),
    "garment": (T("湖州织里贝贝乐童装有限公司", "91", BIG),),
}

MEDIATION_TEAMS: tuple[tuple[str, str, str], ...] = (  # name, kind, station code
    ("平安大姐工作室", "volunteer", "zhibei"),
    ("老兵驿站", "veterans", "zhinan"),
    ("吴美丽工作室", "community", "zhidong"),
    ("织里律师调解团", "lawyers", "zhinan"),
)

MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)


# --- eco-policing: the 乔溇 joint station, aluminium smelters and their ash ----------------------

JOINT_ZONE_CODE = "qiaolou"
JOINT_ZONE_NAME = "乔溇联勤警务站核心区"
PARTNER_AGENCY = "苏州市公安局吴江分局"
# The core area of the 乔溇 eco-policing joint station on the south shore of Lake Tai, north of the
# town: (lat, lng) around 乔溇村, its north edge along the lake shore. 9.19 km² by polygon_area_km2.
JOINT_ZONE_POLYGON: tuple[tuple[float, float], ...] = (
    (30.9288, 120.2738),
    (30.9306, 120.2855),
    (30.9297, 120.2991),
    (30.9270, 120.3072),
    (30.9153, 120.3081),
    (30.9035, 120.3027),
    (30.9017, 120.2901),
    (30.9053, 120.2765),
    (30.9171, 120.2720),
)
JOINT_ZONE_STREETS = ("乔溇村太湖路", "乔溇港路", "义皋村滨湖路", "幻溇路")
# Industrial clusters where the other smelters sit: (name, lat, lng); all inside ZHILI_BOX.
SMELTER_CLUSTERS: tuple[tuple[str, float, float], ...] = (
    ("轧村工业区", 30.8680, 120.3040),
    ("大港工业园", 30.8670, 120.2540),
    ("漾西工业区", 30.8360, 120.3120),
)
SMELTER_TEMPLATES: tuple[NameTemplate, ...] = (
    T("湖州织里{g}铝业有限公司", "91"),
    T("湖州织里{g}铝业有限公司", "91"),
    T("湖州{g}铝业有限公司", "91"),
    T("湖州{p}{g}金属材料有限公司", "91"),
    T("湖州{g}铝材科技有限公司", "91"),
    T("湖州织里{g}有色金属制品有限公司", "91"),
    T("浙江{g}再生资源科技有限公司", "91", BIG),
)


class ProcessKind(NamedTuple):
    name: str
    coefficient: tuple[float, float]  # kg of aluminium ash per tonne of aluminium
    tonnes_per_day: tuple[float, float]  # typical daily output of a line


# Every smelter melts; some also refine, alloy, cast or recover metal from their own dross.
MELTING = ProcessKind("熔炼", (30.0, 50.0), (18.0, 55.0))
SMELTER_PROCESSES: tuple[ProcessKind, ...] = (
    ProcessKind("精炼", (20.0, 35.0), (12.0, 40.0)),
    ProcessKind("铝灰回收", (45.0, 60.0), (2.0, 8.0)),
    ProcessKind("合金配料", (20.0, 30.0), (8.0, 25.0)),
    ProcessKind("铸锭", (20.0, 28.0), (10.0, 35.0)),
)


class FacilityPlace(NamedTuple):
    name: str
    licence_no: str
    address: str
    in_district: bool
    capacity_t_per_year: float
    lat: float
    lng: float


DISPOSAL_FACILITIES: tuple[FacilityPlace, ...] = (
    FacilityPlace(
        "湖州织里绿源环保科技有限公司",
        "浙危废经第3305020017号",
        "湖州市吴兴区织里镇轧村工业区环园路8号",
        True,
        12_000,
        30.8745,
        120.3185,
    ),
    FacilityPlace(
        "湖州织里南港固废处置有限公司",
        "浙危废经第3305020031号",
        "湖州市吴兴区织里镇南环路766号",
        True,
        10_000,
        30.8065,
        120.2480,
    ),
    FacilityPlace(
        "浙江长兴金洲危废处置有限公司",
        "浙危废经第3305220045号",
        "湖州市长兴县李家巷镇金洲路199号",
        False,
        15_000,
        31.0130,
        119.9520,
    ),
    FacilityPlace(
        "安徽广德华源环保科技有限公司",
        "皖危废经第3418220012号",
        "安徽省宣城市广德市经济开发区华源路1号",
        False,
        20_000,
        30.8930,
        119.4170,
    ),
)
# (name, road transport licence, plate prefix): hazardous goods carriers of Huzhou and Wujiang.
CARRIERS: tuple[tuple[str, str, str], ...] = (
    ("湖州织里安达危险品运输有限公司", "浙交运管许可湖字330502000318号", "浙E"),
    ("湖州吴兴通途物流有限公司", "浙交运管许可湖字330502000457号", "浙E"),
    ("浙江顺安危险货物运输有限公司", "浙交运管许可湖字330500001026号", "浙E"),
    ("长兴恒运危险货物运输有限公司", "浙交运管许可湖字330522000233号", "浙E"),
    ("苏州吴江永通运输有限公司", "苏交运管许可苏字320509000871号", "苏E"),
)
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on Chinese plates

LAKE_INLETS = ("乔溇港", "义皋港", "幻溇港", "许溇港", "大钱港")
# Eco incidents: (kind, weight, templates). {n} a small count, {kg} kilos of fish, {t} tonnes,
# {river} one of LAKE_INLETS.
ECO_INCIDENTS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    (
        "fishing",
        0.45,
        (
            "太湖禁渔区内发现有人使用地笼网捕鱼，现场收缴地笼网{n}条",
            "{river}附近有人夜间驾驶无牌船只非法捕捞，查获渔获物{kg}公斤",
            "群众举报太湖岸边有人使用电瓶电鱼，民警赶到现场查获电鱼工具一套",
            "巡逻发现湖面有人布设丝网{n}张，已联合吴江警方收缴",
            "{river}口有人使用多钩多线垂钓，已劝离并开展禁渔宣传",
            "太湖大堤外侧有人撒网捕捞，涉嫌违反长江流域禁渔规定，已移交渔政部门",
        ),
    ),
    (
        "dumping",
        0.20,
        (
            "乔溇村农田边发现倾倒的灰色粉末状固废约{t}吨，疑似铝灰，已取样送检",
            "太湖大堤外侧河滩发现倾倒的工业固废，散发刺鼻气味，已固定证据",
            "{river}河道旁发现建筑垃圾倾倒，已通知属地清运",
            "夜间有货车在村道边倾倒不明废渣，群众拍下车牌后报警",
        ),
    ),
    (
        "sewage",
        0.15,
        (
            "{river}排口发现污水直排入河，水体发黑有异味",
            "一家小作坊向河道排放印染废水，河水呈蓝色，已通知生态环境部门",
            "群众反映{river}入湖口水面漂浮油污",
        ),
    ),
    (
        "burning",
        0.20,
        (
            "田间发现焚烧秸秆，烟雾较大，已扑灭并教育当事人",
            "厂区后院露天焚烧废旧布料边角料，已责令停止",
            "太湖边荒地有人焚烧垃圾，现场已处置",
        ),
    ),
)
PATROL_NOTES: dict[str, tuple[str, ...]] = {
    "patrol": (
        "联合吴江警方开展太湖沿岸巡逻，未发现异常",
        "对{river}、义皋港沿线开展禁渔巡查",
        "夜间联勤巡逻，检查停靠船只{n}艘",
        "联合渔政、吴江警方开展“清网”行动巡查",
        "巡查沿湖道路及堆场，核查运输车辆{n}辆",
    ),
    "persuasion": (
        "劝离在太湖大堤下野泳人员{n}名，现场开展防溺水宣传",
        "{river}口劝离戏水游客{n}名",
        "劝导在禁渔区垂钓、野泳人员{n}名离开",
    ),
    "rescue": (
        "{n}名游客在湖边滑倒落水，民警与吴江同事合力救起，均无大碍",
        "救助一艘因大风搁浅的渔船，船上{n}人安全上岸",
        "帮助在芦苇荡迷路的{n}名游客返回岸边",
    ),
}
# Spring Festival (春节) days, when the smelters shut for a week.
SPRING_FESTIVALS = (
    "2023-01-22",
    "2024-02-10",
    "2025-01-29",
    "2026-02-17",
    "2027-02-06",
    "2028-01-26",
    "2029-02-13",
    "2030-02-03",
    "2031-01-23",
    "2032-02-11",
)
