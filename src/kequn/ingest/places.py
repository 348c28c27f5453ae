"""Chinese provinces and major cities with their pinyin names, to store one spelling of each."""

from __future__ import annotations

import re
import unicodedata

# canonical name | short name | pinyin | ISO 3166-2:CN code
_PROVINCES = """
北京市|北京|Beijing|BJ
天津市|天津|Tianjin|TJ
河北省|河北|Hebei|HE
山西省|山西|Shanxi|SX
内蒙古自治区|内蒙古|Nei Mongol,Inner Mongolia|NM
辽宁省|辽宁|Liaoning|LN
吉林省|吉林|Jilin|JL
黑龙江省|黑龙江|Heilongjiang|HL
上海市|上海|Shanghai|SH
江苏省|江苏|Jiangsu|JS
浙江省|浙江|Zhejiang|ZJ
安徽省|安徽|Anhui|AH
福建省|福建|Fujian|FJ
江西省|江西|Jiangxi|JX
山东省|山东|Shandong|SD
河南省|河南|Henan|HA
湖北省|湖北|Hubei|HB
湖南省|湖南|Hunan|HN
广东省|广东|Guangdong|GD
广西壮族自治区|广西|Guangxi|GX
海南省|海南|Hainan|HI
重庆市|重庆|Chongqing|CQ
四川省|四川|Sichuan|SC
贵州省|贵州|Guizhou|GZ
云南省|云南|Yunnan|YN
西藏自治区|西藏|Xizang,Tibet|XZ
陕西省|陕西|Shaanxi|SN
甘肃省|甘肃|Gansu|GS
青海省|青海|Qinghai|QH
宁夏回族自治区|宁夏|Ningxia|NX
新疆维吾尔自治区|新疆|Xinjiang|XJ
台湾省|台湾|Taiwan|TW
香港特别行政区|香港|Hong Kong,Hongkong|HK
澳门特别行政区|澳门|Macau,Macao|MO
"""

# canonical city | pinyin | province short name
_CITIES = """
北京市|Beijing|北京
天津市|Tianjin|天津
上海市|Shanghai|上海
重庆市|Chongqing|重庆
石家庄市|Shijiazhuang|河北
唐山市|Tangshan|河北
太原市|Taiyuan|山西
呼和浩特市|Hohhot,Huhehaote|内蒙古
沈阳市|Shenyang|辽宁
大连市|Dalian|辽宁
长春市|Changchun|吉林
哈尔滨市|Harbin,Haerbin|黑龙江
南京市|Nanjing|江苏
苏州市|Suzhou|江苏
无锡市|Wuxi|江苏
常州市|Changzhou|江苏
南通市|Nantong|江苏
杭州市|Hangzhou|浙江
宁波市|Ningbo|浙江
温州市|Wenzhou|浙江
绍兴市|Shaoxing|浙江
金华市|Jinhua|浙江
合肥市|Hefei|安徽
福州市|Fuzhou|福建
厦门市|Xiamen|福建
泉州市|Quanzhou|福建
南昌市|Nanchang|江西
济南市|Jinan|山东
青岛市|Qingdao|山东
烟台市|Yantai|山东
郑州市|Zhengzhou|河南
洛阳市|Luoyang|河南
武汉市|Wuhan|湖北
长沙市|Changsha|湖南
广州市|Guangzhou|广东
深圳市|Shenzhen|广东
东莞市|Dongguan|广东
佛山市|Foshan|广东
珠海市|Zhuhai|广东
惠州市|Huizhou|广东
南宁市|Nanning|广西
桂林市|Guilin|广西
海口市|Haikou|海南
三亚市|Sanya|海南
成都市|Chengdu|四川
贵阳市|Guiyang|贵州
昆明市|Kunming|云南
拉萨市|Lhasa,Lasa|西藏
西安市|Xi'an,Xian|陕西
兰州市|Lanzhou|甘肃
西宁市|Xining|青海
银川市|Yinchuan|宁夏
乌鲁木齐市|Urumqi,Wulumuqi|新疆
台北市|Taipei|台湾
香港|Hong Kong,Hongkong|香港
澳门|Macau,Macao|澳门
"""


def _key(text: str) -> str:
    # Lower-case ASCII without spaces, apostrophes or hyphens, so "Xi'an" == "xian".
    return re.sub(r"[\s'’\-_.]", "", unicodedata.normalize("NFKC", text)).lower()


def _build() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    provinces: dict[str, str] = {}
    short_of: dict[str, str] = {}
    for line in _PROVINCES.strip().splitlines():
        canonical, short, pinyins, code = line.split("|")
        short_of[short] = canonical
        names = [canonical, short, code, f"CN-{code}", *pinyins.split(",")]
        names += [p + " Sheng" for p in pinyins.split(",")] + [
            p + " Shi" for p in pinyins.split(",")
        ]
        for name in names:
            provinces[_key(name)] = canonical
    cities: dict[str, str] = {}
    city_province: dict[str, str] = {}
    for line in _CITIES.strip().splitlines():
        canonical, pinyins, province = line.split("|")
        short = canonical.removesuffix("市")
        for name in [
            canonical,
            short,
            *pinyins.split(","),
            *(p + " Shi" for p in pinyins.split(",")),
        ]:
            cities[_key(name)] = canonical
        city_province[canonical] = short_of[province]
    return provinces, cities, city_province


PROVINCES, CITIES, CITY_PROVINCE = _build()


def normalize_province(value: str) -> str:
    """Return the canonical province name (上海 / Shanghai / SH → 上海市), or the folded input."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    return PROVINCES.get(_key(text), text) if text else ""


def normalize_city(value: str) -> str:
    """Return the canonical city name (深圳 / Shenzhen → 深圳市), or the folded input."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    return CITIES.get(_key(text), text) if text else ""


def get_province_of_city(city: str) -> str:
    """Return the canonical province of a known canonical city, or ""."""
    return CITY_PROVINCE.get(city, "")
