"""A learner is never left paying twice for one thing: a checkout left open at the provider for an item is closed once
another purchase (its bundle) gives them the item, and a payment that still arrives for it is given back in full."""

import pytest
from django.core import mail
from django_scopes import scope

from catalog.models import Bundle
from marketplace.models import AuditLog
from payments import services
from payments.ledger import ledger_verify
from payments.models import Entitlement, JournalEntry, Order, Payment, Refund
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy
from tests.payments.test_open_checkouts import open_checkout

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tenant_a):
    one = catalog_item(tenant_a, title="One", price=3000)
    two = catalog_item(tenant_a, title="Two", price=5000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one, two])
    return one, two


def sale_balances(tenant):
    """Every account's balance, from the postings."""
    with scope(tenant=tenant):
        balances = {}
        for entry in JournalEntry.objects.prefetch_related("postings__account"):
            for posting in entry.postings.all():
                balances[posting.account.code] = balances.get(posting.account.code, 0) + posting.amount
        return {code: amount for code, amount in balances.items() if amount}


def test_buying_the_bundle_closes_the_open_checkout_of_an_item_in_it(tenant_a, shop,
                                                                        django_capture_on_commit_callbacks):
    one, _ = shop
    client = host_client("alpha.test", member(tenant_a))
    hosted = open_checkout(client, one.slug, "tab-1")  # left open in another tab
    with django_capture_on_commit_callbacks(execute=True):
        assert "Payment received" in buy(client, "bundle=both").content.decode()

    # The learner goes back to the first tab: it takes no money.
    closed = client.get(hosted).content.decode()
    assert "You have what this checkout buys already, so it was closed: it takes no money." in closed
    client.post(hosted, {"action": "pay"})
    with scope(tenant=tenant_a):
        order = Order.objects.get(idempotency_key="tab-1")
        assert (order.status, order.payments.get().failure_reason) == ("cancelled", "can no longer be bought")
        assert Payment.objects.filter(status="succeeded").count() == 1
        assert JournalEntry.objects.filter(kind="sale").count() == 1


def test_an_open_checkout_of_an_other_item_stays_open(tenant_a, shop, django_capture_on_commit_callbacks):
    other = catalog_item(tenant_a, title="Elsewhere", price=2000)
    client = host_client("alpha.test", member(tenant_a))
    hosted = open_checkout(client, other.slug, "tab-1")
    with django_capture_on_commit_callbacks(execute=True):
        buy(client, "bundle=both")
    assert "Payment received" in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        assert not Refund.objects.exists()
        assert Order.objects.get(idempotency_key="tab-1").status == "paid"


def test_a_payment_for_an_item_already_owned_is_refunded_whole_and_access_stays(tenant_a, shop,
                                                                               django_capture_on_commit_callbacks):
    """The provider took the item's payment before its checkout could be closed (Stripe's page was being paid while
    the bundle's event was applied): the sale is booked, then refunded in full, and the learner keeps the item
    through the bundle."""
    one, two = shop
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = open_checkout(client, one.slug, "tab-1")
    buy(client, "bundle=both")  # its after-commit work (closing tab 1) has not run yet
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(hosted, {"action": "pay"})

    with scope(tenant=tenant_a):
        order = Order.objects.get(idempotency_key="tab-1")
        payment = order.payments.get()
        assert order.status == "refunded" and payment.refunded_amount == payment.amount == 3000
        assert Refund.objects.get().reason == Refund.PAID_TWICE
        assert AuditLog.objects.filter(action="payments.paid_twice", target_id=str(order.pk)).exists()
        # The item's own entitlement ended with the refund; the bundle's still opens both items.
        assert Entitlement.objects.get(order=order).revoked_at is not None
        assert ledger_verify(tenant=tenant_a).ok
    for item in (one, two):
        assert "Start learning" in client.get(f"/item/{item.slug}/").content.decode()
    # What was booked and given back nets out: the storefront keeps only the bundle's sale.
    with scope(tenant=tenant_a):
        bundle_order = Order.objects.get(lines__bundle__slug="both")
    clearing = sale_balances(tenant_a)["clearing:sandbox"]
    assert clearing == bundle_order.total
    notice = [m for m in mail.outbox if "refund" in m.body.lower()]
    assert len(notice) == 1 and "You keep your access." in notice[0].body
    assert "access it gave you has ended" not in notice[0].body


def test_a_payment_for_an_item_a_subscription_covers_is_kept(tenant_a, shop):
    """Subscribers' access ends with the subscription; an item bought stays, so its payment is not given back."""
    one, _ = shop
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = open_checkout(client, one.slug, "tab-1")
    with scope(tenant=tenant_a):
        services.entitlement_grant(tenant=tenant_a, user=learner, actor=None, whole_catalog=True,
                                   source=Entitlement.Source.SUBSCRIPTION)
    client.post(hosted, {"action": "pay"})
    with scope(tenant=tenant_a):
        assert Order.objects.get(idempotency_key="tab-1").status == "paid"
        assert not Refund.objects.exists()


def test_a_bundle_partly_owned_is_not_refunded(tenant_a, shop):
    one, _ = shop
    client = host_client("alpha.test", member(tenant_a))
    buy(client, f"item={one.slug}")
    assert "Payment received" in buy(client, "bundle=both").content.decode()
    with scope(tenant=tenant_a):
        assert not Refund.objects.exists()
        assert Order.objects.filter(status="paid").count() == 2


def test_a_refund_the_team_made_first_is_not_added_to(tenant_a, shop):
    one, _ = shop
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = open_checkout(client, one.slug, "tab-1")
    buy(client, "bundle=both")
    client.post(hosted, {"action": "pay"})  # after-commit work not run: nothing refunded yet
    with scope(tenant=tenant_a):
        payment = Payment.objects.get(order__idempotency_key="tab-1")
        assert payment.refunded_amount == 0
        services.refund_create(payment=payment, amount=1000, actor=None, reason="goodwill")
        assert services.paid_twice_refund(payment=payment) is None
        payment.refresh_from_db()
        assert payment.refunded_amount == 1000
