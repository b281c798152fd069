"""An order's page is a receipt only once the order was paid (refunded too: it was paid); a declined, cancelled or
unpaid one is headed as the order it is."""

import re

import pytest
from django_scopes import scope

from payments import services
from payments.models import Order
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def heading_and_title(page: str) -> tuple[str, str]:
    heading = re.search(r"<h1>(.*?)</h1>", page, re.S).group(1).strip()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1).strip()
    return heading, title


@pytest.mark.parametrize(("action", "heading"), [("fail", "Order"), ("cancel", "Order"), ("pay", "Receipt")])
def test_the_order_page_is_a_receipt_only_when_paid(tenant_a, action, heading):
    course = catalog_item(tenant_a, title="Paid Course", price=10000)
    learner = member(tenant_a)
    page = buy(host_client("alpha.test", learner), f"item={course.slug}", action=action).content.decode()
    with scope(tenant=tenant_a):
        number = Order.objects.get(user=learner).number
    shown, title = heading_and_title(page)
    assert shown == f"{heading} {number}"
    assert title.startswith(f"{heading} {number}")
    if action != "pay":
        assert "Receipt" not in page


def test_a_refunded_order_stays_a_receipt_and_an_unpaid_one_is_an_order(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", price=10000)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        services.refund_create(payment=order.payments.get(), amount=order.total, actor=None)
        order.refresh_from_db()
        assert order.status == Order.Status.REFUNDED
    assert heading_and_title(client.get(f"/orders/{order.number}/").content.decode())[0] == f"Receipt {order.number}"

    other = catalog_item(tenant_a, title="Other Course", price=5000)
    client.post("/checkout/", {"item": other.slug, "key": "left-open", "pay": "1"})  # the hosted page left unpaid
    with scope(tenant=tenant_a):
        pending = Order.objects.get(idempotency_key="left-open")
    page = client.get(f"/orders/{pending.number}/").content.decode()
    assert heading_and_title(page)[0] == f"Order {pending.number}" and "waiting for your payment" in page
