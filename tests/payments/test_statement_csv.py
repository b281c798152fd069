"""A payee's statement (CSV, and the creator's earnings page) covers every currency they earned in, each with its
own lines and totals; the ledger accounts' statement ends with the chain head of the accounts' own storefront."""

import csv
import io

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from payments.models import LedgerAccount, LedgerHead
from tests.conftest import host_client, operator_client
from tests.factories import catalog_creator, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def test_the_statement_csv_and_the_earnings_page_have_the_lines_and_totals_of_each_currency(tenant_a):
    person = member(tenant_a, Role.CREATOR)
    ada = catalog_creator(tenant_a, "Ada", user=person)
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")  # sold in CNY, the default
    tenant_a.currency = "USD"  # the operator moves the storefront to dollars
    tenant_a.save(update_fields=["currency"])
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")

    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.get(reverse("admin:payments_payout_statement", args=["creator", ada.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    # Each row as (entry kind or total, amount, currency), between the header and the chain head.
    summary = [(row[1] if row[0].isdigit() else row[0], row[4], row[5]) for row in rows[1:-1]]
    held, payable, paid = "Held (refund window)", "Payable", "Paid"
    assert summary == [
        ("Sale", "45.00", "CNY"), (held, "45.00", "CNY"), (payable, "0.00", "CNY"), (paid, "0.00", "CNY"),
        ("Sale", "45.00", "USD"), (held, "45.00", "USD"), (payable, "0.00", "USD"), (paid, "0.00", "USD"),
    ]
    assert rows[-1][0] == "chain head"

    page = host_client("alpha.test", person).get(reverse("admin:payments_payout_mine")).content.decode()
    assert "¥45.00" in page and "$45.00" in page and "<h2>USD</h2>" in page


def sell(tenant, host: str, creator: str = "Ada") -> None:
    course = catalog_item(tenant, title=f"Course by {creator}", price=10000,
                          creators=[catalog_creator(tenant, creator)])
    buy(host_client(host, member(tenant)), f"item={course.slug}")


def accounts_statement(client, accounts: list[int], **extra):
    return client.post(reverse("admin:payments_ledgeraccount_changelist"),
                       {"action": "statement_csv", "_selected_action": accounts}, **extra)


def test_the_operators_account_statement_ends_with_the_accounts_own_storefronts_head(tenant_a, tenant_b):
    sell(tenant_a, "alpha.test")
    sell(tenant_b, "beta.test")
    sell(tenant_b, "beta.test", "Bob")  # beta's chain is longer than alpha's
    with scopes_disabled():
        beta_accounts = list(LedgerAccount.objects.filter(tenant=tenant_b).values_list("pk", flat=True))
        beta_head = LedgerHead.objects.get(tenant=tenant_b)
    rows = list(csv.reader(io.StringIO(accounts_statement(operator_client(), beta_accounts).content.decode(
        "utf-8-sig"))))
    assert {row[1] for row in rows[1:-1]} == {"2", "4"}  # beta's sales, each after its course's publication
    assert rows[-1] == ["chain head", str(beta_head.sequence), "", "", "", "", beta_head.hash]


def test_accounts_of_two_storefronts_get_no_statement(tenant_a, tenant_b):
    sell(tenant_a, "alpha.test")
    sell(tenant_b, "beta.test")
    with scopes_disabled():
        both = list(LedgerAccount.objects.filter(code="platform").values_list("pk", flat=True))
    assert len(both) == 2
    response = accounts_statement(operator_client(), both, follow=True)
    assert response["Content-Type"].startswith("text/html")
    assert "Select the accounts of one storefront" in response.content.decode()
