"""Each security alert rule raises on what it watches, once, and not on ordinary use."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from kequn.conf import ConfigError
from kequn.monitoring.config import AlertConfig, parse_alert_config
from kequn.monitoring.models import Alert
from kequn.monitoring.services import evaluate_rules
from kequn.security import roles
from kequn.security.actors import system_actor
from kequn.security.audit import guard
from kequn.security.audit import services as audit
from kequn.security.audit.models import AuditEntry
from kequn.security.keyring.services import DecryptionError, decrypt
from kequn.security.tasks import nightly_backup_task

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday that is a working day in China, at 10:00 local time.
WORKDAY_MORNING = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
BY = system_actor("tests")


@pytest.fixture
def clock(monkeypatch):
    """Return at(moment): a context in which Django's clock (and so audit entries) reads moment."""

    @contextmanager
    def at(moment: datetime):
        monkeypatch.setattr(timezone, "now", lambda: moment)
        try:
            yield
        finally:
            monkeypatch.undo()

    return at


@pytest.fixture
def quiet(tmp_path, settings):
    """Turn off the rules a test does not look at (backups present, chain checked elsewhere)."""
    backups = tmp_path / "backups"
    backups.mkdir()
    settings.KEQUN_ALERTS_CONFIG = ""
    return AlertConfig(
        audit_verify_hours=0, backup_max_age_hours=24 * 365 * 10, email_administrators=False
    )


def no_backup_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if not a.rule.startswith("backup")]


def make_user(name: str, role: str) -> User:
    user = User.objects.create_user(name, password="x", email=f"{name}@corp.example")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def request_from(ip: str, agent: str = "Firefox"):
    request = RequestFactory().get("/admin/", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    return request


def view(user: User, count: int, ip: str = "10.0.0.5") -> AuditEntry:
    detail = {"via": "api", "fields": ["phone"], "count": count, "customers": [1, 2]}
    return audit.record_event(
        audit.VIEW_PERSONAL,
        actor=user,
        target_type="customers.customer",
        detail=detail,
        request=request_from(ip),
    )


@pytest.mark.django_db
def test_unmasked_volume_against_the_users_own_baseline(clock, quiet):
    steady = make_user("steady", roles.SERVICE)
    busy = make_user("busy", roles.SERVICE)
    for day in range(1, 6):  # five ordinary working hours in the last days
        with clock(WORKDAY_MORNING - timedelta(days=day)):
            view(steady, 20)
            view(busy, 300)
    now = WORKDAY_MORNING + timedelta(minutes=30)
    with clock(WORKDAY_MORNING + timedelta(minutes=10)):
        spike = [view(steady, 400), view(steady, 400)]  # 800 vs a usual 20
        view(busy, 900)  # 900 vs a usual 300: under five times
    with clock(now):
        raised = no_backup_alerts(evaluate_rules(by=BY, now=now, config=quiet))
    assert [(a.rule, a.subject_user) for a in raised] == [("unmasked_volume", "steady")]
    alert = raised[0]
    assert alert.details["records"] == 800 and alert.details["baseline"] == "user"
    assert alert.audit_entries == [e.sequence for e in spike]
    assert alert.subject_ip == "10.0.0.5"
    # Evaluated again (the next run, another worker): no second alert for the same finding.
    with clock(now + timedelta(minutes=5)):
        assert (
            no_backup_alerts(evaluate_rules(by=BY, now=now + timedelta(minutes=5), config=quiet))
            == []
        )


@pytest.mark.django_db
def test_unmasked_volume_of_a_new_user_is_compared_with_the_role(clock, quiet):
    for day in range(1, 4):
        with clock(WORKDAY_MORNING - timedelta(days=day)):
            view(make_user(f"colleague{day}", roles.SALES), 50)
    newcomer = make_user("newcomer", roles.SALES)
    with clock(WORKDAY_MORNING):
        view(newcomer, 600)
        raised = no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=quiet))
    assert [a.subject_user for a in raised] == ["newcomer"]
    assert raised[0].details["baseline"] == "role" and raised[0].details["role"] == roles.SALES


def fail_login(username: str, ip: str) -> AuditEntry:
    return audit.record_event(
        audit.LOGIN_FAILED,
        detail={"username": username, "known_user": False},
        request=request_from(ip),
    )


@pytest.mark.django_db
def test_failed_logins_across_user_names_and_across_addresses(clock, quiet):
    config = AlertConfig(
        **{**quiet.__dict__, "failed_usernames_per_ip": 4, "failed_ips_per_username": 3}
    )
    with clock(WORKDAY_MORNING):
        spray = [fail_login(f"guess{i}", "203.0.113.9") for i in range(4)]
        for i in range(2):
            fail_login("boss", f"198.51.100.{i}")  # two addresses: under the threshold
        fail_login("typo", "10.0.0.7")
        raised = no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=config))
        assert [(a.rule, a.subject_ip) for a in raised] == [("login_spray", "203.0.113.9")]
        assert raised[0].audit_entries == [e.sequence for e in spray]
        fail_login("boss", "198.51.100.7")
        raised = no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=config))
    assert [(a.rule, a.subject_user) for a in raised] == [("login_distributed", "boss")]
    assert raised[0].details["failures"] == 3


@pytest.mark.django_db
def test_personal_data_outside_working_hours(clock, quiet):
    night_owl = make_user("owl", roles.SERVICE)
    with clock(WORKDAY_MORNING):
        view(night_owl, 1)
        assert no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=quiet)) == []
    late = WORKDAY_MORNING.replace(hour=23, minute=10)
    with clock(late):
        entry = view(night_owl, 3)
        raised = no_backup_alerts(evaluate_rules(by=BY, now=late, config=quiet))
    assert [(a.rule, a.subject_user) for a in raised] == [("after_hours", "owl")]
    assert raised[0].audit_entries == [entry.sequence]
    # National Day is a day off in China's calendar, even at 10:00.
    holiday = datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)
    with clock(holiday):
        view(night_owl, 1)
        raised = no_backup_alerts(evaluate_rules(by=BY, now=holiday, config=quiet))
    assert [a.rule for a in raised] == ["after_hours"]
    relaxed = AlertConfig(
        **{
            **quiet.__dict__,
            "working_days": "all",
            "working_hours": parse_alert_config({"working_hours": "00:00-24:00"}).working_hours,
        }
    )
    with clock(holiday + timedelta(days=1)):
        view(night_owl, 1)
        assert (
            no_backup_alerts(evaluate_rules(by=BY, now=holiday + timedelta(days=1), config=relaxed))
            == []
        )


@pytest.mark.django_db
def test_administrator_from_a_new_address_or_browser(clock, quiet):
    admin = make_user("chief", roles.ADMINISTRATOR)
    rep = make_user("rep", roles.SALES)

    def login(user, ip, agent="Firefox"):
        return audit.record_event(
            audit.LOGIN, actor=user, target=user, request=request_from(ip, agent)
        )

    with clock(WORKDAY_MORNING - timedelta(days=3)):
        login(admin, "10.0.0.2")  # the first login: nothing to compare with
        login(rep, "10.0.0.3")
    with clock(WORKDAY_MORNING):
        login(admin, "10.0.0.2")
        login(rep, "192.0.2.50")  # not an administrator
        assert no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=quiet)) == []
        new = login(admin, "192.0.2.80")
        other_browser = login(admin, "10.0.0.2", agent="curl/8.0")
        raised = no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=quiet))
    assert [(a.rule, a.subject_ip, a.audit_entries) for a in raised] == [
        ("admin_new_address", "192.0.2.80", [new.sequence]),
        ("admin_new_address", "10.0.0.2", [other_browser.sequence]),
    ]
    assert raised[1].details == {"new_address": False, "new_device": True}


@pytest.mark.django_db
def test_audit_chain_failing_verification(clock, quiet):
    config = AlertConfig(**{**quiet.__dict__, "audit_verify_hours": 24})
    user = make_user("someone", roles.SERVICE)
    with clock(WORKDAY_MORNING):
        entries = [view(user, 1) for _ in range(3)]
        assert no_backup_alerts(evaluate_rules(by=BY, now=WORKDAY_MORNING, config=config)) == []
    with connection.cursor() as cursor:  # someone edits the trail behind the application
        statements = {"sqlite": guard.SQLITE_DROP, "postgresql": guard.POSTGRES_DROP}
        for sql in statements[connection.vendor]:
            cursor.execute(sql)
        cursor.execute(
            f"UPDATE {AuditEntry._meta.db_table} SET actor_username = %s WHERE sequence = %s",
            ["nobody", entries[1].sequence],
        )
    later = WORKDAY_MORNING + timedelta(hours=1)
    with clock(later):  # verified once a day: not again an hour later
        assert no_backup_alerts(evaluate_rules(by=BY, now=later, config=config)) == []
    next_day = WORKDAY_MORNING + timedelta(days=1)
    with clock(next_day):
        raised = no_backup_alerts(evaluate_rules(by=BY, now=next_day, config=config))
    assert [(a.rule, a.severity) for a in raised] == [("audit_chain", "critical")]
    assert raised[0].audit_entries == [entries[1].sequence]


@pytest.mark.django_db
def test_backup_missing_and_backup_failed(clock, quiet, tmp_path, monkeypatch):
    monkeypatch.setenv("KEQUN_BACKUP_DIR", str(tmp_path / "backups"))
    config = AlertConfig(**{**quiet.__dict__, "backup_max_age_hours": 26})
    result = nightly_backup_task.enqueue()
    DBTaskResult.objects.filter(pk=result.id).update(
        status="FAILED",
        finished_at=timezone.now(),
        traceback="Traceback ...\nBackupError: No space left on device: /backups/x.kqb",
    )
    now = timezone.now()
    raised = evaluate_rules(by=BY, now=now, config=config)
    assert sorted(a.rule for a in raised) == ["backup_failed", "backup_missing"]
    failed = next(a for a in raised if a.rule == "backup_failed")
    assert "No space left on device" in failed.title
    (tmp_path / "backups" / "kequn-20261202-020000.kqbackup").write_bytes(b"not a backup")
    assert evaluate_rules(by=BY, now=now, config=config) == []  # the same day: raised once


@pytest.mark.django_db
def test_decryption_errors(clock, quiet):
    with pytest.raises(DecryptionError):
        decrypt("customers.customer.phone", "kq1:1:bm90LWEtdmFsaWQtY2lwaGVydGV4dC1hdC1hbGw=")
    with pytest.raises(DecryptionError):
        decrypt("customers.customer.phone", "kq1:x")
    raised = no_backup_alerts(evaluate_rules(by=BY, config=quiet))
    assert [(a.rule, a.details["failures"]) for a in raised] == [("decryption_errors", 2)]
    assert no_backup_alerts(evaluate_rules(by=BY, config=quiet)) == []


def test_alert_settings_refuse_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'volume_limit'"):
        parse_alert_config({"volume_limit": 3})
    with pytest.raises(ConfigError, match="working_hours"):
        parse_alert_config({"working_hours": "20:00-08:00"})
    with pytest.raises(ConfigError, match="failed_ips_per_username must be a whole number"):
        parse_alert_config({"failed_ips_per_username": "5"})
    with pytest.raises(ConfigError, match="webhook_url"):
        parse_alert_config({"webhook_url": "ftp://x"})
    path = tmp_path / "alerts.toml"
    path.write_text('volume_factor = 3\nworking_days = "weekdays"\nemails = ["sec@corp.example"]\n')
    from kequn.monitoring.config import load_alert_config

    config = load_alert_config(path)
    assert (config.volume_factor, config.working_days, config.emails) == (
        3.0,
        "weekdays",
        ("sec@corp.example",),
    )
    path.write_text("window_minutes = [")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load_alert_config(path)
