"""One learner's two tabs buying one item while the first tab's payment lands (PostgreSQL, real transactions).

As in ``test_concurrency.py``: each thread opens its own connection and tenant scope (``tenancy.activate``). Which
statement waits for which is read from ``pg_stat_activity``, so each interleaving below happens on every run.
"""

import threading
import time

import pytest
from django.db import connection
from django.db.utils import OperationalError
from django_scopes import scope

from marketplace import tenancy
from marketplace.errors import ApplicationError
from payments import services
from payments.models import Entitlement, Order, Payment
from payments.providers.sandbox import HEADER, SandboxProvider
from tests.factories import member
from tests.payments.test_concurrency import shop  # noqa: F401 (fixture)

pytestmark = pytest.mark.postgres
SANDBOX = SandboxProvider()


def waiting_for_a_lock(n: int = 1) -> bool:
    """Whether ``n`` sessions of this database wait for a lock (a row's, a transaction's or an advisory one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is a snapshot
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0] >= n


def wait_until(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def pay(tenant, payment) -> str:
    body = SANDBOX.event_body(payment=payment, outcome="succeeded")
    with tenancy.activate(tenant):
        return services.webhook_receive(tenant=tenant, provider_name="sandbox",
                                        headers={HEADER: SANDBOX.signature(body)}, body=body)


def in_thread(outcomes: dict, name: str, work) -> threading.Thread:
    """Start ``work()`` in a thread with its own connection; its result or exception lands in ``outcomes[name]``."""
    def run():
        try:
            outcomes[name] = work()
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted on
            outcomes[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_a_second_tabs_checkout_of_an_item_paid_while_it_waited_is_refused(shop):  # noqa: F811 (the fixture imported above)
    """Tab B's "Buy now" (its own key) passes ``purchase_check`` (not owned yet), then waits for the learner's row,
    which another checkout of theirs holds (one that is calling the provider, say). Meanwhile tab A's checkout is
    paid and its webhook commits. When B gets the row it finds no *pending* checkout of the item (A's is paid), so
    without checking ownership again under the lock it would open a second checkout: the learner could pay twice.

    The stand-in for the other checkout holds the learner's row as ``order_open`` does (FOR NO KEY UPDATE, which the
    webhook's foreign-key checks do not wait for); B's wait for it is seen in ``pg_stat_activity``. So no function
    needs to be wrapped to pause B inside the gap: B waits where a real second checkout would make it wait."""
    from django.contrib.auth import get_user_model

    tenant, item = shop
    learner = member(tenant, "learner")
    with tenancy.activate(tenant):
        first = services.checkout_start(tenant=tenant, user=learner, idempotency_key="tab-a", item=item).payment
    outcomes: dict = {}
    held, release = threading.Event(), threading.Event()

    def other_checkout():
        with tenancy.activate(tenant):
            get_user_model().objects.select_for_update(no_key=True).filter(pk=learner.pk).first()
            held.set()
            assert release.wait(60)
        return "released"

    holder = in_thread(outcomes, "holder", other_checkout)
    assert held.wait(30)
    tab_b = in_thread(outcomes, "b", lambda: _checkout(tenant, learner, "tab-b", item))
    assert wait_until(waiting_for_a_lock), "tab B never waited for the learner's row"
    assert pay(tenant, first) == "applied"  # tab A's payment lands and commits while B waits
    release.set()
    for thread in (holder, tab_b):
        thread.join(60)
        assert not thread.is_alive(), "a thread hung"
    assert outcomes["holder"] == "released"
    with scope(tenant=tenant):
        assert Entitlement.objects.filter(user=learner, item=item).count() == 1
        assert list(Payment.objects.filter(order__user=learner, status=Payment.Status.PENDING)) == [], (
            "a second checkout for an item the learner has just paid for is open to be paid")
        assert not Order.objects.filter(idempotency_key="tab-b").exists()  # nothing written
    assert isinstance(outcomes["b"], ApplicationError) and outcomes["b"].code == "already_owned", outcomes["b"]


def _checkout(tenant, learner, key, item):
    with tenancy.activate(tenant):
        return services.checkout_start(tenant=tenant, user=learner, idempotency_key=key, item=item)


def test_a_second_tabs_checkout_while_the_first_tabs_sandbox_payment_is_applied_does_not_deadlock(shop):  # noqa: F811 (the fixture imported above)
    """Tab A's "Pay" is being applied (``payment_succeed`` has locked payment A; granting access next, whose INSERTs
    take a KEY SHARE lock on the learner's row) while tab B's "Buy now" of the same item is in ``order_open``: it
    holds the learner's row and, the sandbox's ``expire`` always saying yes, waits in ``payment_close`` for payment A.
    Had B locked the learner's row FOR UPDATE, each would wait for the other and PostgreSQL would abort one
    ("deadlock detected": a 500 for the learner, or a failed webhook). B is told the item is being paid instead."""
    tenant, item = shop
    learner = member(tenant, "learner")
    with tenancy.activate(tenant):
        first = services.checkout_start(tenant=tenant, user=learner, idempotency_key="tab-a", item=item).payment
    locked, started, outcomes, threads = threading.Event(), threading.Event(), {}, {}

    def webhook():
        with tenancy.activate(tenant):
            Payment.objects.select_for_update().get(pk=first.pk)  # as payment_succeed's first lock
            locked.set()
            assert started.wait(30)
            # tab B waits for payment A (or has finished without waiting)
            assert wait_until(lambda: waiting_for_a_lock() or not threads["b"].is_alive())
            return services.payment_succeed(payment=first).status

    hook = in_thread(outcomes, "webhook", webhook)
    assert locked.wait(30)
    tab_b = threads["b"] = in_thread(outcomes, "b", lambda: _checkout(tenant, learner, "tab-b", item))
    started.set()
    for thread in (hook, tab_b):
        thread.join(60)
        assert not thread.is_alive(), "a thread hung"
    deadlocked = [name for name, outcome in outcomes.items() if isinstance(outcome, OperationalError)]
    assert deadlocked == [], outcomes
    assert outcomes["webhook"] == Payment.Status.SUCCEEDED, outcomes
    assert isinstance(outcomes["b"], ApplicationError), outcomes["b"]
    assert outcomes["b"].code in ("payment_in_progress", "already_owned"), outcomes["b"]
    with scope(tenant=tenant):
        assert Entitlement.objects.filter(user=learner, item=item).count() == 1
        assert not Order.objects.filter(idempotency_key="tab-b").exists()
        assert not Payment.objects.filter(status=Payment.Status.PENDING).exists()
