"""Which column holds which field: header aliases (English, Chinese) and CRM export presets."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from kequn.ingest.readers import ImportFileError

KINDS = ("customers", "orders", "products", "events")

FIELDS: dict[str, tuple[str, ...]] = {
    "customers": (
        "external_id", "email", "phone", "wechat", "name", "first_name", "last_name",
        "gender", "birthday", "country", "province", "city", "district", "address",
        "postcode", "occupation", "industry", "company", "email_marketing", "sms_marketing",
        "email_opt_out", "sms_opt_out", "do_not_call", "tags",
    ),
    "orders": (
        "number", "customer_external_id", "email", "phone", "name", "ordered_at", "total",
        "discount", "currency", "status", "channel", "sku", "product_name", "quantity",
        "unit_price",
    ),
    "products": ("sku", "name", "price", "currency", "brand", "category", "is_active"),
    "events": (
        "message_id", "event", "type", "occurred_at", "customer_external_id", "email",
        "phone", "anonymous_id", "channel",
    ),
}  # fmt: skip

# What each field is called on screen (the column mapping, dry run and result pages).
FIELD_LABELS: dict[str, object] = {
    "external_id": _lazy("customer id"), "customer_external_id": _lazy("customer id"),
    "email": _lazy("email"), "phone": _lazy("phone"), "wechat": _lazy("WeChat"),
    "name": _lazy("name"), "first_name": _lazy("first name"), "last_name": _lazy("last name"),
    "gender": _lazy("gender"), "birthday": _lazy("birthday"), "country": _lazy("country"),
    "province": _lazy("province"), "city": _lazy("city"), "district": _lazy("district"),
    "address": _lazy("street address"), "postcode": _lazy("postcode"),
    "occupation": _lazy("occupation"), "industry": _lazy("industry"),
    "company": _lazy("company"), "number": _lazy("order number"),
    "ordered_at": _lazy("ordered at"), "total": _lazy("total"), "discount": _lazy("discount"),
    "currency": _lazy("currency"), "status": _lazy("status"), "channel": _lazy("channel"),
    "sku": _lazy("SKU"), "product_name": _lazy("product name"), "quantity": _lazy("quantity"),
    "unit_price": _lazy("unit price"), "price": _lazy("price"), "brand": _lazy("brand"),
    "category": _lazy("category"), "is_active": _lazy("on sale"),
    "message_id": _lazy("message id"), "event": _lazy("event"), "type": _lazy("event type"),
    "occurred_at": _lazy("occurred at"), "anonymous_id": _lazy("anonymous id"),
    "external_ref": _lazy("external reference"), "source_channel": _lazy("source channel"),
    "email_marketing": _lazy("accepts email marketing"),
    "sms_marketing": _lazy("accepts SMS marketing"),
    "email_opt_out": _lazy("email opt-out"), "sms_opt_out": _lazy("SMS opt-out"),
    "do_not_call": _lazy("do not call"), "tags": _lazy("tags"),
}  # fmt: skip


# What an import did with a row, as the dry run, result page and command line say it.
OUTCOME_LABELS: dict[str, object] = {
    "inserted": _lazy("created"),
    "updated": _lazy("updated"),
    "unchanged": _lazy("unchanged"),
    "merged": _lazy("merged"),
    "review": _lazy("sent to review"),
    "quarantined": _lazy("quarantined"),
}


# Why a row was quarantined, as people read it (the code stays in exports and filters).
REASON_LABELS: dict[str, object] = {
    "column_count": _lazy("more values than columns"),
    "invalid_amount": _lazy("invalid amount"),
    "invalid_date": _lazy("invalid date"),
    "invalid_email": _lazy("invalid email"),
    "invalid_flag": _lazy("not a yes or no"),
    "invalid_json": _lazy("invalid JSON"),
    "invalid_phone": _lazy("invalid phone number"),
    "invalid_quantity": _lazy("invalid quantity"),
    "invalid_status": _lazy("unknown order status"),
    "missing_identifier": _lazy("no email, phone or customer id"),
    "missing_value": _lazy("missing value"),
    "negative_amount": _lazy("amount below zero"),
    "negative_quantity": _lazy("quantity below zero"),
    "suppressed": _lazy("erased on request"),
    "too_long": _lazy("value too long"),
    "unknown_product": _lazy("unknown product"),
}


def get_reason_label(code: str) -> str:
    """Return a quarantine reason's label in the current language (the code if it has none)."""
    return str(REASON_LABELS.get(code, code))


def get_field_label(name: str) -> str:
    """Return a field's label in the current language (the code itself if it has none)."""
    return str(FIELD_LABELS.get(name, name))


# Each needed column, or a group of which at least one must be present.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "customers": (("external_id", "email", "phone"),),
    "orders": (("number",), ("ordered_at",), ("total", "unit_price")),
    "products": (("sku",), ("name",), ("price",)),
    "events": (("event",), ("occurred_at",)),
}

_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "customer id", "customerid", "客户id", "客户编号", "会员id", "会员编号",
                    "会员卡号", "external id", "record id", "user id", "userid", "编号"),
    "customer_external_id": ("customer id", "customerid", "客户id", "客户编号", "会员id",
                             "会员编号", "user id", "userid"),
    "email": ("email", "e-mail", "email address", "mail", "邮箱", "电子邮箱", "邮件", "电子邮件",
              "邮箱地址", "customer email"),
    "phone": ("phone", "mobile", "mobile phone", "phone number", "mobile number", "tel",
              "telephone", "cell", "cellphone", "手机", "手机号", "手机号码", "电话", "联系电话",
              "移动电话", "联系方式", "customer phone"),
    "wechat": ("wechat", "weixin", "微信", "微信号", "openid"),
    "name": ("name", "full name", "customer name", "contact name", "姓名", "名字", "客户姓名",
             "客户名称", "联系人", "联系人姓名", "收货人"),
    "first_name": ("first name", "firstname", "given name", "名"),
    "last_name": ("last name", "lastname", "surname", "family name", "姓"),
    "gender": ("gender", "sex", "性别"),
    "birthday": ("birthday", "birth date", "birthdate", "date of birth", "dob", "生日",
                 "出生日期"),
    "country": ("country", "country code", "国家"),
    "province": ("province", "state", "province code", "region", "省", "省份", "所在省份"),
    "city": ("city", "城市", "市", "所在城市"),
    "district": ("district", "county", "区", "区县", "县区"),
    "address": ("address", "street", "street address", "address1", "地址", "详细地址",
                "收货地址", "街道地址"),
    "postcode": ("zip", "zip code", "postcode", "postal code", "邮编", "邮政编码"),
    "occupation": ("occupation", "job title", "title", "职业", "职位", "职务"),
    "industry": ("industry", "行业"),
    "company": ("company", "company name", "organization", "公司", "公司名称", "单位"),
    "number": ("order number", "order no", "order id", "orderid", "order", "订单号", "订单编号",
               "订单id"),
    "ordered_at": ("ordered at", "order date", "created at", "date", "下单时间", "订单时间",
                   "下单日期", "创建时间"),
    "total": ("total", "order total", "amount", "total amount", "金额", "订单金额", "实付金额",
              "总金额", "合计"),
    "discount": ("discount", "discount amount", "优惠", "优惠金额", "折扣"),
    "currency": ("currency", "币种", "货币"),
    "status": ("status", "order status", "状态", "订单状态"),
    "channel": ("channel", "store", "source", "渠道", "门店", "店铺"),
    "sku": ("sku", "product sku", "item sku", "商品编码", "商品编号", "货号", "sku编码"),
    "product_name": ("product", "product name", "item name", "商品", "商品名称"),
    "quantity": ("quantity", "qty", "数量", "购买数量"),
    "unit_price": ("unit price", "price", "item price", "单价"),
    "price": ("price", "unit price", "list price", "价格", "售价", "单价"),
    "brand": ("brand", "vendor", "品牌"),
    "category": ("category", "product type", "type", "类目", "分类", "品类"),
    "is_active": ("active", "on sale", "是否上架", "上架"),
    "message_id": ("message id", "messageid", "event id", "消息id", "事件id"),
    "event": ("event", "event name", "事件", "事件名称", "行为"),
    "type": ("type", "event type", "事件类型"),
    "occurred_at": ("timestamp", "time", "occurred at", "event time", "发生时间", "时间"),
    "anonymous_id": ("anonymous id", "anonymousid", "device id", "匿名id", "设备id"),
    "email_marketing": ("accepts email marketing", "email marketing", "email subscribed",
                        "marketing contact status", "接收营销邮件", "邮件营销", "订阅邮件"),
    "sms_marketing": ("accepts sms marketing", "sms marketing", "sms subscribed",
                      "接收营销短信", "短信营销", "订阅短信"),
    "email_opt_out": ("email opt out", "hasoptedoutofemail", "unsubscribed from all email",
                      "邮件退订", "退订邮件"),
    "sms_opt_out": ("sms opt out", "短信退订", "退订短信"),
    "do_not_call": ("do not call", "donotcall", "勿扰电话", "拒绝来电"),
    "tags": ("tags", "tag", "标签", "客户标签"),
}  # fmt: skip


def header_key(header: str) -> str:
    """Return the header in the form aliases are compared in: lower case, no separators."""
    text = unicodedata.normalize("NFKC", header).lower()
    return re.sub(r"[\s_\-./:()（）]", "", text)


ALIASES: dict[str, dict[str, str]] = {
    kind: {header_key(a): f for f in fields for a in (*_ALIASES.get(f, ()), f)}
    for kind, fields in FIELDS.items()
}


@dataclass(frozen=True)
class Preset:
    name: str
    system: str
    label: str
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


# Column names as the systems write them in their standard exports.
PRESETS: dict[str, Preset] = {
    "shopify": Preset(
        "shopify",
        "shopify",
        "Shopify",
        {
            "customers": {
                "Customer ID": "external_id", "First Name": "first_name",
                "Last Name": "last_name", "Email": "email", "Phone": "phone",
                "Default Address Phone": "", "Default Address Company": "company",
                "Default Address Address1": "address", "Default Address City": "city",
                "Default Address Province Code": "province",
                "Default Address Country Code": "country", "Default Address Zip": "postcode",
                "Accepts Email Marketing": "email_marketing",
                "Accepts SMS Marketing": "sms_marketing", "Tags": "tags",
            },
            "orders": {
                "Name": "number", "Email": "email", "Phone": "phone",
                "Financial Status": "status", "Currency": "currency", "Total": "total",
                "Discount Amount": "discount", "Created at": "ordered_at",
                "Lineitem quantity": "quantity", "Lineitem name": "product_name",
                "Lineitem price": "unit_price", "Lineitem sku": "sku", "Source": "channel",
                "Billing Name": "name", "Paid at": "", "Id": "",
            },
            "products": {
                "Variant SKU": "sku", "Title": "name", "Vendor": "brand", "Type": "category",
                "Variant Price": "price", "Status": "is_active", "Handle": "",
            },
        },
    ),
    "hubspot": Preset(
        "hubspot",
        "hubspot",
        "HubSpot",
        {
            "customers": {
                "Record ID": "external_id", "First Name": "first_name", "Last Name": "last_name",
                "Email": "email", "Phone Number": "phone", "Mobile Phone Number": "",
                "City": "city", "State/Region": "province", "Country/Region": "country",
                "Street Address": "address", "Postal Code": "postcode",
                "Date of birth": "birthday", "Job Title": "occupation", "Industry": "industry",
                "Company Name": "company", "Contact owner": "", "Lifecycle Stage": "",
                "Marketing contact status": "email_marketing",
                "Unsubscribed from all email": "email_opt_out",
            },
        },
    ),
    "salesforce": Preset(
        "salesforce",
        "salesforce",
        "Salesforce",
        {
            "customers": {
                # Data Export (API names) and report export (labels).
                "Id": "external_id", "FirstName": "first_name", "LastName": "last_name",
                "Email": "email", "Phone": "phone", "MobilePhone": "", "Birthdate": "birthday",
                "MailingStreet": "address", "MailingCity": "city", "MailingState": "province",
                "MailingPostalCode": "postcode", "MailingCountry": "country", "Title": "occupation",
                "Contact ID": "external_id", "First Name": "first_name", "Last Name": "last_name",
                "Mobile": "", "Mailing Street": "address", "Mailing City": "city",
                "Mailing State/Province": "province", "Mailing Zip/Postal Code": "postcode",
                "Mailing Country": "country", "Account Name": "company",
                "HasOptedOutOfEmail": "email_opt_out", "DoNotCall": "do_not_call",
                "Email Opt Out": "email_opt_out", "Do Not Call": "do_not_call",
            },
        },
    ),
    "zoho": Preset(
        "zoho",
        "zoho",
        "Zoho CRM",
        {
            "customers": {
                "Record Id": "external_id", "First Name": "first_name", "Last Name": "last_name",
                "Email": "email", "Phone": "phone", "Mobile": "", "Date of Birth": "birthday",
                "Mailing Street": "address", "Mailing City": "city", "Mailing State": "province",
                "Mailing Zip": "postcode", "Mailing Country": "country", "Title": "occupation",
                "Account Name": "company", "Contact Owner": "", "Lead Source": "",
                "Email Opt Out": "email_opt_out", "Tag": "tags",
            },
        },
    ),
    "fxiaoke": Preset(
        "fxiaoke",
        "fxiaoke",
        "纷享销客 Fxiaoke",
        {
            "customers": {
                "客户编号": "external_id", "客户名称": "name", "手机": "phone", "电话": "",
                "邮件": "email", "性别": "gender", "生日": "birthday", "省份": "province",
                "城市": "city", "区县": "district", "详细地址": "address", "行业": "industry",
                "职务": "occupation", "负责人": "", "归属部门": "", "创建时间": "",
                "标签": "tags", "是否退订邮件": "email_opt_out", "是否退订短信": "sms_opt_out",
            },
            "orders": {
                "销售订单编号": "number", "客户编号": "customer_external_id", "下单日期": "ordered_at",
                "订单金额": "total", "生命状态": "", "产品编码": "sku", "数量": "quantity",
                "销售单价": "unit_price",
            },
        },
    ),
}  # fmt: skip


@dataclass
class Mapping:
    """The resolved mapping of one file: which header feeds which field, and the id system."""

    kind: str
    columns: dict[str, str]
    system: str
    ignored: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"kind": self.kind, "columns": self.columns, "system": self.system}

    @classmethod
    def from_json(cls, data: dict) -> Mapping:
        return cls(kind=data["kind"], columns=dict(data["columns"]), system=data.get("system", ""))

    @property
    def fields(self) -> set[str]:
        return set(self.columns.values())


def load_mapping_spec(spec: str | None, kind: str) -> tuple[dict[str, str], str]:
    """Return (explicit header→field map, system) from a preset name or a JSON mapping file."""
    if not spec:
        return {}, ""
    if spec.lower() in PRESETS:
        preset = PRESETS[spec.lower()]
        return dict(preset.columns.get(kind, {})), preset.system
    path = Path(spec)
    if not path.exists():
        raise ImportFileError(
            _("mapping %(spec)r is neither a preset (%(presets)s) nor an existing JSON file")
            % {"spec": spec, "presets": ", ".join(PRESETS)}
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFileError(
            _('%(file)s: not valid JSON (%(err)s): write {"columns": {"Header": "field"}}')
            % {"file": path.name, "err": exc}
        ) from None
    if not isinstance(data, dict):
        raise ImportFileError(
            _("%(file)s: the mapping must be a JSON object") % {"file": path.name}
        )
    columns = data.get("columns", data)
    system = str(data.get("system", "")) if "columns" in data else ""
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ImportFileError(
            _("%(file)s: columns must map header names to field names") % {"file": path.name}
        )
    unknown = sorted({v for v in columns.values() if v and v not in FIELDS[kind]})
    if unknown:
        raise ImportFileError(
            _("%(file)s: unknown field(s) %(fields)s for %(kind)s; known: %(known)s")
            % {"file": path.name, "fields": ", ".join(unknown), "kind": kind,
               "known": ", ".join(FIELDS[kind])}
        )  # fmt: skip
    return columns, system


def resolve_mapping(
    headers: list[str], kind: str, spec: str | None = None, source: str = "", file_name: str = ""
) -> Mapping:
    """Map the file's headers to fields: explicit mapping first, then known aliases."""
    explicit, system = load_mapping_spec(spec, kind)
    columns: dict[str, str] = {}
    taken: set[str] = set()
    ignored: list[str] = []
    explicit_keys = {header_key(h): f for h, f in explicit.items()}
    for header in headers:
        if not header:
            continue
        key = header_key(header)
        target = explicit_keys[key] if key in explicit_keys else ALIASES[kind].get(key, "")
        if target and target not in taken:
            columns[header] = target
            taken.add(target)
        else:
            ignored.append(header)
    for group in REQUIRED[kind]:
        if not taken.intersection(group):
            names = " / ".join(group)
            raise ImportFileError(
                _(
                    "%(file)s: no column for %(field)s among %(headers)s: rename a column "
                    "or pass --mapping with a preset or a JSON file"
                )
                % {"file": file_name or "file", "field": names, "headers": ", ".join(h for h in headers if h)[:300]}
            )  # fmt: skip
    return Mapping(
        kind=kind, columns=columns, system=(source or system or "import").lower(), ignored=ignored
    )
