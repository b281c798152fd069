"""Statements as a spreadsheet opens them: a UTF-8 byte-order mark (Excel reads Chinese right), headers in the team's
language, amounts in major units next to their currency, and times in the active time zone."""

import csv
import io
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from payments.models import JournalEntry, LedgerAccount
from tests.conftest import host_client
from tests.factories import TenantFactory, catalog_creator, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def read(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


@pytest.fixture
def sale(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    with scopes_disabled():
        entry = JournalEntry.objects.get(tenant=tenant_a, kind="sale")
    return ada, entry


def test_a_payees_statement_is_in_major_units_and_local_time(tenant_a, sale):
    tenant_a.time_zone = "Asia/Shanghai"  # the storefront's clock
    tenant_a.save(update_fields=["time_zone"])
    ada, entry = sale
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    rows = read(owner.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk])))
    assert rows[0] == ["entry", "kind", "time (Asia/Shanghai)", "memo", "amount", "currency", "entry hash"]
    line = rows[1]
    assert (line[1], line[4], line[5]) == ("Sale", "45.00", "CNY")
    local = entry.created_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert line[2] == local.strftime("%Y-%m-%d %H:%M:%S")


def test_a_yen_statement_has_no_decimals_and_a_dinar_one_three(tenant_a):
    for slug, currency, price, shown in (("yen", "JPY", 1000, "450"), ("dinar", "KWD", 10000, "4.500")):
        shop = TenantFactory(slug=slug, name=slug, domain=f"{slug}.test", currency=currency)
        ada = catalog_creator(shop, "Ada")
        course = catalog_item(shop, title="Course", price=price, creators=[ada])
        buy(host_client(f"{slug}.test", member(shop)), f"item={course.slug}")
        owner = host_client(f"{slug}.test", member(shop, Role.OWNER, mfa=True))
        rows = read(owner.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk])))
        assert (rows[1][4], rows[1][5]) == (shown, currency)


def test_the_headers_are_in_the_teams_language(tenant_a, sale):
    ada, _entry = sale
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    owner.cookies["django_language"] = "zh-hans"
    rows = read(owner.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk])))
    assert "金额" in rows[0] and "币种" in rows[0] and "amount" not in rows[0]


def test_the_ledger_accounts_statement_is_in_major_units(tenant_a, sale):
    with scopes_disabled():
        platform = LedgerAccount.objects.get(tenant=tenant_a, code="platform")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    rows = read(owner.post(reverse("admin:payments_ledgeraccount_changelist"),
                           {"action": "statement_csv", "_selected_action": [platform.pk]}))
    assert rows[0][4] == "amount" and (rows[1][0], rows[1][4], rows[1][5]) == ("platform", "-10.00", "CNY")
