"""A storefront's page in the admin: the operator's currency and colour checks, and what its owner sees of the
settings only the operator changes."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from catalog.models import Bundle
from marketplace.models import Tenant, contrast_with_white
from payments.models import Coupon, SubscriptionPlan
from tests.conftest import host_client, operator_client
from tests.factories import TenantFactory, catalog_item, member
from tests.payments.test_checkout import buy
from tests.payments.test_partners import operator_tenant_form

pytestmark = pytest.mark.django_db


def errors_of(response, field: str) -> str:
    assert response.status_code == 200, f"saved: {response.status_code}"
    return " ".join(response.context["adminform"].form.errors.get(field, []))


def test_the_currency_of_a_storefront_that_has_sold_does_not_change(db):
    """¥3,000 would become $30.00, its orders, ledger and payouts are in yen: the operator is told why not."""
    sakura = TenantFactory(slug="sakura", name="Sakura Juku", domain="sakura.test", currency="JPY")
    item = catalog_item(sakura, title="Japanese for Beginners", price=3000)
    buy(host_client("sakura.test", member(sakura)), f"item={item.slug}")
    response = operator_client().post(reverse("admin:marketplace_tenant_change", args=[sakura.pk]),
                                      operator_tenant_form(sakura, currency="USD"))
    assert errors_of(response, "currency") == ("This storefront has orders in JPY; its currency can no longer "
                                               "change. Prices are not converted.")
    sakura.refresh_from_db()
    assert sakura.currency == "JPY"
    assert "¥3,000" in host_client("sakura.test").get(f"/item/{item.slug}/").content.decode()


def test_a_currency_change_is_refused_while_a_price_could_not_be_charged_in_the_new_currency(tenant_a):
    """Prices keep their numbers: ¥9.99 (999 fen) would be KD 0.999, which no card network charges in whole fils."""
    catalog_item(tenant_a, title="Tea", price=999)
    catalog_item(tenant_a, title="Coffee", price=1005)
    catalog_item(tenant_a, title="Water", price=1000)
    with scopes_disabled():
        Bundle.objects.create(tenant=tenant_a, title="Drinks", slug="drinks", price=1999)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Monthly", slug="monthly", price=2000)
        Coupon.objects.create(tenant=tenant_a, code="LESS", kind="fixed", value=105)
        Coupon.objects.create(tenant=tenant_a, code="PCT", kind="percent", value=1234)  # basis points, not money
    operator = operator_client()
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    message = errors_of(operator.post(change, operator_tenant_form(tenant_a, currency="KWD")), "currency")
    assert message == ("KWD is charged in steps of KD 0.010, and 2 item prices, 1 bundle price, 1 fixed coupon here "
                       "would not be: correct them first. Prices are not converted.")
    tenant_a.refresh_from_db()
    assert tenant_a.currency == "CNY"

    # In dollars every one of them can be charged: allowed, and ¥10.00 is now $10.00.
    assert operator.post(change, operator_tenant_form(tenant_a, currency="USD")).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.currency == "USD"
    assert "$10.00" in host_client("alpha.test").get("/browse/").content.decode()


def test_the_currency_field_says_prices_keep_their_numbers(tenant_a):
    page = operator_client().get(reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])).content.decode()
    assert "¥99.00 becomes $99.00" in page


def test_the_owner_sees_the_storefronts_domains_and_currency_and_whom_to_ask_for_a_domain(tenant_a):
    with scopes_disabled():
        tenant_a.domains.create(host="learn.alpha.example")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    page = owner.get(change).content.decode()
    hosts = re.search(r'field-hosts.*?<div class="readonly">([^<]*)</div>', page, re.S)
    assert hosts and hosts.group(1) == "alpha.test, learn.alpha.example", page
    assert "Your own domain: ask the platform operator to add it." in page
    assert re.search(r'field-currency.*?<div class="readonly">CNY</div>', page, re.S)
    assert 'name="currency"' not in page and 'name="domains-' not in page

    response = owner.post(change, {"name": tenant_a.name, "primary_color": tenant_a.primary_color,
                                   "default_language": "en", "currency": "USD", "domains-0-host": "evil.example"})
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.currency == "CNY"
    assert sorted(tenant_a.domains.values_list("host", flat=True)) == ["alpha.test", "learn.alpha.example"]


def test_the_slug_help_shows_the_development_host_it_makes(tenant_a):
    """The admin shows help text as HTML: "<slug>.localhost" read as a tag showed ".localhost"."""
    for page in (operator_client().get(reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])),
                 operator_client(email="op2@zhiku.test").get(reverse("admin:marketplace_tenant_add"))):
        help_text = re.search(r"Short name used in[^<]*", page.content.decode()).group(0)
        assert "acme.localhost" in help_text, help_text


def test_a_primary_colour_white_button_text_cannot_be_read_on_is_refused(tenant_a):
    """Buttons are white text on the primary colour and links that colour on white: #facc15 (yellow) gives white a
    contrast of 1.53:1, far under the 4.5:1 of WCAG 1.4.3."""
    with pytest.raises(ValidationError) as refused:
        Tenant(slug="sunny", name="Sunny School", primary_color="#facc15").full_clean()
    assert "1.53:1" in str(refused.value.message_dict["primary_color"])

    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:marketplace_tenant_change", args=[tenant_a.pk]),
                          {"name": tenant_a.name, "primary_color": "#facc15", "default_language": "en"})
    assert "contrast of only 1.53:1" in errors_of(response, "primary_color")
    tenant_a.refresh_from_db()
    assert tenant_a.primary_color == "#2563eb"


@pytest.mark.parametrize("colour", ["#2563eb", "#0f766e", "#be123c", "#000000"])
def test_the_default_and_demo_colours_are_readable(colour):
    assert contrast_with_white(colour) >= 4.5
    Tenant(slug="fine", name="Fine", primary_color=colour).full_clean()

