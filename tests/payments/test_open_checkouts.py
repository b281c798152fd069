"""Checkouts that are left open: they expire, give back the coupon use they held, and a new checkout for the same
thing replaces the open one, so a learner never pays twice for one purchase."""

import re
from datetime import timedelta

import pytest
from django.core import signing
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

    page = client.get(earlier).content.decode()  # the learner goes back to the first tab: it takes no money
    assert "You started a newer checkout of the same thing, which replaced this one" in page
    assert 'value="pay"' not in page
    client.post(earlier, {"action": "pay"})
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


def same_checkout(url: str, other: str) -> bool:
    """Whether two addresses of the sandbox's hosted page open the same payment: each is signed when it is given out,
    so a second later the signature's timestamp differs."""
    def payment(address: str) -> dict:
        return signing.loads(address.rstrip("/").rsplit("/", 1)[1], salt="sandbox-checkout")

    return payment(url) == payment(other)


def order_page(client, key: str):
    with scope(tenant=client.tenant):
        number = Order.objects.get(idempotency_key=key).number
    return f"/orders/{number}/"


def test_a_learner_finishes_paying_an_open_checkout_from_the_order_page(tenant_a, course):
    client = host_client("alpha.test", member(tenant_a))
    hosted = open_checkout(client, course.slug, "k1")
    client.tenant = tenant_a
    page = order_page(client, "k1")
    assert "This order is waiting for your payment." in client.get(page).content.decode()

    # The tab was closed: "Pay" on the order page goes back to the same hosted checkout, not a new one.
    response = client.post(page, {"action": "pay"})
    assert response.status_code == 302 and same_checkout(response.url, hosted)
    assert "Payment received" in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    body = client.get(page).content.decode()
    assert "waiting for your payment" not in body and "Start learning" in body
    with scope(tenant=tenant_a):
        assert Order.objects.count() == 1 and Payment.objects.get().status == "succeeded"


def test_an_open_checkout_for_an_item_the_learner_got_meanwhile_is_closed_not_paid(tenant_a, course):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.tenant = tenant_a
    hosted = open_checkout(client, course.slug, "k1")
    with scope(tenant=tenant_a):  # the team gives them the course (a school class, say)
        services.entitlement_grant(tenant=tenant_a, user=learner, actor=None, item=course)
    body = client.post(order_page(client, "k1"), {"action": "pay"}, follow=True).content.decode()
    assert "You already have this item." in body and "waiting for your payment" not in body
    closed = client.get(hosted).content.decode()  # it takes no money either
    assert "You have what this checkout buys already, so it was closed: it takes no money." in closed
    with scope(tenant=tenant_a):
        assert (Order.objects.get().status, Payment.objects.get().status) == ("cancelled", "cancelled")


def test_an_unpaid_order_offers_to_buy_again_with_its_coupon(tenant_a, course):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="HALF", kind="percent", value=5000, max_uses=1)
    client = host_client("alpha.test", member(tenant_a))
    client.tenant = tenant_a
    open_checkout(client, course.slug, "k1", coupon="half")
    with scope(tenant=tenant_a):
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    page = order_page(client, "k1")

    # Past its time, "Pay" expires the checkout instead; the coupon's use goes back.
    body = client.post(page, {"action": "pay"}, follow=True).content.decode()
    assert "This checkout can no longer be paid." in body
    assert "This checkout was closed without a payment." in body and "waiting for your payment" not in body
    with scope(tenant=tenant_a):
        assert Order.objects.get().status == "cancelled"
    again = re.search(r'href="([^"]+)">Buy again<', body).group(1).replace("&amp;", "&")
    assert again == f"/checkout/?item={course.slug}&coupon=HALF"

    # The checkout is filled in with the coupon, and the new order takes the coupon's only use.
    checkout = client.get(again).content.decode()
    assert 'value="HALF"' in checkout and "−¥50.00" in checkout
    assert "Payment received" in buy(client, f"item={course.slug}", coupon="HALF").content.decode()
    # Owned now: the old order no longer offers to buy it again.
    assert "Buy again" not in client.get(page).content.decode()
    with scope(tenant=tenant_a):
        assert list(Order.objects.values_list("status", "discount").order_by("pk")) == [("cancelled", 5000),
                                                                                         ("paid", 5000)]


def test_a_declined_order_offers_to_buy_again_unless_the_item_left_the_shop(tenant_a, course):
    client = host_client("alpha.test", member(tenant_a))
    client.tenant = tenant_a
    body = buy(client, f"item={course.slug}", action="fail").content.decode()
    assert "The payment did not go through, and nothing was charged." in body
    assert f'href="/checkout/?item={course.slug}">Buy again<' in body
    with scope(tenant=tenant_a):
        course.status = "draft"
        course.save(update_fields=["status"])
        number = Order.objects.get().number
    body = client.get(f"/orders/{number}/").content.decode()
    assert "did not go through" in body and "Buy again" not in body


def test_a_learner_cannot_pay_someone_elses_order(tenant_a, course):
    owner = host_client("alpha.test", member(tenant_a))
    owner.tenant = tenant_a
    open_checkout(owner, course.slug, "k1")
    page = order_page(owner, "k1")
    stranger = host_client("alpha.test", member(tenant_a))
    assert stranger.post(page, {"action": "pay"}).status_code == 404
    with scope(tenant=tenant_a):
        assert Payment.objects.get().status == "pending"


def test_a_checkout_of_another_plan_replaces_the_open_plan_checkout(tenant_a):
    from payments.models import Subscription, SubscriptionPlan

    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Yearly", slug="yearly", price=29000, interval="year")
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    monthly = client.post("/checkout/", {"plan": "all", "key": "monthly", "pay": "1"}).url
    yearly = client.post("/checkout/", {"plan": "yearly", "key": "yearly", "pay": "1"}).url

    client.post(monthly, {"action": "pay"})  # the learner has one subscription: the first tab takes no money
    assert "Payment received" in client.post(yearly, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"monthly": "cancelled",
                                                                              "yearly": "paid"}
        assert list(Subscription.objects.values_list("plan__slug", flat=True)) == ["yearly"]
        assert Payment.objects.filter(status="succeeded").count() == 1


def test_a_learner_starting_over_keeps_the_single_use_coupon_their_open_checkout_holds(tenant_a, course):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="ONCE", kind="percent", value=5000, max_uses=1)
    client = host_client("alpha.test", member(tenant_a))
    open_checkout(client, course.slug, "tab-1", coupon="once")
    assert 'value="ONCE"' in client.get(f"/checkout/?item={course.slug}&coupon=ONCE").content.decode()
    assert "−¥50.00" in client.get(f"/checkout/?item={course.slug}&coupon=ONCE").content.decode()
    later = open_checkout(client, course.slug, "tab-2", coupon="once")
    assert "Payment received" in client.post(later, {"action": "pay"}, follow=True).content.decode()
    # Another learner finds it used up.
    other = host_client("alpha.test", member(tenant_a))
    response = other.post("/checkout/", {"item": course.slug, "key": "k3", "coupon": "once", "pay": "1"})
    assert response.status_code == 400 and "This coupon has been used up." in response.content.decode()
    with scope(tenant=tenant_a):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"tab-1": "cancelled",
                                                                              "tab-2": "paid"}


@pytest.mark.parametrize(("code", "message"), [("GONE", "This coupon has expired."),
                                                ("NOPE", "This coupon code is not valid.")])
def test_a_discount_link_with_a_coupon_that_no_longer_works_says_so_at_the_coupon(tenant_a, course, code, message):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="GONE", kind="percent", value=5000,
                              expires_at=timezone.now() - timedelta(days=1))
    client = host_client("alpha.test", member(tenant_a))
    response = client.get(f"/checkout/?item={course.slug}&coupon={code}")
    body = response.content.decode()
    assert response.status_code == 200 and message in body and "Pay ¥100.00" in body
    assert body.index(message) > body.index('id="id_coupon"')
    with scope(tenant=tenant_a):
        assert not Order.objects.exists()


def test_a_deactivated_storefronts_money_is_still_looked_after_by_the_beat_tasks(tenant_a, course):
    from payments.tasks import checkouts_expire_all, shares_release_all

    paid, left_open = host_client("alpha.test", member(tenant_a, "paid")), host_client("alpha.test", member(tenant_a))
    assert "Payment received" in buy(paid, f"item={course.slug}").content.decode()
    open_checkout(left_open, course.slug, "left-open")
    tenant_a.is_active = False
    tenant_a.save(update_fields=["is_active"])
    with scope(tenant=tenant_a):
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=61))
        Order.objects.filter(status="paid").update(paid_at=timezone.now() - timedelta(days=400))

    # The checkout a learner could still pay is closed, and the creators' shares of the sale become payable.
    checkouts_expire_all()
    shares_release_all()
    with scope(tenant=tenant_a):
        assert Order.objects.get(idempotency_key="left-open").status == "cancelled"
        assert Order.objects.get(status="paid").shares_released_at is not None
