"""A learner switches plans while the renewal sweep is opening their renewal (PostgreSQL, real transactions).

As in ``test_races.py``: each thread has its own connection, and which statement waits for which is read from
``pg_stat_activity``, so the interleaving happens on every run.
"""

import threading

import pytest
from django.db import transaction
from django_scopes import scope

from marketplace import tenancy
from marketplace.errors import ApplicationError
from payments import services
from payments.models import Order, Subscription, SubscriptionPlan
from payments.subscriptions import subscription_switch, subscriptions_sweep
from tests.factories import member
from tests.payments.test_concurrency import shop  # noqa: F401 (fixture)
from tests.payments.test_races import in_thread, pay, wait_until, waiting_for_a_lock

pytestmark = pytest.mark.postgres


def test_a_switch_sent_while_the_renewal_opens_is_refused_not_lost(shop):  # noqa: F811 (the fixture imported above)
    """The sweep holds the subscription's row while it opens the renewal, which is an order for the current plan.
    The learner's "Switch" waits for that row; once it has it, the renewal is due, and the switch is refused with
    a reason. Read without the lock, the switch would be saved on a subscription whose renewal charges the old plan:
    the learner told "you will be on Yearly" would pay for Monthly, and be switched a period late."""
    tenant, _item = shop
    with scope(tenant=tenant):
        monthly = SubscriptionPlan.objects.create(tenant=tenant, name="Monthly", slug="monthly", price=2900)
        yearly = SubscriptionPlan.objects.create(tenant=tenant, name="Yearly", slug="yearly", price=29000,
                                                 interval="year")
    learner = member(tenant)
    with tenancy.activate(tenant):
        first = services.checkout_start(tenant=tenant, user=learner, idempotency_key="k", plan=monthly).payment
    assert pay(tenant, first) == "applied"
    with scope(tenant=tenant):
        sub = Subscription.objects.get(user=learner)
    outcomes: dict = {}
    held = threading.Event()
    threads: dict = {}

    def sweep():
        with tenancy.activate(tenant), transaction.atomic():
            Subscription.objects.select_for_update().get(pk=sub.pk)
            held.set()
            assert wait_until(waiting_for_a_lock), "the switch never waited for the subscription's row"
            return subscriptions_sweep(tenant=tenant, now=sub.current_period_end)

    def switch():
        with tenancy.activate(tenant):
            return subscription_switch(subscription=sub, plan=yearly, actor=learner)

    threads["sweep"] = in_thread(outcomes, "sweep", sweep)
    assert held.wait(30)
    threads["switch"] = in_thread(outcomes, "switch", switch)
    for thread in threads.values():
        thread.join(60)
        assert not thread.is_alive(), "a thread hung"
    assert outcomes["sweep"] == {"renewals_opened": 1, "ended": 0}, outcomes["sweep"]
    assert isinstance(outcomes["switch"], ApplicationError) and outcomes["switch"].code == "renewal_due", (
        outcomes["switch"])
    with scope(tenant=tenant):
        sub.refresh_from_db()
        renewal = Order.objects.get(source="renewal")
        assert (sub.status, sub.plan, sub.switch_to) == ("past_due", monthly, None)
        assert renewal.lines.get().plan == monthly and renewal.total == 2900
