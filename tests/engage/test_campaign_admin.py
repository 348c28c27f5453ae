"""Back office: campaign, template, outbox and suppression lists; the report page with its charts."""

from __future__ import annotations

from django.urls import reverse

from kequn.customers.services import record_consent
from kequn.engage import services
from kequn.engage.models import Template
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.factories import make_customer

BY = system_actor("tests")


def test_lists_and_the_report_page_render(admin_client, settings):
    settings.KEQUN_EMAIL_URL = "smtp://127.0.0.1:2525"
    settings.KEQUN_EMAIL_FROM = "shop@example.com"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    people = [make_customer(email=f"page{i}@example.com") for i in range(4)]
    record_consent(people[0], "email", "marketing", True, "tests", by=BY)
    segment = Segment.objects.create(name="Report audience", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    template = services.create_template(
        name="Report", channel="email", subject_zh="你好", body_zh="<p>{{ name }}</p>", by=BY
    )
    campaign = services.create_campaign(
        name="Report", segment=segment, template=template, holdout_percent=0, by=BY
    )
    services.start_run(campaign, by=BY)
    for name in ("campaign", "template", "message", "suppression"):
        response = admin_client.get(reverse(f"admin:engage_{name}_changelist"))
        assert response.status_code == 200, name
    page = admin_client.get(reverse("admin:engage_campaign_report", args=[campaign.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "kequn-bars" in html and "kequn-uplift" in html
    assert "No consent for the channel and purpose" in html or "没有" in html


def test_a_template_with_an_unknown_field_is_refused_in_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:engage_template_add"),
        {
            "name": "Broken",
            "channel": "email",
            "purpose": "marketing",
            "subject_zh": "hi",
            "body_zh": "<p>{{ shoesize }}</p>",
        },
    )
    assert response.status_code == 200 and "shoesize" in response.content.decode()
    assert not Template.objects.filter(name="Broken").exists()


PANEL = "{% load engage_dashboard %}{% campaigns_panel %}"


def start_campaign(settings, name: str, emails: list[str]):
    """Send a campaign to consenting customers with these emails; return it."""
    settings.KEQUN_EMAIL_URL = "smtp://127.0.0.1:2525"
    settings.KEQUN_EMAIL_FROM = "shop@example.com"
    segment = Segment.objects.create(name=f"{name} audience", kind=Segment.Kind.STATIC)
    people = [make_customer(email=email) for email in emails]
    for person in people:
        record_consent(person, "email", "marketing", True, "tests", by=BY)
    set_static_members(segment, [p.pk for p in people], by=BY)
    template = services.create_template(
        name=name, channel="email", subject_zh="你好", body_zh="<p>hi</p>", by=BY
    )
    campaign = services.create_campaign(
        name=f"{name} campaign", segment=segment, template=template, by=BY
    )
    services.start_run(campaign, by=BY)
    return campaign


def test_the_dashboard_panel_lists_sent_campaigns_to_who_may_read_them(db, rf, settings):
    from django.contrib.auth.models import AnonymousUser, User
    from django.template import Context, Template

    campaign = start_campaign(settings, "Panel", ["panel@example.com"])
    panel = Template(PANEL)
    request = rf.get("/admin/")
    request.user = User.objects.create_superuser("boss", password="x")
    html = panel.render(Context({"request": request}))
    assert (
        "Panel campaign" in html
        and reverse("admin:engage_campaign_report", args=[campaign.pk]) in html
    )
    request.user = AnonymousUser()
    assert "Panel campaign" not in panel.render(Context({"request": request}))


def test_the_dashboard_panel_reads_reports_stored_by_the_dashboard_refresh(
    db, rf, settings, django_assert_max_num_queries
):
    from django.contrib.auth.models import User
    from django.template import Context, Template

    from kequn.dashboard.services import refresh_dashboard
    from kequn.engage.models import Message

    emails = [f"stored{n}@example.com" for n in range(5)]
    campaign = start_campaign(settings, "Stored", emails)
    panel = Template(PANEL)
    request = rf.get("/admin/")
    request.user = User.objects.create_superuser("boss", password="x")

    def sent_cell() -> str:
        html = panel.render(Context({"request": request}))
        return html.split("Stored campaign</a></th>", 1)[1].split("</td>", 1)[0]

    first = sent_cell()  # a campaign new to the panel gets its report at once
    assert first.endswith(">0")  # nothing sent yet
    messages = Message.objects.filter(campaign=campaign).update(status=Message.Status.SENT)
    assert messages  # some were not held out
    with django_assert_max_num_queries(3):  # the stored report: no attribution per view
        assert sent_cell() == first
    refresh_dashboard(by=BY)
    assert sent_cell().endswith(f">{messages}")


def test_views_during_a_panel_computation_show_the_stored_reports(
    db, rf, settings, django_assert_max_num_queries
):
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.template import Context, Template

    from kequn.engage import selectors

    older = start_campaign(settings, "Older", ["older@example.com"])
    selectors.store_dashboard_reports()
    start_campaign(settings, "Newer", ["newer@example.com"])
    panel = Template(PANEL)
    request = rf.get("/admin/")
    request.user = User.objects.create_superuser("boss", password="x")
    # Another view is computing the reports the new campaign needs (seconds at 1M).
    assert cache.add(selectors.PANEL_LOCK_KEY, True, 60)
    with django_assert_max_num_queries(4):  # no attribution while it does
        html = panel.render(Context({"request": request}))
    assert "Older campaign" in html and "Newer campaign" not in html
    assert 'role="status"' in html  # the note that a newer report is being prepared
    assert selectors.read_dashboard_reports()[1] is True
    # Once the computing view is done, the panel is whole and the note gone.
    cache.delete(selectors.PANEL_LOCK_KEY)
    html = panel.render(Context({"request": request}))
    assert "Older campaign" in html and "Newer campaign" in html
    assert 'role="status"' not in html
    assert cache.get(selectors.PANEL_LOCK_KEY) is None  # released for the next new campaign
    assert [r["id"] for r in cache.get(selectors.PANEL_KEY)][-1] == older.pk
