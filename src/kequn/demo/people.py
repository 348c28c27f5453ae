"""Demo people and their profile rows: customers, identities, contacts, addresses, consents, tags."""

from __future__ import annotations

from datetime import date

import numpy as np

from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
)
from kequn.db import Column, NullableInts, TableData, Timestamps
from kequn.demo import reference as ref
from kequn.demo.context import (
    BEHAVIOURS,
    COMPANY_SHARE,
    DEMO_SYSTEM,
    HISTORY_DAYS,
    PERSON_SHARES,
    Context,
    cat,
    draw,
    draw_seconds_of_day,
    scramble,
    to_utc_seconds,
)
from kequn.security.keyring.services import blind_indexes, encrypt_many


def draw_people(ctx: Context, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw who the customers are: kind, place, behaviour, names, demographics."""
    ids = ctx.take_ids(Customer, n)
    is_company = rng.random(n) < COMPANY_SHARE
    city = draw(rng, ctx.city_weights, n)
    country = ctx.city_country[city]
    foreign = country != "CN"
    behaviour = draw(rng, PERSON_SHARES, n)
    behaviour[is_company] = BEHAVIOURS.index("b2b")
    male = rng.random(n) < 0.5

    # Chinese names: surname by frequency, one or two given characters by gender.
    sur = draw(rng, [s[2] for s in ref.SURNAMES], n)
    sur_cn = np.array([s[0] for s in ref.SURNAMES])
    sur_py = np.array([s[1] for s in ref.SURNAMES])
    giv_cn = np.array([g[0] for g in ref.GIVEN_CHARS])
    giv_py = np.array([g[1] for g in ref.GIVEN_CHARS])
    pool_m = np.array([i for i, g in enumerate(ref.GIVEN_CHARS) if g[2] in "mn"])
    pool_f = np.array([i for i, g in enumerate(ref.GIVEN_CHARS) if g[2] in "fn"])
    g1 = np.where(
        male, pool_m[rng.integers(0, len(pool_m), n)], pool_f[rng.integers(0, len(pool_f), n)]
    )
    g2 = np.where(
        male, pool_m[rng.integers(0, len(pool_m), n)], pool_f[rng.integers(0, len(pool_f), n)]
    )
    two = rng.random(n) < 0.7
    name = cat(sur_cn[sur], giv_cn[g1], np.where(two, giv_cn[g2], ""))
    pinyin = cat(sur_py[sur], giv_py[g1], np.where(two, giv_py[g2], ""))
    pinyin_rev = cat(giv_py[g1], np.where(two, giv_py[g2], ""), ".", sur_py[sur])

    # Names abroad: romanised, given name after the surname (as in Singapore or Malaysia).
    f_given = np.array([g[0] for g in ref.FOREIGN_GIVEN])
    f_male = np.array([g[1] == "m" for g in ref.FOREIGN_GIVEN])
    f_sur = np.array(ref.FOREIGN_SURNAMES)
    fg_m, fg_f = np.flatnonzero(f_male), np.flatnonzero(~f_male)
    fg = np.where(male, fg_m[rng.integers(0, len(fg_m), n)], fg_f[rng.integers(0, len(fg_f), n)])
    fs = rng.integers(0, len(f_sur), n)
    foreign_name = cat(f_sur[fs], " ", f_given[fg])
    foreign_local = cat(
        np.strings.lower(np.strings.replace(f_given[fg], " ", "")), ".", np.strings.lower(f_sur[fs])
    )
    name = np.where(foreign, foreign_name, name)
    email_local = np.where(
        foreign, foreign_local, np.where(rng.random(n) < 0.6, pinyin, pinyin_rev)
    )

    # Companies.
    words = np.array(ref.COMPANY_WORDS)
    kinds = np.array(ref.COMPANY_KINDS)
    cn_company = cat(
        ctx.city_name[city],
        words[rng.integers(0, len(words), n)],
        kinds[rng.integers(0, len(kinds), n)],
        "有限公司",
    )
    suffix = np.where(
        country == "SG", " Pte. Ltd.", np.where(country == "MY", " Sdn. Bhd.", " Limited")
    )
    foreign_company = cat(f_sur[fs], " Trading", suffix)
    company_name = np.where(foreign, foreign_company, cn_company)
    name = np.where(is_company, company_name, name)
    email_local = np.where(is_company, "purchase", email_local)

    # Age: skewed young, as a phone brand's customers are.
    age = np.clip(18 + rng.gamma(2.2, 8.0, n), 18, 80).astype(np.int64)
    today_epoch = (ctx.today - date(1970, 1, 1)).days
    birthday = today_epoch - (age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    return {
        "ids": ids,
        "n": np.array(n),
        "is_company": is_company,
        "city": city,
        "country": country,
        "foreign": foreign,
        "behaviour": behaviour,
        "male": male,
        "name": name,
        "email_local": email_local,
        "age": age,
        "birthday": birthday,
    }


def customer_table(
    ctx: Context,
    rng: np.random.Generator,
    people: dict,
    first_day: np.ndarray,
    last_day: np.ndarray,
) -> TableData:
    """Build the customer rows, with realistic gaps in the profile."""
    n = len(people["ids"])
    company = people["is_company"]
    foreign = people["foreign"]
    city = people["city"]
    # Registered shortly before the first order; prospects at any time.
    created_day = np.where(
        first_day >= 0, first_day - rng.integers(0, 60, n), rng.integers(0, HISTORY_DAYS, n)
    )
    created = to_utc_seconds(ctx, created_day, draw_seconds_of_day(rng, n))
    updated_day = np.maximum(np.where(last_day >= 0, last_day, created_day), created_day)
    updated = np.maximum(to_utc_seconds(ctx, updated_day, np.full(n, 23 * 3600)), created)

    gender = np.where(people["male"], "m", "f")
    gender = np.where(company | (rng.random(n) < 0.08), "", gender)
    has_birthday = ~company & (rng.random(n) > 0.22)
    age = people["age"]
    band = np.array(ref.AGE_BANDS)[np.searchsorted(ref.AGE_BAND_LIMITS, age, side="right")]
    band = np.where(company | (~has_birthday & (rng.random(n) < 0.4)), "", band)
    income = np.array(ref.INCOME_BANDS)[draw(rng, ref.INCOME_WEIGHTS, n)]
    income = np.where(company | (rng.random(n) < 0.3), "", income)
    occupations = np.array(ref.OCCUPATIONS)
    occupation = occupations[rng.integers(0, len(occupations), n)]
    occupation = np.where(age >= 62, "退休", np.where(age <= 22, "学生", occupation))
    occupation = np.where(company | (rng.random(n) < 0.35), "", occupation)
    industries = np.array(ref.INDUSTRIES)
    industry = np.where(company, industries[rng.integers(0, len(industries), n)], "")
    province = ctx.city_province[city]
    city_name = ctx.city_name[city]
    gap = rng.random(n)
    city_name = np.where(gap < 0.06, "", city_name)
    province = np.where(gap < 0.03, "", province)
    r = rng.random(n)
    language = np.where(
        foreign,
        np.where(r < 0.7, "en", np.where(r < 0.95, "zh-hans", "")),
        np.where(r < 0.9, "zh-hans", np.where(r < 0.98, "", "en")),
    )
    kind_to_source = {"online": "online", "app": "app", "store": "store"}
    codes = [ch for ch, _, _ in ref.ONLINE_CHANNELS]
    source_of_channel = np.array(
        [kind_to_source.get(k, "") for k in ctx.channel_kind], dtype=object
    )
    for i, code in enumerate(codes):
        if code in ("tmall", "jd"):
            source_of_channel[ctx.online_index[i]] = code
    source = source_of_channel[people["usual_channel"]].astype(str)
    r = rng.random(n)
    source = np.where(r < 0.06, "wechat", np.where(r < 0.10, "referral", source))
    people["source"] = source
    people["created_day"] = created_day
    return TableData(
        Customer,
        {
            "id": people["ids"],
            "kind": np.where(company, "company", "person"),
            "name": people["name"],
            "gender": gender,
            **encrypted_birthdays(ctx, people["birthday"], has_birthday),
            "age_band": band,
            "income_band": income,
            "occupation": occupation,
            "industry": industry,
            "country": people["country"],
            "province": province,
            "city": city_name,
            "preferred_language": language,
            "source_channel": source,
            "external_ref": cat("DEMO-", np.strings.zfill(people["ids"].astype(str), 8)),
            "merged_into": NullableInts(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)),
            "created_at": Timestamps(created),
            "updated_at": Timestamps(updated),
        },
    )


def phone_numbers(ctx: Context, ids: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Return an E.164 mobile number per customer id, unique by construction."""
    out = np.empty(len(ids), dtype="U16")
    for code, prefixes in ref.PHONE_PREFIXES.items():
        mask = country == code
        if not mask.any():
            continue
        digits = ref.PHONE_SUFFIX_DIGITS[code]
        sub = ids[mask]
        pre = np.array(prefixes)[sub % len(prefixes)]
        rest = scramble(sub // len(prefixes), digits)
        out[mask] = cat("+", pre, np.strings.zfill(rest.astype(str), digits))
    return out


def identity_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Build external ids for all, phones, emails and WeChat openids for many."""
    ids = people["ids"]
    n = len(ids)
    company = people["is_company"]
    foreign = people["foreign"]
    parts = []  # (customer index, kind, value, verified)
    idx = np.arange(n)
    parts.append(
        (
            idx,
            "external",
            cat("DEMO-", np.strings.zfill(ids.astype(str), 8)),
            np.ones(n, dtype=bool),
        )
    )
    has_phone = rng.random(n) < np.where(company, 0.7, 0.95)
    phones = phone_numbers(ctx, ids, people["country"])
    parts.append((idx[has_phone], "phone", phones[has_phone], rng.random(n)[has_phone] < 0.6))
    has_email = rng.random(n) < np.where(company, 0.8, 0.75)
    cn_domain = np.array(ref.EMAIL_DOMAINS_CN)[draw(rng, ref.EMAIL_WEIGHTS_CN, n)]
    f_domain = np.array(ref.EMAIL_DOMAINS_FOREIGN)[draw(rng, ref.EMAIL_WEIGHTS_FOREIGN, n)]
    domain = np.where(foreign, f_domain, cn_domain)
    domain = np.where(company, "yfpartner.com.cn", domain)
    # QQ users often use their numeric QQ id; the id keeps every address unique.
    qq_number = (scramble(ids, 9) + 100_000_000).astype(str)
    local = np.where(
        (domain == "qq.com") & (rng.random(n) < 0.6),
        qq_number,
        cat(people["email_local"], ids.astype(str)),
    )
    email = cat(local, "@", domain)
    parts.append((idx[has_email], "email", email[has_email], rng.random(n)[has_email] < 0.5))
    has_wechat = ~company & ~foreign & (rng.random(n) < 0.45)
    alphabet = np.frombuffer(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
    )
    m = int(has_wechat.sum())
    noise = alphabet[rng.integers(0, 64, (m, 17))].copy().view("S17").ravel().astype("U17")
    openid = cat("o", noise, np.strings.zfill(ids[has_wechat].astype(str), 10))
    parts.append((idx[has_wechat], "wechat", openid, np.ones(m, dtype=bool)))

    who = np.concatenate([p[0] for p in parts])
    total = len(who)
    return TableData(
        Identity,
        {
            "id": ctx.take_ids(Identity, total),
            "customer": ids[who],
            "kind": np.concatenate([np.full(len(p[0]), p[1]) for p in parts]),
            "system": np.concatenate(
                [np.full(len(p[0]), DEMO_SYSTEM if p[1] == "external" else "") for p in parts]
            ),
            **encrypted_identity_values(ctx, np.concatenate([p[2].astype(str) for p in parts])),
            "verified": np.concatenate([p[3] for p in parts]),
            "created_at": Timestamps(created[who]),
        },
    )


def encrypt_column(ctx: Context, model: type, name: str, values: np.ndarray) -> np.ndarray:
    """Return the stored (encrypted) form of a column of an encrypted field; "" stays ""."""
    purpose = model._meta.get_field(name).purpose
    out = np.full(len(values), "", dtype=object)
    filled = np.flatnonzero(values != "")
    out[filled] = encrypt_many(purpose, values[filled].tolist(), ctx.using)
    return out


def encrypted_birthdays(ctx: Context, days: np.ndarray, known: np.ndarray) -> dict[str, Column]:
    """Return the encrypted birthdays (NULL where unknown) and their birth years in clear."""
    dates = days.astype("datetime64[D]")
    text = np.where(known, np.datetime_as_string(dates, unit="D"), "")
    stored = encrypt_column(ctx, Customer, "birthday", text)
    stored[~known] = None
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    return {"birthday": stored, "birth_year": NullableInts(years, ~known)}


def encrypted_identity_values(ctx: Context, values: np.ndarray) -> dict[str, np.ndarray]:
    """Return the encrypted identity values and their blind indexes (for exact lookups)."""
    return {
        "value": encrypt_column(ctx, Identity, "value", values),
        "value_index": np.array(blind_indexes(values.tolist()), dtype=object),
    }


def contact_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Link each company to 1-4 distinct person customers of the same chunk."""
    company_idx = np.flatnonzero(people["is_company"])
    persons = rng.permutation(np.flatnonzero(~people["is_company"]))
    size = np.minimum(rng.integers(1, 5, len(company_idx)), 4)
    cum = np.cumsum(size)
    keep = cum <= len(persons)
    company_idx, size = company_idx[keep], size[keep]
    total = int(size.sum())
    companies = np.repeat(company_idx, size)
    contacts = persons[:total]
    first = np.zeros(total, dtype=bool)
    first[np.cumsum(size) - size] = True
    titles = np.array(ref.CONTACT_TITLES)
    ids = people["ids"]
    return TableData(
        CompanyContact,
        {
            "id": ctx.take_ids(CompanyContact, total),
            "company": ids[companies],
            "contact": ids[contacts],
            "title": titles[rng.integers(0, len(titles), total)],
            "is_primary": first,
            "created_at": Timestamps(np.maximum(created[companies], created[contacts])),
        },
    )


def address_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Give most customers a delivery address in their city, some a second one."""
    n = len(people["ids"])
    company = people["is_company"]
    has = rng.random(n) < np.where(company, 0.9, 0.65)
    second = has & (rng.random(n) < 0.15)
    who = np.concatenate([np.flatnonzero(has), np.flatnonzero(second)])
    is_default = np.concatenate([np.ones(int(has.sum()), bool), np.zeros(int(second.sum()), bool)])
    m = len(who)
    city = people["city"][who]
    foreign = people["foreign"][who]
    district = ctx.district_flat[
        ctx.district_offset[city] + (rng.random(m) * ctx.district_count[city]).astype(np.int64)
    ]
    district = np.where(rng.random(m) < 0.1, "", district)
    roads = np.array(ref.ROADS)
    f_roads = np.array(ref.FOREIGN_ROADS)
    num = rng.integers(1, 999, m).astype(str)
    cn_line = cat(
        roads[rng.integers(0, len(roads), m)],
        num,
        "号",
        rng.integers(1, 30, m).astype(str),
        "栋",
        rng.integers(101, 3300, m).astype(str),
        "室",
    )
    f_line = cat(
        num,
        " ",
        f_roads[rng.integers(0, len(f_roads), m)],
        " #",
        rng.integers(2, 40, m).astype(str),
        "-",
        rng.integers(1, 99, m).astype(str),
    )
    line = np.where(foreign, f_line, cn_line)
    # Chinese postcodes: 3-digit city prefix + 3 digits; Kuala Lumpur 50xxx; none else.
    pc = ctx.city_postcode[city]
    rest = rng.integers(0, 1000, m)
    postcode = np.where(pc == "", "", cat(pc, np.strings.zfill(rest.astype(str), 3)))
    label = np.where(
        company[who], "公司", np.where(is_default, "家", np.where(rng.random(m) < 0.5, "公司", ""))
    )
    return TableData(
        Address,
        {
            "id": ctx.take_ids(Address, m),
            "customer": people["ids"][who],
            "label": label,
            "country": people["country"][who],
            "province": ctx.city_province[city],
            "city": ctx.city_name[city],
            "district": district,
            "line": encrypt_column(ctx, Address, "line", line),
            "postcode": encrypt_column(ctx, Address, "postcode", postcode),
            "is_default": is_default,
            "created_at": Timestamps(created[who] + rng.integers(0, 86400 * 30, m)),
        },
    )


def consent_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Record consent decisions; some marketing consents are withdrawn and a few re-granted."""
    n = len(people["ids"])
    # Probability of a recorded decision per (channel, purpose).
    p_marketing = {"email": 0.45, "sms": 0.5, "phone": 0.12, "wechat": 0.25}
    p_service = {"email": 0.35, "sms": 0.45, "phone": 0.1, "wechat": 0.2}
    who_parts, chan_parts, purpose_parts, granted_parts, time_parts, source_parts = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    now = to_utc_seconds(ctx, np.array([HISTORY_DAYS - 1]), np.array([20 * 3600]))[0]
    sources = np.array(ref.CONSENT_SOURCES)
    withdraw_sources = np.array(ref.WITHDRAW_SOURCES)
    for channel in ref.CONSENT_CHANNELS:
        for purpose, probs in (("marketing", p_marketing), ("service", p_service)):
            has = np.flatnonzero(rng.random(n) < probs[channel])
            m = len(has)
            t0 = created[has] + rng.integers(0, 86400 * 20, m)
            granted = rng.random(m) < 0.9
            withdraw_p = 0.2 if purpose == "marketing" else 0.05
            withdrawn = granted & (rng.random(m) < withdraw_p)
            t1 = t0 + rng.integers(86400 * 30, 86400 * 500, m)
            withdrawn &= t1 < now
            regrant = withdrawn & (rng.random(m) < 0.25)
            t2 = t1 + rng.integers(86400 * 10, 86400 * 300, m)
            regrant &= t2 < now
            for mask, g, t, src in (
                (np.ones(m, bool), granted, t0, sources[rng.integers(0, len(sources), m)]),
                (
                    withdrawn,
                    np.zeros(m, bool),
                    t1,
                    withdraw_sources[rng.integers(0, len(withdraw_sources), m)],
                ),
                (regrant, np.ones(m, bool), t2, sources[rng.integers(0, len(sources), m)]),
            ):
                who_parts.append(has[mask])
                chan_parts.append(np.full(int(mask.sum()), channel))
                purpose_parts.append(np.full(int(mask.sum()), purpose))
                granted_parts.append(g[mask])
                time_parts.append(t[mask])
                source_parts.append(src[mask])
    who = np.concatenate(who_parts)
    order = np.argsort(who, kind="stable")
    return TableData(
        Consent,
        {
            "id": ctx.take_ids(Consent, len(who)),
            "customer": people["ids"][who[order]],
            "channel": np.concatenate(chan_parts)[order],
            "purpose": np.concatenate(purpose_parts)[order],
            "granted": np.concatenate(granted_parts)[order],
            "source": np.concatenate(source_parts)[order],
            "recorded_at": Timestamps(np.concatenate(time_parts)[order]),
        },
    )


def tag_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Tag customers with their source, zero to two interests and, for some, a value grade."""
    n = len(people["ids"])
    source_tag = {
        "online": 0,
        "app": 0,
        "store": 1,
        "tmall": 2,
        "jd": 3,
        "wechat": 4,
        "referral": 5,
    }
    src = people["source"]
    src_index = np.zeros(n, dtype=np.int64)
    for key, value in source_tag.items():
        src_index[src == key] = value
    has_src = rng.random(n) < 0.9
    interest_ids = ctx.tag_ids["兴趣"]
    k = len(interest_ids)
    n_interest = draw(rng, (0.35, 0.4, 0.25), n)
    i1 = rng.integers(0, k, n)
    i2 = (i1 + 1 + rng.integers(0, k - 1, n)) % k  # distinct from i1
    value_by_behaviour = np.array([2, 2, 1, 0, 1, 0, 3, 1, 0])  # index into 价值 tags
    noisy = rng.random(n) < 0.15
    value = np.where(noisy, rng.integers(0, 4, n), value_by_behaviour[people["behaviour"]])
    has_value = rng.random(n) < 0.5
    idx = np.arange(n)
    who = np.concatenate([idx[has_src], idx[n_interest >= 1], idx[n_interest >= 2], idx[has_value]])
    tags = np.concatenate(
        [
            ctx.tag_ids["来源"][src_index[has_src]],
            interest_ids[i1[n_interest >= 1]],
            interest_ids[i2[n_interest >= 2]],
            ctx.tag_ids["价值"][value[has_value]],
        ]
    )
    order = np.argsort(who, kind="stable")
    who, tags = who[order], tags[order]
    m = len(who)
    return TableData(
        CustomerTag,
        {
            "id": ctx.take_ids(CustomerTag, m),
            "customer": people["ids"][who],
            "tag": tags,
            "added_by": NullableInts(np.zeros(m, dtype=np.int64), np.ones(m, dtype=bool)),
            "added_at": Timestamps(created[who] + rng.integers(3600, 86400 * 90, m)),
        },
    )
