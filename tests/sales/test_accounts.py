"""Accounts: the duplicate check (撞单) by name, phone, credit code and domain; contacts; scopes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kequn.customers.models import CompanyContact, Customer
from kequn.customers.services import create_customer
from kequn.sales import services
from kequn.sales.access import get_visible_owner_ids
from kequn.sales.models import AccountProfile, BuyingRole, Team
from tests.sales.helpers import SYSTEM, make_account, make_rep

pytestmark = pytest.mark.django_db

CODE = services.make_credit_code("91440300MA5ABCDEF")


def test_credit_code_checksum_and_domain_normalisation():
    assert services.normalize_credit_code(CODE.lower()) == CODE
    broken = CODE[:-1] + ("0" if CODE[-1] != "0" else "1")
    with pytest.raises(ValidationError, match="check character"):
        services.normalize_credit_code(broken)
    with pytest.raises(ValidationError, match="18 characters"):
        services.normalize_credit_code("123")
    assert services.normalize_domain("https://www.Acme.CN/about") == "acme.cn"
    assert services.normalize_company_name("深圳华强 有限公司") == services.normalize_company_name(
        "深圳华强"
    )
    assert services.normalize_company_name("ACME Co., Ltd.") == "acme"


def test_duplicate_by_name_warns_and_confirm_creates():
    rep, other = make_rep(), make_rep()
    make_account(other, name="深圳华强电子有限公司")
    data = services.AccountInput(name="深圳华强电子")
    with pytest.raises(services.DuplicateAccountError, match="an account of another rep"):
        services.create_account(data, by=rep)
    created = services.create_account(data, by=rep, confirm=True)
    assert created.owner_id == rep.pk
    assert AccountProfile.objects.filter(customer=created).exists()


def test_duplicate_by_phone_and_domain_names_a_visible_account():
    rep = make_rep()
    mine = make_account(rep, name="甲公司", phone="0755-88886666", domain="jia.example.cn")
    for data in (
        services.AccountInput(name="乙", phone="+86 755 8888 6666"),
        services.AccountInput(name="丙", domain="http://www.jia.example.cn"),
    ):
        with pytest.raises(services.DuplicateAccountError, match=f"account #{mine.pk} has"):
            services.create_account(data, by=rep)


def test_same_credit_code_is_always_refused():
    make_account(name="一号", credit_code=CODE)
    with pytest.raises(ValidationError, match="cannot be created twice"):
        services.create_account(
            services.AccountInput(name="完全不同", credit_code=CODE), by=SYSTEM, confirm=True
        )
    assert Customer.objects.filter(name="完全不同").count() == 0


def test_contact_of_another_reps_account_is_refused():
    rep, other = make_rep(), make_rep()
    theirs = make_account(other)
    link = services.create_contact(theirs, by=SYSTEM, name="王经理", title="CTO", role="decision")
    assert BuyingRole.objects.get(link=link).role == "decision"
    assert Customer.objects.get(pk=link.contact_id).owner_id == other.pk
    mine = make_account(rep)
    with pytest.raises(ValidationError, match="belongs to another rep's account"):
        services.add_contact(mine, link.contact, by=rep)
    assert not CompanyContact.objects.filter(company=mine).exists()


def test_unowned_contact_may_be_linked_and_takes_the_accounts_owner():
    rep = make_rep()
    mine = make_account(rep)
    person = create_customer({"name": "李工"}, by=SYSTEM)
    services.add_contact(mine, person, by=rep, role="user")
    person.refresh_from_db()
    assert person.owner_id == rep.pk
    with pytest.raises(ValidationError, match="role"):
        services.add_contact(mine, person, by=rep, role="boss")


def test_manager_sees_the_team_and_sub_teams():
    manager, rep, sub_rep, outsider = make_rep(), make_rep(), make_rep(), make_rep()
    team = Team.objects.create(name="华南", manager=manager)
    team.members.add(rep)
    sub = Team.objects.create(name="深圳", parent=team)
    sub.members.add(sub_rep)
    assert get_visible_owner_ids(manager) == {manager.pk, rep.pk, sub_rep.pk}
    assert get_visible_owner_ids(rep) == {rep.pk}
    assert outsider.pk not in get_visible_owner_ids(manager)


def test_parent_company_cannot_loop():
    parent = make_account()
    branch = make_account()
    services.update_account(branch, parent_id=parent.pk, by=SYSTEM)
    with pytest.raises(ValidationError, match="own parent"):
        services.update_account(parent, parent_id=branch.pk, by=SYSTEM)
