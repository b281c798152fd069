"""The team reads amounts in the admin as money in the order's (or the storefront's) currency, never as raw minor
units, and the refund form asks for amounts as they are shown, in the order's currency."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from payments.models import Coupon, Order
from tests.conftest import host_client
from tests.factories import TenantFactory, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def readonly_value(page: str, field: str) -> str:
    return re.search(r'<div class="readonly">([^<]*)</div>', page[page.index(f"field-{field}"):]).group(1).strip()


def cell_value(page: str, field: str) -> str:
    """A read-only cell of an inline's row."""
    return re.search(rf'<td class="field-{field}">\s*<p>([^<]*)</p>', page).group(1).strip()


def sold(tenant, host: str, price: int) -> Order:
    course = catalog_item(tenant, title="Course", price=price)
    buy(host_client(host, member(tenant)), f"item={course.slug}")
    with scopes_disabled():
        return Order.objects.get(tenant=tenant)


def test_the_teams_order_page_shows_its_amounts_as_money(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()
    for field, shown in (("subtotal_display", "¥99.00"), ("discount_display", "¥0.00"), ("tax_display", "¥0.00"),
                         ("total_display", "¥99.00"), ("refunded_display", "¥0.00")):
        assert readonly_value(page, field) == shown, field
    lines = page[page.index('id="lines-group"'):]
    assert cell_value(lines, "unit_price_display") == "¥99.00"
    assert cell_value(lines, "total_display") == "¥99.00"
    payments = page[page.index('id="payments-group"'):]
    assert cell_value(payments, "amount_display") == "¥99.00"
    assert ">9900<" not in page


def test_the_payment_on_the_order_page_is_not_named_by_its_minor_units(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()
    assert "9900 CNY" not in page  # the payment's name, shown at the head of its row


@pytest.mark.parametrize(("currency", "price", "help_text", "refused"), [
    ("CNY", 1250, "In CNY as amounts are shown: 12.50, not 1250.", None),
    ("JPY", 1250, "In whole JPY, as amounts are shown: 1250.", "12.50"),
    ("KWD", 12500, "In KWD as amounts are shown: 12.500, not 12500.", None),
])
def test_the_refund_form_asks_for_the_amount_as_the_orders_currency_shows_it(currency, price, help_text, refused):
    shop = TenantFactory(slug="shop", name="Shop", domain="shop.test", currency=currency)
    order = sold(shop, "shop.test", price)
    owner = host_client("shop.test", member(shop, Role.OWNER, mfa=True))
    url = reverse("admin:payments_order_refund", args=[order.pk])
    page = owner.get(url).content.decode()
    assert help_text in page
    if refused:
        response = owner.post(url, {"amount": refused, "seen": 0})
        assert "Too many decimals for this currency." in response.content.decode()


def test_the_coupon_list_shows_a_fixed_value_as_money_and_a_percentage_as_one(tenant_a):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="FIVE", kind="fixed", value=500)
        Coupon.objects.create(tenant=tenant_a, code="TWENTY", kind="percent", value=2000)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_coupon_changelist")).content.decode()
    assert re.findall(r'<td class="field-value_display">([^<]*)</td>', page) == ["¥5.00", "20%"]
    form = owner.get(reverse("admin:payments_coupon_add")).context["adminform"].form
    assert form.fields["value"].help_text == (
        "A percentage as its percent: 20 for 20%, 12.5 for 12.5%. "
        "A fixed amount as prices are shown: 10.00 for ¥10.00.")
