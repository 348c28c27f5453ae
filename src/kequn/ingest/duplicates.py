"""Corrupted duplicates of existing customers, with the ground truth, to measure resolution."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path

from kequn.customers.models import Address, Customer, Identity

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = (
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红建文辉力飞鹏宇浩凯晨欣怡婷雪琳晶颖佳慧"
)
# Characters people mistype for each other (same sound or similar shape).
CONFUSABLE = dict(
    zip(
        "伟芳娜静丽明华玉红文辉飞宇晨欣婷琳晶佳慧",
        "玮方那晶莉铭骅钰宏雯晖菲雨辰昕亭林精嘉惠",
        strict=True,
    )
)
CITIES = [("上海", "Shanghai"), ("北京", "Beijing"), ("广州", "Guangzhou"), ("深圳", "Shenzhen"),
          ("杭州", "Hangzhou"), ("成都", "Chengdu"), ("武汉", "Wuhan"), ("南京", "Nanjing"),
          ("西安", "Xi'an"), ("重庆", "Chongqing"), ("苏州", "Suzhou"), ("天津", "Tianjin")]  # fmt: skip
ROADS = [
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "胜利路",
    "南京路",
    "长江路",
    "黄河路",
    "新华路",
    "光明路",
    "东风路",
]
HEADER = ["id", "name", "phone", "email", "birthday", "city", "address"]


@dataclass
class Person:
    key: str
    name: str
    phone: str
    email: str
    birthday: date | None
    city: str
    address: str


def make_people(n: int, seed: int = 42) -> list[Person]:
    """Return n distinct synthetic people (a base set when no demo data is loaded)."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic test people, not secrets
    people, phones = [], set()
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(
            rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))
        )
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        while phone in phones:
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        phones.add(phone)
        birthday = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        city = rng.choice(CITIES)[0]
        address = f"{rng.choice(ROADS)}{rng.randrange(1, 999)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2800)}室"
        people.append(
            Person(f"base-{i}", name, phone, f"user{i}.{seed}@example.cn", birthday, city, address)
        )
    return people


def write_people(people: list[Person], path: Path) -> Path:
    """Write people as a customers import file (id, name, phone, email, birthday, city, address)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for p in people:
            writer.writerow([p.key, p.name, p.phone, p.email, p.birthday or "", p.city, p.address])
    return path


def load_people_from_db(limit: int | None = None) -> list[Person]:
    """Return existing surviving person customers (e.g. the demo data) as Person records."""
    qs = (
        Customer.objects.filter(merged_into__isnull=True, kind="person")
        .exclude(name="")
        .order_by("pk")
    )
    customers = list(qs[:limit] if limit else qs)
    ids = [c.pk for c in customers]
    contact: dict[int, dict[str, str]] = {}
    for customer_id, kind, value in Identity.objects.filter(
        customer_id__in=ids, kind__in=("phone", "email")
    ).values_list("customer_id", "kind", "value"):
        contact.setdefault(customer_id, {}).setdefault(kind, value)
    lines = dict(
        Address.objects.filter(customer_id__in=ids)
        .exclude(line="")
        .values_list("customer_id", "line")
    )
    return [
        Person(str(c.pk), c.name, contact.get(c.pk, {}).get("phone", "").removeprefix("+86"),
               contact.get(c.pk, {}).get("email", ""), c.birthday, c.city, lines.get(c.pk, ""))
        for c in customers
    ]  # fmt: skip


def _typo(name: str, rng: random.Random) -> str:
    chars = list(name)
    spots = [i for i, ch in enumerate(chars) if ch in CONFUSABLE and i > 0]
    if spots:
        i = rng.choice(spots)
        chars[i] = CONFUSABLE[chars[i]]
    elif len(chars) > 2:
        i = rng.randrange(1, len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _reformat_phone(phone: str, rng: random.Random) -> str:
    if not phone:
        return ""
    digits = phone[-11:]
    return rng.choice(
        [
            f"{digits[:3]} {digits[3:7]} {digits[7:]}",
            f"+86-{digits}",
            f"86 {digits[:3]}-{digits[3:7]}-{digits[7:]}",
            digits,
        ]
    )


def corrupt(person: Person, rng: random.Random, key: str) -> tuple[list[str], list[str]]:
    """Return a corrupted copy as a CSV row and the list of corruptions applied."""
    applied = []
    name, phone, email = person.name, person.phone, person.email
    birthday, city, address = person.birthday, person.city, person.address
    if rng.random() < 0.35:
        name, applied = _typo(name, rng), [*applied, "name typo"]
    if rng.random() < 0.2 and " " not in name:
        name, applied = " " + name.replace("", " ").strip() + " ", [*applied, "spaced name"]
    # Half the copies keep a strong identifier (found deterministically), half lose both.
    keep = rng.random() < 0.5
    if keep and rng.random() < 0.5:
        phone, email = _reformat_phone(phone, rng), ""
        applied.append("reformatted phone")
    elif keep:
        phone, email = "", email.upper()
        applied.append("upper-case email")
    else:
        phone, email = "", ""
        applied.append("no phone or email")
    if birthday and birthday.day <= 12 and birthday.day != birthday.month and rng.random() < 0.25:
        birthday = date(birthday.year, birthday.day, birthday.month)
        applied.append("day/month swapped")
    if rng.random() < 0.1 and address:
        birthday, applied = None, [*applied, "birthday missing"]
    if rng.random() < 0.3:
        city = dict(CITIES).get(city.removesuffix("市"), city)
        applied.append("city in pinyin")
    if rng.random() < 0.2:
        address, applied = "", [*applied, "address missing"]
    text_birthday = ""
    if birthday:
        text_birthday = rng.choice([birthday.isoformat(), f"{birthday.year}/{birthday.month}/{birthday.day}",
                                    f"{birthday.year}年{birthday.month}月{birthday.day}日"])  # fmt: skip
    return [key, name, phone, email, text_birthday, city, address], applied


def emit_duplicates(people: list[Person], out: Path, truth: Path, n: int, seed: int = 7) -> int:
    """Write n corrupted duplicates of randomly chosen people and the truth file; return n."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic test people, not secrets
    chosen = rng.sample(people, min(n, len(people)))
    with (
        open(out, "w", encoding="utf-8", newline="") as fh,
        open(truth, "w", encoding="utf-8", newline="") as th,
    ):
        writer, truth_writer = csv.writer(fh), csv.writer(th)
        writer.writerow(HEADER)
        truth_writer.writerow(["duplicate_id", "original", "corruptions"])
        for i, person in enumerate(chosen):
            row, applied = corrupt(person, rng, f"dup-{i}")
            writer.writerow(row)
            truth_writer.writerow([row[0], person.key, "; ".join(applied)])
    return len(chosen)


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int


def _pairs(groups: dict[object, list[str]]) -> set[frozenset]:
    return {frozenset(p) for members in groups.values() for p in combinations(sorted(members), 2)}


def evaluate(
    people: list[Person], truth: Path, duplicate_system: str, base_system: str | None
) -> Scores:
    """Compare where each input row ended up with the truth file (pairwise precision/recall/F1)."""
    parent = dict(Customer.objects.exclude(merged_into=None).values_list("pk", "merged_into_id"))

    def root(pk: int | None) -> int | None:
        while pk in parent:
            pk = parent[pk]
        return pk

    def holder(system: str, key: str) -> int | None:
        # Identities move with every merge, so the holder of a record's id is where it ended up.
        found = (
            Identity.objects.with_value(key)
            .filter(kind="external", system=system)
            .values_list("customer_id", flat=True)
            .first()
        )
        return root(found)

    predicted: dict[object, list[str]] = {}
    actual: dict[object, list[str]] = {}
    for person in people:
        where = holder(base_system, person.key) if base_system else root(int(person.key))
        predicted.setdefault(where, []).append(f"b:{person.key}")
        actual.setdefault(person.key, []).append(f"b:{person.key}")
    with open(truth, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            where = holder(duplicate_system, row["duplicate_id"])
            predicted.setdefault(where or f"missing:{row['duplicate_id']}", []).append(
                f"d:{row['duplicate_id']}"
            )
            actual.setdefault(row["original"], []).append(f"d:{row['duplicate_id']}")
    true_pairs, predicted_pairs = _pairs(actual), _pairs(predicted)
    hits = len(true_pairs & predicted_pairs)
    precision = hits / len(predicted_pairs) if predicted_pairs else 1.0
    recall = hits / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, len(true_pairs), len(predicted_pairs))
