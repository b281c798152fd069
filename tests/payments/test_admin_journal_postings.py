"""An entry's page in the admin names each of its postings by its account and amount, as the order page lists them,
rather than by its database id ("Posting object (65)")."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from payments.models import JournalEntry, Posting
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_admin_amounts_shown import sold

pytestmark = pytest.mark.django_db


def test_an_entrys_postings_are_named_by_account_and_amount(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with scope(tenant=tenant_a):
        entry = JournalEntry.objects.get(order=order, kind=JournalEntry.Kind.SALE)
    page = owner.get(reverse("admin:payments_journalentry_change", args=[entry.pk])).content.decode()
    shown = [" ".join(name.split()) for name in re.findall(r'<td class="original">\s*<p>(.*?)</p>', page, re.S)]
    assert "Posting object" not in page
    # Debits positive, credits negative, as the ledger books them.
    assert shown == ["Money held by a payment provider: sandbox ¥99.00", "Platform fee -¥9.90",
                     "Storefront revenue -¥89.10"]


def test_a_posting_reads_as_its_accounts_name_and_the_amount_as_money(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    with scope(tenant=tenant_a):
        fee = Posting.objects.get(entry__order=order, account__kind="platform")
        assert str(fee) == "Platform fee -¥9.90"
