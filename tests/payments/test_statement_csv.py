"""A payee's statement (CSV, and the creator's earnings page) covers every currency they earned in, each with its
own lines and totals."""

import csv
import io

import pytest
from django.urls import reverse

from accounts.models import Role
from tests.conftest import host_client
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
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    # Each row as (entry kind or total, amount, currency), between the header and the chain head.
    summary = [(row[1] if row[0].isdigit() else row[0], row[4], row[5]) for row in rows[1:-1]]
    assert summary == [
        ("sale", "4500", "CNY"), ("held", "4500", "CNY"), ("payable", "0", "CNY"), ("paid", "0", "CNY"),
        ("sale", "4500", "USD"), ("held", "4500", "USD"), ("payable", "0", "USD"), ("paid", "0", "USD"),
    ]
    assert rows[-1][0] == "chain_head"

    page = host_client("alpha.test", person).get(reverse("admin:payments_payout_mine")).content.decode()
    assert "¥45.00" in page and "$45.00" in page and "<h2>USD</h2>" in page
