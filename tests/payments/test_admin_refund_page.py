"""The admin's refund page reads as part of its order's pages (one heading, the way back through the orders list and
the order), and the order page writes its refunds' times as it writes its other times."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django_scopes import scopes_disabled

from accounts.models import Role
from payments.models import Refund
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_admin_amounts_shown import readonly_value, sold

pytestmark = pytest.mark.django_db


def test_the_refund_page_has_one_heading_and_leads_back_through_the_orders_to_the_order(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_order_refund", args=[order.pk])).content.decode()
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", page, re.S) == [f"Refund {order.number}"]
    crumbs = page[page.index('class="breadcrumbs"'):]
    crumbs = " ".join(crumbs[:crumbs.index("</div>")].split())
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', crumbs) == [
        (reverse("admin:index"), "Home"),
        (reverse("admin:app_list", args=["payments"]), "Payments"),
        (reverse("admin:payments_order_changelist"), "Orders"),
        (reverse("admin:payments_order_change", args=[order.pk]), order.number),
    ]
    assert crumbs.endswith("&rsaquo; Refund")


def test_the_order_page_writes_a_refunds_time_as_its_other_times_in_the_storefronts_zone(tenant_a):
    tenant_a.time_zone = "Asia/Shanghai"
    tenant_a.save(update_fields=["time_zone"])
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    refunded = owner.post(reverse("admin:payments_order_refund", args=[order.pk]),
                          {"amount": "10.00", "reason": "late", "seen": 0, "confirm": "1"})
    assert refunded.status_code == 302
    with scopes_disabled():
        refund = Refund.objects.get(payment__order=order)
        order.refresh_from_db()
    page = owner.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()

    with translation.override("en"):
        def shown(moment) -> str:
            return date_format(timezone.localtime(moment, ZoneInfo("Asia/Shanghai")), "DATETIME_FORMAT")

        assert readonly_value(page, "paid_at") == shown(order.paid_at)  # how the page writes a time
        refunds = page[page.index("field-refunds"):]
        assert f"<div>{shown(refund.created_at)}: ¥10.00 refunded late</div>" in refunds


def test_a_refund_is_confirmed_before_money_moves_and_a_wrong_amount_is_refused_at_the_field(tenant_a):
    order = sold(tenant_a, "alpha.test", 9900)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    url = reverse("admin:payments_order_refund", args=[order.pk])

    too_much = owner.post(url, {"amount": "99.01", "seen": 0}).content.decode()
    assert "That is more than is left to refund." in too_much and "Yes, refund" not in too_much

    page = owner.post(url, {"amount": "40.00", "seen": 0, "reason": "late"}).content.decode()
    assert f"Refund ¥40.00 of order {order.number}?" in page
    assert "A part of the ¥99.00 left: the learner keeps their access." in page
    assert "The payment provider (sandbox) pays it back." in page and "Reason: late" in page
    assert 'value="Yes, refund ¥40.00"' in page
    assert f'href="{reverse("admin:payments_order_change", args=[order.pk])}" class="button cancel-link"' in page
    with scopes_disabled():
        assert not Refund.objects.exists()  # asked, not done

    # The confirmation sends back what was typed, as it was typed.
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    assert {key: hidden[key] for key in ("amount", "reason", "seen", "confirm")} == {
        "amount": "40.00", "reason": "late", "seen": "0", "confirm": "1"}
    assert owner.post(url, hidden).status_code == 302
    with scopes_disabled():
        assert Refund.objects.get().amount == 4000

    whole = owner.post(url, {"amount": "59.00", "seen": 4000, "paid_outside": "on"}).content.decode()
    assert "the order is refunded in full, and the access it still gives ends now" in whole
    assert "It is only booked: you paid the money back outside the payment provider." in whole
