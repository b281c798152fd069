"""Money services under real concurrent transactions (PostgreSQL): many threads, one effect.

Each thread opens its own connection and its own tenant scope (``tenancy.activate``: the django-scopes scope, a
transaction and the row-level-security settings), waits at a barrier, then calls the service at once.
"""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from marketplace import tenancy
from marketplace.errors import ApplicationError
from payments import ledger, services
from payments.models import (
    Coupon,
    Entitlement,
    JournalEntry,
    Order,
    Payment,
    Refund,
    Subscription,
    SubscriptionPlan,
    WebhookEvent,
)
from payments.providers.sandbox import HEADER, SandboxProvider
from payments.subscriptions import subscriptions_sweep
from tests.factories import TenantFactory, catalog_item, member

pytestmark = pytest.mark.postgres
SANDBOX = SandboxProvider()


@pytest.fixture
def shop(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI always does)")
    tenant = TenantFactory(slug=f"race{uuid.uuid4().hex[:8]}", domain=None)
    item = catalog_item(tenant, title="Ink", price=1000)
    return tenant, item


def race(count: int, work) -> list:
    """Run ``work(tenant_scope)`` in ``count`` threads released together; return each result or exception."""
    barrier = threading.Barrier(count, timeout=60)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except Exception as exc:  # noqa: BLE001 - every outcome is collected and asserted on
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def captured(tenant, item) -> Payment:
    learner = member(tenant, "learner")
    with tenancy.activate(tenant):
        payment = services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                          item=item).payment
        body = SANDBOX.event_body(payment=payment, outcome="succeeded")
        services.webhook_receive(tenant=tenant, provider_name="sandbox", headers={HEADER: SANDBOX.signature(body)},
                                 body=body)
        payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    return payment


def test_fifty_checkouts_with_one_idempotency_key_make_one_order(shop):
    tenant, item = shop
    learner = member(tenant, "learner")
    key = uuid.uuid4().hex

    def checkout():
        with tenancy.activate(tenant):
            started = services.checkout_start(tenant=tenant, user=learner, idempotency_key=key, item=item)
            return started.order.pk, started.payment.pk

    results = race(50, checkout)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert len(set(results)) == 1
    with scope(tenant=tenant):
        orders = Order.objects.filter(idempotency_key=key)
        assert orders.count() == 1
        assert Payment.objects.filter(order__idempotency_key=key).count() == 1
        assert (orders.get().pk, Payment.objects.get().pk) == results[0]


def test_twenty_refunds_of_a_tenth_return_exactly_the_payment(shop):
    tenant, item = shop
    payment = captured(tenant, item)
    assert payment.amount == 1000

    def refund():
        with tenancy.activate(tenant):
            return services.refund_create(payment=payment, amount=100, actor=None).pk

    results = race(20, refund)
    refunded = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    others = [r for r in results if not isinstance(r, int | ApplicationError)]
    assert others == []
    assert len(refunded) == 10
    assert len(refused) == 10
    assert {e.code for e in refused} == {"refund_exceeds_captured"}
    with tenancy.activate(tenant):
        payment.refresh_from_db()
        order = Order.objects.get(pk=payment.order_id)
        assert payment.refunded_amount == 1000
        assert order.refunded == 1000
        assert order.status == Order.Status.REFUNDED
        assert sum(Refund.objects.values_list("amount", flat=True)) == 1000
        assert JournalEntry.objects.filter(kind=JournalEntry.Kind.REFUND).count() == 10
        # the item's publication, its sale and ten refunds, in one chain without gaps
        assert list(JournalEntry.objects.values_list("sequence", flat=True)) == list(range(1, 13))
        result = ledger.ledger_verify(tenant=tenant)
        assert result.ok, result
        assert result.entries == 12
        assert not Entitlement.objects.filter(order=order, revoked_at__isnull=True).exists()
        assert Entitlement.objects.filter(order=order).count() == 1


def test_twenty_deliveries_of_one_success_event_book_one_sale(shop):
    tenant, item = shop
    learner = member(tenant, "learner")
    with tenancy.activate(tenant):
        payment = services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                          item=item).payment
    body = SANDBOX.event_body(payment=payment, outcome="succeeded")

    def deliver():
        with tenancy.activate(tenant):
            return services.webhook_receive(tenant=tenant, provider_name="sandbox",
                                            headers={HEADER: SANDBOX.signature(body)}, body=body)

    results = race(20, deliver)
    assert sorted(map(str, results)) == ["applied"] + ["duplicate"] * 19
    with tenancy.activate(tenant):
        payment.refresh_from_db()
        assert payment.status == Payment.Status.SUCCEEDED
        assert WebhookEvent.objects.count() == 1
        assert JournalEntry.objects.filter(kind=JournalEntry.Kind.SALE).count() == 1
        assert JournalEntry.objects.exclude(kind=JournalEntry.Kind.PUBLICATION).count() == 1
        assert Entitlement.objects.filter(user=learner).count() == 1
        assert ledger.ledger_verify(tenant=tenant).ok


def test_concurrent_sales_of_one_tenant_keep_one_gapless_chain(shop):
    """Different orders paid at once all append to the tenant's chain: the head lock orders them."""
    tenant, item = shop
    learners = [member(tenant, "learner") for _ in range(10)]
    with tenancy.activate(tenant):
        payments = [services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                            item=item).payment for learner in learners]
    bodies = iter([SANDBOX.event_body(payment=p, outcome="succeeded") for p in payments])
    lock = threading.Lock()

    def deliver():
        with lock:
            body = next(bodies)
        with tenancy.activate(tenant):
            return services.webhook_receive(tenant=tenant, provider_name="sandbox",
                                            headers={HEADER: SANDBOX.signature(body)}, body=body)

    assert race(10, deliver) == ["applied"] * 10
    with scopes_disabled():
        assert sorted(JournalEntry.objects.filter(tenant=tenant).values_list("sequence", flat=True)) == list(
            range(1, 12))  # the item's publication and ten sales
    with tenancy.activate(tenant):
        assert ledger.ledger_verify(tenant=tenant).ok


def test_ten_learners_at_once_use_a_three_use_coupon_three_times(shop):
    """A checkout holds a use of the coupon while it is open; the coupon's row lock makes the last uses go to
    exactly as many checkouts as are left."""
    tenant, item = shop
    with scope(tenant=tenant):
        Coupon.objects.create(tenant=tenant, code="RUSH", kind="percent", value=1000, max_uses=3)
    learners = iter([member(tenant, "learner") for _ in range(10)])
    lock = threading.Lock()

    def checkout():
        with lock:
            learner = next(learners)
        with tenancy.activate(tenant):
            return services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex, item=item,
                                           coupon_code="rush").order.pk

    results = race(10, checkout)
    assert sorted(getattr(r, "code", "order") for r in results) == ["coupon_exhausted"] * 7 + ["order"] * 3
    with scope(tenant=tenant):
        assert Order.objects.filter(coupon__code="RUSH", status="pending").count() == 3
        assert Order.objects.count() == 3


def test_ten_checkouts_of_one_item_by_one_learner_at_once_leave_one_to_pay(shop):
    """Different keys (ten tabs): the learner's checkouts queue, each replacing the one before, so one is left to
    take the learner's money."""
    tenant, item = shop
    learner = member(tenant, "learner")

    def checkout():
        with tenancy.activate(tenant):
            return services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                           item=item).order.pk

    results = race(10, checkout)
    assert [r for r in results if isinstance(r, Exception)] == []
    with scope(tenant=tenant):
        assert Order.objects.count() == 10
        assert Order.objects.filter(status="pending").count() == 1
        assert Payment.objects.filter(status="pending").count() == 1
        assert set(Order.objects.exclude(status="pending").values_list("status", flat=True)) <= {"cancelled"}


def test_a_renewal_paid_while_the_sweep_ends_its_subscription_brings_it_back_without_a_deadlock(shop):
    """The renewal's success is being applied (its payment locked, the subscription next) while the sweep ends that
    subscription (locked, its renewal checkout next). The sweep leaves the payment to its webhook instead of waiting
    for it, and the webhook brings the subscription back once the sweep has committed."""
    tenant, _item = shop
    learner = member(tenant, "learner")
    with tenancy.activate(tenant):
        plan = SubscriptionPlan.objects.create(tenant=tenant, name="All", slug="all", price=2900, grace_days=3)
        first = services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                        plan=plan).payment
        services.payment_succeed(payment=first)
    with tenancy.activate(tenant):
        end = Subscription.objects.get(user=learner).current_period_end
        subscriptions_sweep(tenant=tenant, now=end)
        renewal = Payment.objects.get(order__source="renewal")

    locked, go, outcomes = threading.Event(), threading.Event(), {}

    def webhook() -> None:
        try:
            with tenancy.activate(tenant):
                Payment.objects.select_for_update().get(pk=renewal.pk)  # as payment_succeed's first lock
                locked.set()
                go.wait(30)
                outcomes["webhook"] = services.payment_succeed(payment=renewal).status
        except Exception as exc:  # noqa: BLE001 - asserted on below
            outcomes["webhook"] = exc
        finally:
            connection.close()

    def sweep() -> None:
        locked.wait(30)
        try:
            with tenancy.activate(tenant):
                outcomes["sweep"] = subscriptions_sweep(tenant=tenant, now=end + timedelta(days=3, seconds=1))
        except Exception as exc:  # noqa: BLE001
            outcomes["sweep"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=webhook), threading.Thread(target=sweep)]
    for thread in threads:
        thread.start()
    # The webhook goes on once the sweep has finished, or waits for a lock.
    deadline = time.monotonic() + 30
    while threads[1].is_alive() and not waiting_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    go.set()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == {"webhook": Payment.Status.SUCCEEDED, "sweep": {"renewals_opened": 0, "ended": 1}}
    with tenancy.activate(tenant):
        sub = Subscription.objects.get(user=learner)
        assert sub.status == Subscription.Status.ACTIVE and sub.renewal_order is None
        assert Entitlement.objects.get(pk=sub.entitlement_id).ends_at == sub.current_period_end
        assert ledger.ledger_verify(tenant=tenant).ok


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0] > 0
