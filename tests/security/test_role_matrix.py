"""The role matrix, walked: every back-office URL, admin action and API write, with every role.

What each role may do is derived from the role definitions (kequn.security.permissions,
README "Roles"), not written down again here: a URL or action needing a permission the role
lacks must answer 403 (or not be offered), one it holds must work. A model admin, custom
admin URL, admin action or API write operation added later without a line in the tables
below fails this test until its permission is declared here, and then it is checked.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory
from django.urls import get_resolver, resolve, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from kequn.api import api
from kequn.commerce.models import Category, Channel, Product
from kequn.customers.models import Customer, CustomerTag, Identity, Tag, TagGroup
from kequn.customers.services import IdentityInput, create_customer
from kequn.engage.services import create_campaign, create_template
from kequn.events.models import Event
from kequn.feedback.services import create_survey
from kequn.ingest.models import ImportRun, MatchCandidate, Merge, QuarantinedRow
from kequn.privacy import services as privacy
from kequn.privacy.models import Suppression
from kequn.recommend.models import Recommendation, TrainingRun
from kequn.security.actors import system_actor
from kequn.security.permissions import select_role_permissions
from kequn.security.roles import ROLES, SALES
from kequn.security.services import create_api_token
from kequn.segments import services as segments
from kequn.segments.builder import LOOKUPS
from kequn.segments.models import MembershipChange, Persona, Segment, TagRule
from kequn.service.services import open_ticket
from tests.conftest import TokenClient
from tests.factories import make_order

MISSING = 999_999  # the id of an object that does not exist
RULE = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}

# Views every signed-in back-office user may open (their own account, search, the shell).
OPEN_TO_STAFF = {
    "index", "login", "logout", "password_change", "password_change_done", "jsi18n",
    "search", "autocomplete", "view_on_site", "app_list", "otp-setup", "otp-verify",
}  # fmt: skip

# Custom admin URLs: (method, permissions needed, all of them). "{obj}" is the model's object.
CUSTOM_URLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customers_customer_360": ("GET", ("customers.view_customer",)),
    "customers_customer_open_360": ("GET", ("customers.view_customer",)),
    "audit_auditentry_verify_chain": ("GET", ("audit.view_auditentry",)),
    "privacy_privacyrequest_execute_detail": ("GET", ("privacy.change_privacyrequest",)),
    "privacy_privacyrequest_reject_detail": ("GET", ("privacy.change_privacyrequest",)),
    "privacy_privacyrequest_download_detail": ("GET", ("privacy.change_privacyrequest",)),
    "ingest_upload": ("GET", ("ingest.add_importrun",)),
    "segments_segment_count": ("POST", ("segments.view_segment",)),
    "segments_segment_export": ("GET", ("segments.view_segment",)),
    "segments_tag_customers": ("GET", ("customers.add_customertag",)),
    "segments_segment_lookup": ("GET", ("segments.view_segment",)),
    "segments_segment_from_customers": ("GET", ("segments.add_segment",)),
    "segments_segment_members": ("GET", ("segments.view_segment",)),
    "auth_user_password_change": ("GET", ("auth.change_user",)),
    "otp_totp_totpdevice_config": ("GET", ("otp_totp.change_totpdevice",)),
    "otp_totp_totpdevice_qrcode": ("GET", ("otp_totp.change_totpdevice",)),
    "dashboard:export": ("GET", ("dashboard.view_dashboard",)),
    "dashboard:export_rows": ("GET", ("customers.view_customer", "dashboard.export_lists")),
    "dashboard:export_list": ("GET", ("customers.view_customer", "dashboard.export_lists")),
    "dashboard:refresh": ("POST", ("dashboard.view_dashboard",)),
    "dashboard:reports": ("GET", ("dashboard.view_dashboard",)),
    "dashboard:report_file": ("GET", ("dashboard.view_dashboard",)),
    "engage_campaign_report": ("GET", ("engage.view_campaign",)),
    "feedback_survey_report": ("GET", ("feedback.view_survey",)),
    "sales_deal_board": ("GET", ("sales.view_deal",)),
    "sales_deal_board_move": ("POST", ("sales.change_deal",)),
    "sales_reports": ("GET", ("sales.view_deal",)),
    "service_ticket_sla_report": ("GET", ("service.view_ticket",)),
}

# Admin actions may declare view only when they change nothing.
READ_ONLY_ACTIONS = {
    "segments.segment.export_csv",
    "segments.segment.export_xlsx",
    "ingest.quarantinedrow.export_csv",
}
# Action permissions other than view/add/change/delete: what each stands for.
NAMED_ACTION_PERMISSIONS = {
    "tag": ("customers.add_customertag",),
    "undo": ("ingest.change_merge",),
    "add_segment": ("segments.add_segment",),
    "revoke": ("events.change_source",),
    "send_selected": ("engage.send_campaign",),
    "pause": ("journeys.change_journey",),
}

# Where a role is refused more than its permissions say, on purpose.
NARROWER = {
    # Lifting a suppression would let an erased person be imported again: superusers only.
    ("privacy_suppression_delete", "administrator"),
    # Identity pages show the value in titles and logs: masked roles do not open them.
    ("customers_identity_change", "marketing"),
    ("customers_identity_history", "marketing"),
    ("customers_identity_delete", "marketing"),
    ("customers_identity_change", "analyst"),
    ("customers_identity_history", "analyst"),
    ("customers_identity_delete", "analyst"),
}


class ViewCaller:
    """Call admin views directly as one user, without rendering their templates.

    A template response knows its status before it is rendered, and rendering every page
    for every role would make this test slow; the permission checks all run in the views.
    """

    def __init__(self, user: User):
        self.user = user
        self.factory = RequestFactory()

    def _call(self, request) -> HttpResponse:
        from django.contrib.messages.storage.fallback import FallbackStorage
        from django.contrib.sessions.backends.db import SessionStore

        request.user = self.user
        request.session = SessionStore()
        request._messages = FallbackStorage(request)
        request._dont_enforce_csrf_checks = True
        match = resolve(request.path)
        try:
            return match.func(request, *match.args, **match.kwargs)
        except PermissionDenied:
            return HttpResponse(status=403)
        except Http404:
            return HttpResponse(status=404)

    def get(self, url: str) -> HttpResponse:
        return self._call(self.factory.get(url))

    def post(self, url: str, data=None, content_type: str | None = None) -> HttpResponse:
        if content_type:
            return self._call(self.factory.post(url, data, content_type=content_type))
        return self._call(self.factory.post(url, data or {}))


KEQUN_APPS = {
    c.label for c in apps.get_app_configs() if c.name.startswith("kequn.")
}  # fmt: skip


def role_perms(role: str) -> set[str]:
    """Return the permissions a role holds according to its definition."""
    every = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    return select_role_permissions(role, every)


def make_user(role: str) -> User:
    user = User.objects.create_user(f"{role}-user", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def build_world(sales: User) -> dict[type, object]:
    """Create one row of every model the back office shows (customers owned by the sales rep)."""
    mine = create_customer(
        {"name": "张伟"}, [IdentityInput("phone", "13800138000")], by=system_actor("tests")
    )
    other = create_customer(
        {"name": "李娜"}, [IdentityInput("phone", "13900139000")], by=system_actor("tests")
    )
    third = create_customer({"name": "王芳"}, by=system_actor("tests"))
    Customer.objects.filter(pk__in=[mine.pk, other.pk, third.pk]).update(owner=sales)
    mine.refresh_from_db()
    group = TagGroup.objects.create(name="兴趣")
    tag = Tag.objects.create(name="VIP", group=group)
    CustomerTag.objects.create(customer=mine, tag=tag)
    order = make_order(mine)
    product = Product.objects.first()
    Event.objects.create(
        customer=mine, type="track", name="Viewed", occurred_at=timezone.now(), properties={}
    )
    segment = segments.create_segment("all", RULE, by=system_actor("test"))
    MembershipChange.objects.create(segment=segment, customer=mine, change="entered")
    TagRule.objects.create(tag=Tag.objects.create(name="rule-tag"), rules={"match": "all"})
    Persona.objects.create(
        label=0, k=2, size=1, description_en="p", description_zh="p", customer_ids=[mine.pk]
    )
    run = ImportRun.objects.create(kind="customers", file_name="a.csv", checksum="0" * 64)
    QuarantinedRow.objects.create(
        run=run, kind="customers", file_name="a.csv", checksum="0" * 64, row_number=2,
        reason="invalid", values={"name": "x"}, message="bad",
    )  # fmt: skip
    merge = Merge.objects.create(target=mine, absorbed=third, rule="email")
    MatchCandidate.objects.create(left=mine, right=other, score=0.9)
    Recommendation.objects.create(customer=mine, product=product, rank=1, score=1.0)
    TrainingRun.objects.create()
    request = privacy.open_request("export", mine, channel="email", by=None)
    Suppression.objects.create(kind="phone", key_hash="f" * 64, request=request)
    token, _ = create_api_token(sales.username, by=system_actor("tests"))
    TOTPDevice.objects.create(user=sales, name="phone", confirmed=True)
    return {
        Customer: mine, Identity: mine.identities.first(), Tag: tag, TagGroup: group,
        Product: product, Category: Category.objects.first(), Channel: Channel.objects.first(),
        type(order): order, Merge: merge, type(request): request, type(token): token,
        Segment: segment,
    }  # fmt: skip


def first_object(model, world: dict) -> object | None:
    for key, value in world.items():
        if key is model or type(value) is model:
            return value
    return model._default_manager.order_by("pk").first()


def is_denied(response) -> bool:
    # An object outside the user's scope is "not found" (404, or the admin's redirect to the
    # index saying so), exactly like a missing id.
    if response.status_code == 302:
        return response.get("Location", "").rstrip("/") == reverse("admin:index").rstrip("/")
    return response.status_code in (403, 404)


def is_allowed(response) -> bool:
    if response.status_code in (200, 201, 204):
        return True
    return response.status_code == 302 and "/login/" not in response.get("Location", "")


def check(outcome: dict, key: str, response, expected: bool) -> None:
    if expected and not is_allowed(response):
        outcome[key] = f"refused ({response.status_code}) but the role holds the permission"
    elif not expected and not is_denied(response):
        outcome[key] = f"answered {response.status_code} but the role lacks the permission"


def admin_walk(role: str, client: ViewCaller, user: User, world: dict) -> dict[str, str]:
    """Request every standard and custom admin URL; return the mismatches with the matrix."""
    held = role_perms(role)
    root = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser("root")
    factory = RequestFactory()
    as_root, as_role = factory.get("/"), factory.get("/")
    as_root.user, as_role.user = root, user
    problems: dict[str, str] = {}
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"

        def perm(action: str, opts=opts) -> str:
            return f"{opts.app_label}.{action}_{opts.model_name}"

        may_view = perm("view") in held or perm("change") in held
        check(problems, base + "_changelist", client.get(reverse(base + "_changelist")),
              model_admin.has_view_or_change_permission(as_root) and may_view)  # fmt: skip
        may_add = model_admin.has_add_permission(as_root) and perm("add") in held
        check(problems, base + "_add", client.get(reverse(base + "_add")), may_add)
        if not may_add:
            check(problems, base + "_add POST", client.post(reverse(base + "_add"), {}), False)
        obj = first_object(model, world)
        if obj is not None:
            args = [obj.pk]
            name = f"{opts.app_label}_{opts.model_name}"
            view_ok = model_admin.has_view_or_change_permission(as_root, obj) and may_view
            for suffix in ("change", "history"):
                url = reverse(f"{base}_{suffix}", args=args)
                check(problems, base + "_" + suffix, client.get(url),
                      view_ok and (f"{name}_{suffix}", role) not in NARROWER)  # fmt: skip
            change_ok = model_admin.has_change_permission(as_root, obj) and perm("change") in held
            if not change_ok:
                url = reverse(base + "_change", args=args)
                check(problems, base + "_change POST", client.post(url, {}), False)
            delete_ok = model_admin.has_delete_permission(as_root, obj) and perm("delete") in held
            delete_ok = delete_ok and (f"{name}_delete", role) not in NARROWER
            url = reverse(base + "_delete", args=args)
            check(problems, base + "_delete", client.get(url), delete_ok)
            if not delete_ok:
                check(problems, base + "_delete POST", client.post(url, {"post": "yes"}), False)
                assert model._default_manager.filter(pk=obj.pk).exists(), base
        problems.update(check_actions(model_admin, as_role, held))
    return problems


def check_actions(model_admin, request, held: set[str]) -> dict[str, str]:
    """Compare the admin actions offered to the role with the permissions they declare."""
    opts = model_admin.model._meta
    problems: dict[str, str] = {}
    if not (
        {f"{opts.app_label}.view_{opts.model_name}", f"{opts.app_label}.change_{opts.model_name}"}
        & held
    ):
        return problems  # actions run from the list, which the role cannot open (checked above)
    offered = model_admin.get_actions(request)
    root_request = RequestFactory().get("/")
    root_request.user = User.objects.get(is_superuser=True)
    for name, (func, _name, _desc) in model_admin.get_actions(root_request).items():
        label = f"{opts.label_lower}.{name}"
        declared = getattr(func, "allowed_permissions", ())
        if not declared and opts.app_label not in KEQUN_APPS:
            # Another package's admin (lockouts, two-factor): offered only with change rights.
            declared = ("change",)
        if not declared:
            problems[label] = "declares no permission: add permissions=[...] to the action"
            continue
        if set(declared) <= {"view"} and label not in READ_ONLY_ACTIONS:
            problems[label] = "a write action that only needs view permission"
            continue
        needed: list[str] = []
        for p in declared:
            if p in ("view", "add", "change", "delete"):
                needed.append(f"{opts.app_label}.{p}_{opts.model_name}")
            elif p in NAMED_ACTION_PERMISSIONS:
                needed.extend(NAMED_ACTION_PERMISSIONS[p])
            else:
                problems[label] = f"unknown action permission {p!r}: add it to the test's table"
        if label in problems:
            continue
        if "view" in declared and f"{opts.app_label}.change_{opts.model_name}" in held:
            needed.remove(f"{opts.app_label}.view_{opts.model_name}")
        expected = all(n in held for n in needed)
        if (name in offered) != expected:
            problems[label] = f"offered={name in offered}, permissions say {expected}"
    return problems


def iter_admin_urls():
    """Yield (url name, pattern) of every URL under /admin/."""

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                ns = p.namespace if p.namespace else namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            else:
                name = f"{namespace}:{p.name}" if namespace and namespace != "admin" else p.name
                yield name, prefix + str(p.pattern)

    for name, pattern in walk(get_resolver().url_patterns, "", ""):
        if pattern.startswith("admin/"):
            yield name, pattern


STANDARD_SUFFIXES = ("_changelist", "_add", "_change", "_delete", "_history")


def make_campaign(segment: Segment):
    """Return a draft email campaign to the segment."""
    by = system_actor("tests")
    template = create_template(name="t", channel="email", subject_zh="s", body_zh="b", by=by)
    return create_campaign(name="c", segment=segment, template=template, by=by)


def custom_walk(role: str, client: ViewCaller, world: dict) -> dict[str, str]:
    """Request every custom admin URL; return mismatches with the declared permissions."""
    held = role_perms(role)
    problems = {}
    customer, segment = world[Customer], world[Segment]
    request = first_object(privacy.PrivacyRequest, world)
    kwargs_for = {
        "customers_customer_360": {"object_id": customer.pk},
        "customers_customer_open_360": {"object_id": customer.pk},
        "privacy_privacyrequest_execute_detail": {"object_id": request.pk},
        "privacy_privacyrequest_reject_detail": {"object_id": request.pk},
        "privacy_privacyrequest_download_detail": {"object_id": request.pk},
        "segments_segment_export": {"segment_id": segment.pk, "fmt": "csv"},
        "segments_segment_members": {"segment_id": segment.pk},
        "auth_user_password_change": {"id": User.objects.get(username="sales-user").pk},
        "otp_totp_totpdevice_config": {"pk": TOTPDevice.objects.get().pk},
        "otp_totp_totpdevice_qrcode": {"pk": TOTPDevice.objects.get().pk},
        "dashboard:export": {"fmt": "xlsx"},
        "dashboard:export_rows": {"app_label": "customers", "model_name": "customer", "fmt": "csv"},
        "dashboard:export_list": {"app_label": "customers", "model_name": "customer", "fmt": "xlsx"},
        "dashboard:report_file": {"name": "none.pdf"},
        "engage_campaign_report": {"campaign_id": make_campaign(segment).pk},
        "feedback_survey_report": {"survey_id": create_survey(name="s", by=system_actor("t")).pk},
    }  # fmt: skip
    queries = {"segments_segment_lookup": "?kind=" + next(iter(LOOKUPS))}
    for name, pattern in iter_admin_urls():
        if name is None or name in OPEN_TO_STAFF or name.endswith(STANDARD_SUFFIXES):
            continue
        if name not in CUSTOM_URLS:
            problems[name] = f"custom admin URL {pattern} is not in the role matrix test"
            continue
        method, needed = CUSTOM_URLS[name]
        url = reverse(name if ":" in name else f"admin:{name}", kwargs=kwargs_for.get(name))
        url += queries.get(name, "")
        if method == "POST":
            response = client.post(url, "{}", content_type="application/json")
        else:
            response = client.get(url)
        expected = all(p in held for p in needed)
        if name in ("dashboard:report_file", "sales_deal_board_move") and expected:
            # No such report, no deal named in the body: allowed means 404, not 403.
            if response.status_code != 404:
                problems[name] = f"answered {response.status_code} to a role allowed to call it"
            continue
        check(problems, name, response, expected)
    return problems


# --- the API ------------------------------------------------------------------------------

# Every write operation of the API: (permission, body); paths use {customer_id} etc.
API_WRITES: dict[tuple[str, str], tuple[str, dict | None]] = {
    ("post", "/api/v1/customers"): ("customers.add_customer", {"name": "新客户"}),
    ("patch", "/api/v1/customers/{customer_id}"): ("customers.change_customer", {"city": "杭州"}),
    ("delete", "/api/v1/customers/{customer_id}"): ("customers.delete_customer", None),
    ("post", "/api/v1/customers/{customer_id}/identities"): (
        "customers.change_customer",
        {"kind": "email", "value": "new@example.com"},
    ),
    ("post", "/api/v1/segments"): (
        "segments.add_segment",
        {"name": "new", "rules": RULE},
    ),
    ("post", "/api/v1/segments/count"): (
        "segments.view_segment",
        {"rules": RULE},
    ),
    ("patch", "/api/v1/segments/{segment_id}"): ("segments.change_segment", {"name": "renamed"}),
    ("delete", "/api/v1/segments/{segment_id}"): ("segments.delete_segment", None),
    ("post", "/api/v1/segments/{segment_id}/refresh"): ("segments.change_segment", None),
    ("post", "/api/v1/privacy-requests"): ("privacy.add_privacyrequest", {"type": "export"}),
    ("post", "/api/v1/privacy-requests/{request_id}/verify"): (
        "privacy.change_privacyrequest",
        {"method": "id_document"},
    ),
    ("post", "/api/v1/privacy-requests/{request_id}/execute"): (
        "privacy.change_privacyrequest",
        None,
    ),
    ("post", "/api/v1/privacy-requests/{request_id}/reject"): (
        "privacy.change_privacyrequest",
        {"reason": "not the person"},
    ),
    # The second half's apps: objects they name by id are made fresh or are missing (an
    # allowed role then gets 404, which is not a refusal; a refused one must get 403 first).
    ("post", "/api/v1/campaigns"): (
        "engage.add_campaign",
        {"name": "c", "segment_id": 1, "subject": "s", "body": "b"},
    ),
    ("post", "/api/v1/campaigns/{campaign_id}/send"): ("engage.send_campaign", None),
    ("post", "/api/v1/journeys/{journey_id}/pause"): ("journeys.change_journey", None),
    ("post", "/api/v1/journeys/{journey_id}/resume"): ("journeys.change_journey", None),
    ("post", "/api/v1/tickets"): (
        "service.add_ticket",
        {"type": "inquiry", "subject": "退货", "body": "想退货"},
    ),
    ("patch", "/api/v1/tickets/{ticket_id}"): ("service.change_ticket", {"priority": "high"}),
    ("post", "/api/v1/tickets/{ticket_id}/replies"): (
        "service.add_ticketmessage",
        {"body": "您好"},
    ),
    ("post", "/api/v1/loyalty/members/{customer_id}"): ("loyalty.add_member", None),
    ("post", "/api/v1/loyalty/members/{customer_id}/adjustments"): (
        "loyalty.add_ledgerentry",
        {"points": 10, "reason": "goodwill"},
    ),
    ("post", "/api/v1/loyalty/rewards/{code}/redeem"): (
        "loyalty.add_redemption",
        {"customer_id": 1},
    ),
    ("post", "/api/v1/loyalty/redemptions/{redemption_id}/cancel"): (
        "loyalty.change_redemption",
        None,
    ),
    ("post", "/api/v1/loyalty/coupons/{code}/redeem"): (
        "loyalty.change_coupon",
        {"order_ref": "SO-1"},
    ),
    ("post", "/api/v1/surveys"): ("feedback.add_survey", {"name": "NPS"}),
    ("post", "/api/v1/surveys/{survey_id}/invitations"): (
        "feedback.add_invitation",
        {"send": False},
    ),
    ("post", "/api/v1/accounts/check"): ("customers.add_customer", {"name": "某公司"}),
    ("post", "/api/v1/accounts"): ("customers.add_customer", {"name": "某公司"}),
    ("patch", "/api/v1/accounts/{account_id}"): ("sales.change_accountprofile", {"city": "杭州"}),
    ("post", "/api/v1/accounts/{account_id}/claim"): ("sales.change_accountprofile", None),
    ("post", "/api/v1/contacts"): (
        "customers.add_companycontact",
        {"account_id": MISSING, "name": "联系人"},
    ),
    ("post", "/api/v1/deals"): (
        "sales.add_deal",
        {"name": "d", "account_id": MISSING, "stage_id": MISSING, "close_date": "2030-01-01"},
    ),
    ("patch", "/api/v1/deals/{deal_id}"): ("sales.change_deal", {"probability": 50}),
    ("delete", "/api/v1/deals/{deal_id}"): ("sales.delete_deal", None),
    ("post", "/api/v1/activities"): ("sales.add_activity", {"kind": "call", "subject": "回访"}),
    ("post", "/api/v1/tasks"): (
        "sales.add_task",
        {"title": "回访", "due_at": "2030-01-01T09:00:00+08:00"},
    ),
    ("patch", "/api/v1/tasks/{task_id}"): ("sales.change_task", {"done": True}),
    ("delete", "/api/v1/tasks/{task_id}"): ("sales.delete_task", None),
}


def iter_api_writes():
    """Yield (method, path) of every POST/PUT/PATCH/DELETE operation in the OpenAPI schema."""
    schema = api.get_openapi_schema()
    for path, operations in schema["paths"].items():
        for method in operations:
            if method in ("post", "put", "patch", "delete"):
                yield method, path


def fresh_targets(sales: User, n: int) -> dict[str, int]:
    """Create new objects for one request, so a delete by one role leaves others theirs."""
    customer = create_customer({"name": "目标"}, by=system_actor("tests"))
    Customer.objects.filter(pk=customer.pk).update(owner=sales)
    segment = segments.create_segment(f"target {n}", RULE, by=system_actor("test"))
    request = privacy.open_request("export", customer, channel="email", by=None)
    ticket = open_ticket(customer_id=customer.pk, subject="t", body="b", by=system_actor("tests"))
    survey = create_survey(name=f"survey {n}", by=system_actor("tests"))
    return {
        "customer_id": customer.pk,
        "segment_id": segment.pk,
        "request_id": request.pk,
        "ticket_id": ticket.pk,
        "survey_id": survey.pk,
        "account_id": customer.pk,
        # Objects that take more to make: missing, so an allowed role gets a 404.
        **dict.fromkeys(
            ("campaign_id", "journey_id", "deal_id", "task_id", "redemption_id"), MISSING
        ),
        "code": "NO-SUCH-CODE",
    }


def api_walk(role: str, user: User) -> dict[str, str]:
    held = role_perms(role)
    _, token = create_api_token(user.username, by=system_actor("tests"))
    client = TokenClient(token, raise_request_exception=False)
    sales = User.objects.get(username="sales-user")
    problems = {}
    for n, (method, path) in enumerate(iter_api_writes()):
        if (method, path) not in API_WRITES:
            problems[f"{method} {path}"] = "API write not in the role matrix test"
            continue
        needed, body = API_WRITES[(method, path)]
        ids = fresh_targets(sales, n)
        url = path.format(**ids)
        if body is not None and "type" in body:
            body = {**body, "customer_id": ids["customer_id"]}
        if body is not None and body.get("kind") == "email":
            body = {**body, "value": f"new{n}@example.com"}
        response = client.send_json(method, url, body)
        expected = needed in held
        if expected and response.status_code in (401, 403):
            problems[f"{method} {path}"] = f"refused ({response.status_code}) with {needed}"
        elif not expected and response.status_code != 403:
            problems[f"{method} {path}"] = f"answered {response.status_code} without {needed}"
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_url_action_and_api_write_follows_the_role_matrix(db, role):
    users = {r: make_user(r) for r in {role, SALES}}
    User.objects.create_superuser("root", password="x")
    world = build_world(users[SALES])
    client = ViewCaller(users[role])
    problems = admin_walk(role, client, users[role], world)
    problems.update(custom_walk(role, client, world))
    problems.update(api_walk(role, users[role]))
    assert problems == {}, "\n".join(f"{role}: {k}: {v}" for k, v in sorted(problems.items()))


def test_the_tables_name_only_operations_that_exist(db):
    """A stale line (an operation renamed or removed) would check nothing: refuse it."""
    assert set(API_WRITES) <= set(iter_api_writes())
    names = {name for name, _pattern in iter_admin_urls()}
    assert set(CUSTOM_URLS) <= names
    assert len(admin.site._registry) >= 25
