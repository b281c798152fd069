"""The ledger pages of the admin in the team's language: the chain check's findings, the accounts' names (in lists of
accounts, of an order's entries and of an entry's postings), while the books keep the names as written."""

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from payments.models import LedgerAccount, Promoter
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_ledger import books, command_output, shop, tamper  # noqa: F401 (fixtures, used by name)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold(request):
    """Alpha's three sales and a partial refund (entries #1..#4), from the ledger tests."""
    return request.getfixturevalue("books")


def zh_team(tenant):
    client = host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def in_chinese(text) -> str:
    with translation.override("zh-hans"):
        return str(text)


def test_the_broken_chain_notice_is_in_the_teams_language_and_the_command_stays_readable(sold):
    tenant, entries = sold
    tamper("UPDATE payments_journalentry SET memo = %s WHERE id = %s", ["Sale nothing to see", entries[2].pk])
    code, output = command_output()
    assert code == 1 and "alpha: broken at entry #5: its content does not match its hash" in output
    page = zh_team(tenant).get(reverse("admin:payments_journalentry_changelist")).content.decode()
    assert "哈希链在第 #5 条分录处断开：其内容与哈希不符（写入后被改动）。" in page


def test_ledger_accounts_are_named_in_the_teams_language_and_stored_as_written(sold):
    tenant, _entries = sold
    platform, revenue, creator = (in_chinese(kind.label) for kind in (
        LedgerAccount.Kind.PLATFORM, LedgerAccount.Kind.TENANT, LedgerAccount.Kind.CREATOR))
    assert platform != "Platform fee"  # the catalog has these labels already
    page = zh_team(tenant).get(reverse("admin:payments_ledgeraccount_changelist")).content.decode()
    assert platform in page and revenue in page and f"{creator}：Lin Wei（冻结中）" in page
    assert "Platform fee" not in page and "Storefront revenue" not in page and "(held)" not in page
    with scopes_disabled():
        names = dict(LedgerAccount.objects.filter(tenant=tenant).values_list("code", "name"))
    assert names["platform"] == "Platform fee" and names["tenant"] == "Storefront revenue"


def test_an_orders_entries_and_an_entrys_postings_name_accounts_in_the_teams_language(sold):
    tenant, entries = sold
    client = zh_team(tenant)
    platform = in_chinese(LedgerAccount.Kind.PLATFORM.label)
    order_page = client.get(reverse("admin:payments_order_change", args=[entries[4].order_id])).content.decode()
    assert f"{platform} " in order_page and "Platform fee" not in order_page
    entry_page = client.get(reverse("admin:payments_journalentry_change", args=[entries[4].pk])).content.decode()
    assert platform in entry_page and "Platform fee" not in entry_page


def test_a_payees_account_says_whose_share_it_is_and_whether_it_is_held_or_payable(sold):
    tenant, _entries = sold
    with scope(tenant=tenant):
        held = LedgerAccount.objects.get(code__endswith=":held", creator__name="Ada Byron")
        clearing = LedgerAccount.objects.get(kind=LedgerAccount.Kind.CLEARING)
        payable = LedgerAccount(tenant=tenant, code=held.code.replace(":held", ":payable"), kind=held.kind,
                                currency=held.currency, name=held.name, creator=held.creator)
        promoter = Promoter.objects.get(code="LOW001")
        commission = LedgerAccount(tenant=tenant, code=f"promoter:{promoter.pk}:held", kind="promoter",
                                   currency="CNY", name=f"{promoter.user.email} (held)", promoter=promoter)
        with translation.override("en"):
            assert held.display_name == "Creator share: Ada Byron (held)"
            assert payable.display_name == "Creator share: Ada Byron (payable)"
            assert commission.display_name == "Promoter commission: LOW001 (held)"  # not their email address
            assert clearing.display_name == "Money held by a payment provider: sandbox"
            assert str(held) == "Creator share: Ada Byron (held) (CNY)"
