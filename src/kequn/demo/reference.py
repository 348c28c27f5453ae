"""Static reference tables for the demo data: cities, names, catalogue, channels, tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class City:
    country: str
    province: str
    city: str
    weight: float  # relative share of customers, roughly urban population in millions
    store: str = ""  # store code when the brand has a store there
    districts: tuple[str, ...] = ("城区",)
    postcode: str = ""


# Weights follow urban population loosely, inflated for tier-1 cities where a phone brand
# sells more per head.
CITIES: tuple[City, ...] = (
    City("CN", "上海", "上海", 30, "store-sh", ("浦东新区", "徐汇区", "静安区", "闵行区"), "200"),
    City("CN", "北京", "北京", 28, "store-bj", ("朝阳区", "海淀区", "东城区", "丰台区"), "100"),
    City("CN", "广东", "广州", 20, "store-gz", ("天河区", "越秀区", "海珠区", "番禺区"), "510"),
    City("CN", "广东", "深圳", 22, "store-sz", ("南山区", "福田区", "宝安区", "龙岗区"), "518"),
    City("CN", "浙江", "杭州", 14, "store-hz", ("西湖区", "滨江区", "余杭区", "拱墅区"), "310"),
    City("CN", "四川", "成都", 16, "store-cd", ("武侯区", "锦江区", "高新区", "成华区"), "610"),
    City("CN", "湖北", "武汉", 12, "store-wh", ("武昌区", "江汉区", "洪山区"), "430"),
    City("CN", "江苏", "南京", 9, "store-nj", ("鼓楼区", "玄武区", "江宁区"), "210"),
    City("CN", "陕西", "西安", 11, "store-xa", ("雁塔区", "碑林区", "未央区"), "710"),
    City("CN", "重庆", "重庆", 14, "store-cq", ("渝中区", "江北区", "渝北区"), "400"),
    City("CN", "江苏", "苏州", 10, "store-su", ("姑苏区", "工业园区", "吴中区"), "215"),
    City("CN", "天津", "天津", 10, "store-tj", ("和平区", "南开区", "河西区"), "300"),
    City("CN", "河南", "郑州", 9, "store-zz", ("金水区", "中原区", "二七区"), "450"),
    City("CN", "湖南", "长沙", 8, "store-cs", ("岳麓区", "芙蓉区", "天心区"), "410"),
    City("CN", "山东", "青岛", 7, "store-qd", ("市南区", "崂山区", "黄岛区"), "266"),
    City("CN", "浙江", "宁波", 6, "", ("鄞州区", "海曙区"), "315"),
    City("CN", "广东", "东莞", 7, "", ("南城街道", "松山湖"), "523"),
    City("CN", "广东", "佛山", 6, "", ("禅城区", "顺德区"), "528"),
    City("CN", "安徽", "合肥", 7, "", ("蜀山区", "包河区"), "230"),
    City("CN", "辽宁", "沈阳", 6, "", ("和平区", "浑南区"), "110"),
    City("CN", "山东", "济南", 6, "", ("历下区", "市中区"), "250"),
    City("CN", "福建", "厦门", 4, "", ("思明区", "湖里区"), "361"),
    City("CN", "福建", "福州", 5, "", ("鼓楼区", "仓山区"), "350"),
    City("CN", "云南", "昆明", 5, "", ("五华区", "盘龙区"), "650"),
    City("CN", "黑龙江", "哈尔滨", 5, "", ("南岗区", "道里区"), "150"),
    City("CN", "吉林", "长春", 4, "", ("朝阳区", "南关区"), "130"),
    City("CN", "河北", "石家庄", 5, "", ("长安区", "裕华区"), "050"),
    City("CN", "广西", "南宁", 4, "", ("青秀区", "西乡塘区"), "530"),
    City("CN", "江西", "南昌", 4, "", ("东湖区", "红谷滩区"), "330"),
    City("CN", "贵州", "贵阳", 3, "", ("云岩区", "观山湖区"), "550"),
    City("CN", "山西", "太原", 3, "", ("小店区", "迎泽区"), "030"),
    City("CN", "新疆", "乌鲁木齐", 2, "", ("天山区", "沙依巴克区"), "830"),
    City("CN", "海南", "海口", 2, "", ("龙华区", "美兰区"), "570"),
    City("SG", "", "Singapore", 3, "store-sg", ("Orchard", "Tampines", "Jurong"), ""),
    City("MY", "Kuala Lumpur", "Kuala Lumpur", 2, "store-kl", ("Bukit Bintang", "Cheras"), "50"),
    City("HK", "", "香港", 3, "store-hk", ("九龍", "銅鑼灣", "沙田"), ""),
)

FOREIGN_COUNTRIES = ("SG", "MY", "HK")

# (code, name, kind, city index or -1). Stores are appended from CITIES.
ONLINE_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("online-shop", "官方商城", "online"),
    ("app", "云帆 App", "app"),
    ("tmall", "天猫旗舰店", "marketplace"),
    ("jd", "京东自营", "marketplace"),
)
ONLINE_CHANNEL_WEIGHTS = (0.30, 0.28, 0.24, 0.18)

STORE_NAMES = {
    "store-sh": "云帆体验店 · 上海南京西路",
    "store-bj": "云帆体验店 · 北京三里屯",
    "store-gz": "云帆体验店 · 广州天河路",
    "store-sz": "云帆体验店 · 深圳万象天地",
    "store-hz": "云帆体验店 · 杭州湖滨",
    "store-cd": "云帆体验店 · 成都春熙路",
    "store-wh": "云帆体验店 · 武汉楚河汉街",
    "store-nj": "云帆体验店 · 南京新街口",
    "store-xa": "云帆体验店 · 西安小寨",
    "store-cq": "云帆体验店 · 重庆解放碑",
    "store-su": "云帆体验店 · 苏州观前街",
    "store-tj": "云帆体验店 · 天津滨江道",
    "store-zz": "云帆体验店 · 郑州二七广场",
    "store-cs": "云帆体验店 · 长沙五一广场",
    "store-qd": "云帆体验店 · 青岛台东",
    "store-sg": "Yunfan Store · Orchard Road",
    "store-kl": "Yunfan Store · Pavilion KL",
    "store-hk": "雲帆體驗店 · 銅鑼灣",
}

# Surname, pinyin, relative frequency (per cent of the population, rounded).
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "wang", 7.1),
    ("李", "li", 7.0),
    ("张", "zhang", 6.7),
    ("刘", "liu", 5.4),
    ("陈", "chen", 4.5),
    ("杨", "yang", 3.1),
    ("黄", "huang", 2.4),
    ("赵", "zhao", 2.3),
    ("吴", "wu", 2.0),
    ("周", "zhou", 1.9),
    ("徐", "xu", 1.3),
    ("孙", "sun", 1.3),
    ("马", "ma", 1.2),
    ("朱", "zhu", 1.2),
    ("胡", "hu", 1.1),
    ("郭", "guo", 1.1),
    ("何", "he", 1.0),
    ("林", "lin", 0.9),
    ("罗", "luo", 0.9),
    ("高", "gao", 0.9),
    ("郑", "zheng", 0.8),
    ("梁", "liang", 0.8),
    ("谢", "xie", 0.7),
    ("宋", "song", 0.6),
    ("唐", "tang", 0.6),
    ("许", "xu", 0.6),
    ("韩", "han", 0.6),
    ("冯", "feng", 0.5),
    ("邓", "deng", 0.5),
    ("曹", "cao", 0.5),
    ("彭", "peng", 0.5),
    ("曾", "zeng", 0.5),
    ("肖", "xiao", 0.5),
    ("田", "tian", 0.4),
    ("董", "dong", 0.4),
    ("袁", "yuan", 0.4),
    ("潘", "pan", 0.4),
    ("于", "yu", 0.4),
    ("蒋", "jiang", 0.4),
    ("蔡", "cai", 0.4),
    ("余", "yu", 0.4),
    ("杜", "du", 0.4),
    ("叶", "ye", 0.4),
    ("程", "cheng", 0.4),
    ("苏", "su", 0.3),
    ("魏", "wei", 0.3),
    ("吕", "lv", 0.3),
    ("丁", "ding", 0.3),
    ("任", "ren", 0.3),
    ("沈", "shen", 0.3),
    ("姚", "yao", 0.3),
    ("卢", "lu", 0.3),
    ("姜", "jiang", 0.3),
    ("崔", "cui", 0.3),
    ("钟", "zhong", 0.3),
    ("谭", "tan", 0.3),
    ("陆", "lu", 0.3),
    ("汪", "wang", 0.3),
    ("范", "fan", 0.2),
    ("金", "jin", 0.2),
    ("欧阳", "ouyang", 0.05),
    ("司马", "sima", 0.01),
)

# Given-name characters: (character, pinyin, leaning: "m", "f" or "n" for neutral).
GIVEN_CHARS: tuple[tuple[str, str, str], ...] = (
    ("伟", "wei", "m"),
    ("强", "qiang", "m"),
    ("磊", "lei", "m"),
    ("军", "jun", "m"),
    ("勇", "yong", "m"),
    ("杰", "jie", "m"),
    ("涛", "tao", "m"),
    ("斌", "bin", "m"),
    ("超", "chao", "m"),
    ("明", "ming", "m"),
    ("刚", "gang", "m"),
    ("平", "ping", "n"),
    ("辉", "hui", "m"),
    ("鹏", "peng", "m"),
    ("浩", "hao", "m"),
    ("宇", "yu", "m"),
    ("俊", "jun", "m"),
    ("峰", "feng", "m"),
    ("建", "jian", "m"),
    ("国", "guo", "m"),
    ("志", "zhi", "m"),
    ("博", "bo", "m"),
    ("凯", "kai", "m"),
    ("昊", "hao", "m"),
    ("子", "zi", "n"),
    ("文", "wen", "n"),
    ("嘉", "jia", "n"),
    ("一", "yi", "n"),
    ("晨", "chen", "n"),
    ("雨", "yu", "n"),
    ("思", "si", "n"),
    ("欣", "xin", "f"),
    ("芳", "fang", "f"),
    ("娜", "na", "f"),
    ("敏", "min", "f"),
    ("静", "jing", "f"),
    ("丽", "li", "f"),
    ("艳", "yan", "f"),
    ("婷", "ting", "f"),
    ("雪", "xue", "f"),
    ("慧", "hui", "f"),
    ("颖", "ying", "f"),
    ("琳", "lin", "f"),
    ("佳", "jia", "f"),
    ("怡", "yi", "f"),
    ("萱", "xuan", "f"),
    ("涵", "han", "f"),
    ("梓", "zi", "n"),
    ("诗", "shi", "f"),
    ("玲", "ling", "f"),
    ("秀", "xiu", "f"),
    ("霞", "xia", "f"),
    ("燕", "yan", "f"),
    ("倩", "qian", "f"),
    ("悦", "yue", "f"),
    ("瑶", "yao", "f"),
    ("晓", "xiao", "n"),
    ("天", "tian", "m"),
    ("泽", "ze", "m"),
    ("轩", "xuan", "m"),
)

FOREIGN_GIVEN: tuple[tuple[str, str], ...] = (
    ("Wei Ming", "m"),
    ("Jun Jie", "m"),
    ("Rajesh", "m"),
    ("Ahmad", "m"),
    ("Daniel", "m"),
    ("Marcus", "m"),
    ("Ryan", "m"),
    ("Kumar", "m"),
    ("Hafiz", "m"),
    ("Jason", "m"),
    ("Mei Ling", "f"),
    ("Hui Min", "f"),
    ("Nurul", "f"),
    ("Priya", "f"),
    ("Emily", "f"),
    ("Rachel", "f"),
    ("Siti", "f"),
    ("Grace", "f"),
    ("Michelle", "f"),
    ("Aisyah", "f"),
)
FOREIGN_SURNAMES: tuple[str, ...] = (
    "Tan",
    "Lim",
    "Lee",
    "Ng",
    "Wong",
    "Chan",
    "Ong",
    "Goh",
    "Chua",
    "Koh",
    "Teo",
    "Cheung",
    "Ho",
    "Lau",
    "Abdullah",
    "Rahman",
    "Singh",
    "Nair",
    "Yap",
    "Chong",
)

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_BAND_LIMITS = (25, 35, 45, 55)  # upper bounds (exclusive) of all bands but the last
INCOME_BANDS = ("<5k", "5k-10k", "10k-20k", "20k-50k", "50k+")  # monthly, CNY
INCOME_WEIGHTS = (0.22, 0.35, 0.26, 0.13, 0.04)
OCCUPATIONS = (
    "学生",
    "公司职员",
    "工程师",
    "程序员",
    "教师",
    "医生",
    "护士",
    "公务员",
    "销售",
    "设计师",
    "个体经营",
    "自由职业",
    "金融从业者",
    "退休",
    "产品经理",
)
INDUSTRIES = ("制造业", "零售", "金融", "教育", "医疗", "物流", "互联网", "餐饮", "建筑", "咨询")
COMPANY_WORDS = (
    "瑞达",
    "华信",
    "鼎盛",
    "博远",
    "恒通",
    "星辰",
    "立成",
    "宏图",
    "嘉禾",
    "安泰",
    "天合",
    "中科",
    "云启",
    "锦程",
    "聚力",
    "万象",
    "远航",
    "晨光",
    "新域",
    "和弘",
)
COMPANY_KINDS = ("科技", "贸易", "信息技术", "实业", "电子", "网络科技", "物流", "商贸")
CONTACT_TITLES = ("采购经理", "IT 主管", "行政经理", "总经理", "财务主管", "办公室主任")
ROADS = (
    "人民路",
    "中山路",
    "解放路",
    "建设路",
    "和平路",
    "长江路",
    "新华路",
    "文化路",
    "科技路",
    "创业大道",
    "滨江大道",
    "学院路",
    "东风路",
    "胜利路",
    "光明街",
)
FOREIGN_ROADS = ("Orchard Road", "Jalan Ampang", "Nathan Road", "Jalan Bukit", "Queen's Road")

EMAIL_DOMAINS_CN = (
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "foxmail.com",
    "gmail.com",
    "outlook.com",
    "139.com",
)
EMAIL_WEIGHTS_CN = (0.30, 0.25, 0.10, 0.06, 0.07, 0.08, 0.08, 0.06)
EMAIL_DOMAINS_FOREIGN = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com")
EMAIL_WEIGHTS_FOREIGN = (0.45, 0.2, 0.12, 0.15, 0.08)

# Mobile number prefixes that phonenumbers accepts as valid (E.164 without the +).
PHONE_PREFIXES = {
    "CN": tuple(
        f"86{p}"
        for p in (
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
            "176",
            "177",
            "178",
            "180",
            "181",
            "182",
            "183",
            "185",
            "186",
            "187",
            "188",
            "189",
            "198",
            "199",
        )
    ),
    "SG": ("658", "659"),
    "MY": ("6012", "6013", "6016", "6017", "6019"),
    "HK": ("8525", "8526", "8529"),
}
# Digits after the prefix, so that every number has the national length.
PHONE_SUFFIX_DIGITS = {"CN": 8, "SG": 7, "MY": 7, "HK": 7}

SOURCE_CHANNELS = ("online", "app", "tmall", "jd", "store", "wechat", "referral")

TAG_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "来源": (
        "Where the customer first came from",
        ("官网", "门店", "天猫", "京东", "小程序", "线下活动"),
    ),
    "兴趣": (
        "Interests seen in browsing and purchases",
        ("摄影", "游戏", "运动健康", "商务办公", "影音娱乐", "数码极客"),
    ),
    "价值": ("Hand-kept value grade", ("高价值", "潜力", "普通", "沉睡")),
}

CONSENT_CHANNELS = ("email", "sms", "phone", "wechat")
CONSENT_PURPOSES = ("marketing", "service")
CONSENT_SOURCES = ("注册", "商城结账", "门店登记", "App 设置", "小程序授权")
WITHDRAW_SOURCES = ("退订链接", "App 内撤回", "客服来电")

PAGES: tuple[tuple[str, str], ...] = (
    ("首页", "/"),
    ("手机", "/phones"),
    ("配件", "/accessories"),
    ("以旧换新", "/trade-in"),
    ("活动页", "/campaign"),
    ("购物车", "/cart"),
    ("帮助中心", "/help"),
)
SCREENS = ("Home", "Category", "ProductDetail", "Cart", "Me", "Orders")

# Chinese New Year's day, for the Spring Festival shopping peak (three weeks before it).
SPRING_FESTIVAL = {
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}

# Category tree: (code, name, parent code).
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("phones", "手机 Phones", ""),
    ("phones-flagship", "旗舰 Flagship", "phones"),
    ("phones-mid", "中端 Mid-range", "phones"),
    ("phones-entry", "入门 Entry", "phones"),
    ("tablets", "平板 Tablets", ""),
    ("accessories", "配件 Accessories", ""),
    ("acc-cases", "保护壳 Cases", "accessories"),
    ("acc-chargers", "充电器 Chargers", "accessories"),
    ("acc-cables", "数据线 Cables", "accessories"),
    ("acc-earphones", "耳机 Earphones", "accessories"),
    ("wearables", "穿戴 Wearables", ""),
    ("wear-watches", "手表 Watches", "wearables"),
    ("wear-bands", "手环 Bands", "wearables"),
    ("services", "服务 Services", ""),
    ("svc-care", "延保 Care plans", "services"),
    ("svc-tradein", "以旧换新 Trade-in", "services"),
)


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    brand: str
    category: str
    price: int  # CNY yuan
    consumable: bool
    group: str  # sampling group: flagship, mid, entry, tablet, wearable, accessory, service
    popularity: float
    active: bool = True


def build_catalogue() -> list[ProductSpec]:
    """Return the ~150 demo SKUs with prices in CNY."""
    items: list[ProductSpec] = []
    colours = (("BK", "曜石黑"), ("WH", "月光白"), ("BL", "远峰蓝"))
    for gen, active in ((5, False), (6, True)):
        for variant, base in (("", 4999), (" Pro", 5999), (" Pro Max", 6999), (" Ultra", 7999)):
            for storage, extra in (("256G", 0), ("512G", 1000), ("1T", 2000)):
                if variant == "" and storage == "1T":
                    continue
                code = variant.strip().replace(" ", "").upper() or "STD"
                pop = (1.6 if storage == "256G" else 1.0) * (1.4 if active else 0.6)
                items.append(
                    ProductSpec(
                        f"YF-X{gen}-{code}-{storage}",
                        f"云帆 X{gen}{variant} {storage}",
                        "云帆",
                        "phones-flagship",
                        base + extra - (0 if active else 800),
                        False,
                        "flagship",
                        pop,
                        active,
                    )
                )
    for gen in (12, 13):
        for variant, base in (("", 1999), (" Pro", 2499), (" Turbo", 2799)):
            for storage, extra in (("128G", 0), ("256G", 300)):
                pop = (2.0 if storage == "128G" else 1.2) * (1.5 if gen == 13 else 0.7)
                code = variant.strip().upper() or "STD"
                items.append(
                    ProductSpec(
                        f"YF-N{gen}-{code}-{storage}",
                        f"云帆 Note {gen}{variant} {storage}",
                        "云帆",
                        "phones-mid",
                        base + extra,
                        False,
                        "mid",
                        pop,
                        gen == 13,
                    )
                )
    for model, price in (("A3", 799), ("A3s", 899), ("A5", 999), ("A5 Plus", 1199), ("A7", 1399)):
        for storage, extra in (("64G", 0), ("128G", 200)):
            items.append(
                ProductSpec(
                    f"YF-{model.replace(' ', '')}-{storage}",
                    f"云帆 {model} {storage}",
                    "云帆",
                    "phones-entry",
                    price + extra,
                    False,
                    "entry",
                    1.5 if storage == "64G" else 1.0,
                )
            )
    for model, price in (("Pad 6", 2499), ("Pad 6 Pro", 3499), ("Pad SE", 1299)):
        for storage, extra in (("128G", 0), ("256G", 400)):
            items.append(
                ProductSpec(
                    f"YF-{model.replace(' ', '')}-{storage}",
                    f"云帆 {model} {storage}",
                    "云帆",
                    "tablets",
                    price + extra,
                    False,
                    "tablet",
                    1.0,
                )
            )
    for model, price in (("Watch 4", 1499), ("Watch 4 Pro", 2299), ("Watch GT", 999)):
        for code, colour in colours[:2]:
            items.append(
                ProductSpec(
                    f"YF-{model.replace(' ', '')}-{code}",
                    f"云帆 {model} {colour}",
                    "云帆",
                    "wear-watches",
                    price,
                    False,
                    "wearable",
                    1.0,
                )
            )
    for model, price in (("Band 8", 249), ("Band 8 NFC", 299), ("Band 9", 299)):
        items.append(
            ProductSpec(
                f"YF-{model.replace(' ', '')}",
                f"云帆手环 {model[5:]}",
                "云帆",
                "wear-bands",
                price,
                False,
                "wearable",
                1.5,
            )
        )
    phone_models = ["X6", "X6 Pro", "X6 Pro Max", "X6 Ultra", "Note 13", "Note 13 Pro", "A5", "A7"]
    for model in phone_models:
        for kind, price in (("硅胶保护壳", 79), ("素皮保护壳", 129), ("钢化膜", 39)):
            for code, colour in colours[:2] if kind != "钢化膜" else (("CL", "高清"),):
                items.append(
                    ProductSpec(
                        f"ACC-CASE-{model.replace(' ', '')}-{kind[:2]}-{code}".replace("硅胶", "SI")
                        .replace("素皮", "LE")
                        .replace("钢化", "GL"),
                        f"{model} {kind} {colour}",
                        "云帆",
                        "acc-cases",
                        price,
                        True,
                        "accessory",
                        1.2 if kind == "钢化膜" else 0.8,
                    )
                )
    for name, price in (
        ("20W 快充头", 59),
        ("33W 快充头", 79),
        ("67W 快充头", 129),
        ("120W 快充套装", 199),
        ("15W 无线充电板", 149),
        ("10000mAh 移动电源", 129),
        ("20000mAh 移动电源", 199),
        ("车载快充", 89),
    ):
        items.append(
            ProductSpec(
                f"ACC-CHG-{len(items):03d}",
                name,
                "云帆",
                "acc-chargers",
                price,
                False,
                "accessory",
                1.0,
            )
        )
    for name, price in (
        ("USB-C 数据线 1m", 29),
        ("USB-C 数据线 2m", 39),
        ("USB-C to C 6A", 49),
        ("编织数据线 1.5m", 59),
        ("三合一数据线", 45),
        ("Lightning 数据线", 39),
    ):
        items.append(
            ProductSpec(
                f"ACC-CBL-{len(items):03d}",
                name,
                "云帆",
                "acc-cables",
                price,
                True,
                "accessory",
                1.2,
            )
        )
    for name, price in (
        ("云帆 Buds 3", 399),
        ("云帆 Buds 3 Pro", 699),
        ("云帆 Buds SE", 199),
        ("云帆 头戴式降噪耳机", 999),
        ("有线耳机 Type-C", 49),
    ):
        items.append(
            ProductSpec(
                f"ACC-EAR-{len(items):03d}",
                name,
                "云帆",
                "acc-earphones",
                price,
                False,
                "accessory",
                1.0,
            )
        )
    for tier, base in (("旗舰", 399), ("中端", 199), ("入门", 99), ("平板", 249), ("穿戴", 99)):
        for years, factor in (("1年", 1.0), ("2年", 1.7)):
            items.append(
                ProductSpec(
                    f"SVC-CARE-{len(items):03d}",
                    f"云帆 Care+ {tier}{years}延保",
                    "云帆 Care",
                    "svc-care",
                    int(base * factor),
                    True,
                    "service",
                    1.0,
                )
            )
        items.append(
            ProductSpec(
                f"SVC-SCR-{len(items):03d}",
                f"{tier}碎屏保障 1年",
                "云帆 Care",
                "svc-care",
                int(base * 0.6),
                True,
                "service",
                0.8,
            )
        )
    for name, price in (
        ("以旧换新 · 旧机检测", 0),
        ("以旧换新 · 上门回收", 29),
        ("以旧换新 · 数据迁移", 49),
        ("以旧换新 · 门店回收", 0),
    ):
        items.append(
            ProductSpec(
                f"SVC-TI-{len(items):03d}",
                name,
                "云帆 Care",
                "svc-tradein",
                price,
                False,
                "service",
                0.5,
            )
        )
    return items


# Sampling groups in a fixed order (indexes are used in arrays).
GROUPS = ("flagship", "mid", "entry", "tablet", "wearable", "accessory", "service")
