"""Checkouts that are left open: they expire, give back the coupon use they held, and a new checkout for the same
thing replaces the open one, so a learner never pays twice for one purchase."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope

from payments import services
from payments.models import Coupon, Entitlement, JournalEntry, Order, Payment
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(tenant_a):
    return catalog_item(tenant_a, title="Paid Course", price=10000)


def open_checkout(client, slug: str, key: str, coupon: str = ""):
    """Press "Pay" on the checkout page and stop at the sandbox's hosted page; returns its URL."""
    response = client.post("/checkout/", {"item": slug, "key": key, "coupon": coupon, "pay": "1"})
    assert response.status_code == 302, response.content.decode()[:500]
    return response.url


def test_an_abandoned_checkout_expires_and_gives_its_coupon_use_back(tenant_a, course, settings):
    settings.CHECKOUT_EXPIRES_MINUTES = 60
    with scope(tenant=tenant_a):
        coupon = Coupon.objects.create(tenant=tenant_a, code="LAST", kind="percent", value=5000, max_uses=1)
    first, second = host_client("alpha.test", member(tenant_a, "first")), host_client("alpha.test", member(tenant_a))
    hosted = open_checkout(first, course.slug, "k1", coupon="last")

    # The open checkout holds the coupon's last use.
    response = second.post("/checkout/", {"item": course.slug, "key": "k2", "coupon": "last", "pay": "1"})
    body = response.content.decode()
    assert response.status_code == 400 and "This coupon has been used up." in body
    assert body.index("used up") > body.index('id="id_coupon"')

    with scope(tenant=tenant_a):
        assert services.checkouts_expire(tenant=tenant_a, now=timezone.now() + timedelta(minutes=59)) == 0
        assert services.checkouts_expire(tenant=tenant_a, now=timezone.now() + timedelta(minutes=61)) == 1
        assert services.checkouts_expire(tenant=tenant_a, now=timezone.now() + timedelta(minutes=62)) == 0
        order = Order.objects.get(idempotency_key="k1")
        payment = order.payments.get()
        assert (order.status, payment.status, payment.failure_reason) == ("cancelled", "cancelled",
                                                                           "checkout expired")

    # The expired checkout takes no payment; the coupon's use went back and the other learner gets it.
    assert "This checkout has expired." in first.get(hosted).content.decode()
    first.post(hosted, {"action": "pay"})
    assert "Payment received" in buy(second, f"item={course.slug}", coupon="last").content.decode()
    with scope(tenant=tenant_a):
        coupon.refresh_from_db()
        assert coupon.used_count == 1
        assert list(Order.objects.values_list("status", flat=True).order_by("pk")) == ["cancelled", "paid"]
        assert Entitlement.objects.count() == 1 and JournalEntry.objects.filter(kind="sale").count() == 1


def test_the_hosted_page_refuses_a_checkout_past_its_time(tenant_a, course):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = open_checkout(client, course.slug, "k1")
    with scope(tenant=tenant_a):
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    assert "This checkout has expired." in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        assert Payment.objects.get().status == "cancelled"
        assert not Entitlement.objects.exists()


def test_a_new_checkout_replaces_the_open_one_so_one_purchase_is_paid_once(tenant_a, course):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    earlier = open_checkout(client, course.slug, "tab-1")
    later = open_checkout(client, course.slug, "tab-2")

    client.post(earlier, {"action": "pay"})  # the learner goes back to the first tab: it no longer takes money
    assert "Payment received" in client.post(later, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"tab-1": "cancelled",
                                                                              "tab-2": "paid"}
        assert Payment.objects.get(order__idempotency_key="tab-1").failure_reason == "replaced by a new checkout"
        assert Payment.objects.filter(status="succeeded").count() == 1
        assert JournalEntry.objects.filter(kind="sale").count() == 1
    # The same form submitted again is still the same checkout, not a replacement.
    again = client.post("/checkout/", {"item": course.slug, "key": "tab-2", "pay": "1"})
    assert again.status_code == 302
    with scope(tenant=tenant_a):
        assert Order.objects.count() == 2


def test_an_other_items_checkout_stays_open(tenant_a, course):
    other = catalog_item(tenant_a, title="Other Course", price=5000)
    client = host_client("alpha.test", member(tenant_a))
    first = open_checkout(client, course.slug, "k1")
    open_checkout(client, other.slug, "k2")
    assert "Payment received" in client.post(first, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"k1": "paid", "k2": "pending"}
