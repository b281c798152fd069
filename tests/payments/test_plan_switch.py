"""Switching plans: the learner chooses another plan, which their subscription renews on when the paid period ends."""

from datetime import timedelta

import pytest
from django_scopes import scope

from catalog.access import can_access
from payments.ledger import ledger_verify
from payments.models import Entitlement, Order, Subscription, SubscriptionPlan
from payments.subscriptions import add_interval, subscriptions_sweep
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_checkout import buy
from tests.payments.test_subscriptions import data_tier, pay_renewal

pytestmark = pytest.mark.django_db


@pytest.fixture
def plans(tenant_a):
    with scope(tenant=tenant_a):
        monthly = SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900,
                                                  interval="month")
        yearly = SubscriptionPlan.objects.create(tenant=tenant_a, name="All access, yearly", slug="all-year",
                                                 price=29000, interval="year")
    return monthly, yearly


def subscribed(tenant, query="plan=all"):
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    buy(client, query)
    with scope(tenant=tenant):
        return learner, client, Subscription.objects.get(user=learner)


def test_a_monthly_subscriber_switches_to_yearly_from_the_end_of_the_paid_month(tenant_a, plans):
    monthly, yearly = plans
    learner, client, sub = subscribed(tenant_a)
    end = sub.current_period_end
    page = client.get("/subscription/").content.decode()
    assert "Change plan" in page and "All access, yearly" in page and "¥290.00" in page

    page = client.post("/subscription/", {"action": "switch", "plan": "all-year"}, follow=True).content.decode()
    assert "From the end of this period you will be on All access, yearly." in page
    assert "Switches to All access, yearly on" in page and "its first period costs ¥290.00" in page
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        # The month paid for is unchanged: its plan, its price, its end.
        assert (sub.plan, sub.switch_to, sub.price, sub.interval) == (monthly, yearly, 2900, "month")
        assert sub.current_period_end == end == sub.entitlement.ends_at

        subscriptions_sweep(tenant=tenant_a, now=end)
        renewal = Order.objects.get(source="renewal")
        line = renewal.lines.get()
        assert (renewal.total, line.plan, line.interval, line.title) == (29000, yearly, "year", "All access, yearly")
        sub.refresh_from_db()
        assert (sub.plan, sub.switch_to, sub.price, sub.interval) == (yearly, None, 29000, "year")

    assert "Payment received" in pay_renewal(client, sub).content.decode()
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "active"
        assert sub.current_period_end == add_interval(end, "year", day=sub.billing_day) == sub.entitlement.ends_at
        assert ledger_verify(tenant=tenant_a).ok
    # The next renewal is the yearly plan's again.
    assert "Your next period, ¥290.00, is due on" in client.get("/subscription/").content.decode()


def test_switching_from_a_tier_to_the_whole_catalog_opens_it_once_the_renewal_is_paid(tenant_a, plans):
    data, design, _tier = data_tier(tenant_a)
    learner, client, sub = subscribed(tenant_a, "plan=data-tier")
    client.post("/subscription/", {"action": "switch", "plan": "all"})
    with scope(tenant=tenant_a):
        assert can_access(learner, data) and not can_access(learner, design)
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        # The renewal is due and unpaid: the grace period goes on with what the learner had.
        assert not can_access(learner, design)
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        assert can_access(learner, data) and can_access(learner, design)
        entitlement = Entitlement.objects.get(user=learner)
        assert (entitlement.whole_catalog, entitlement.plan) == (True, None)

        # Back to the tier: the whole catalog stays open through the grace period, and narrows once it is paid.
        sub.refresh_from_db()
    client.post("/subscription/", {"action": "switch", "plan": "data-tier"})
    with scope(tenant=tenant_a):
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        assert can_access(learner, design)
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        assert can_access(learner, data) and not can_access(learner, design)


def test_cancelling_drops_the_chosen_plan_and_choosing_a_plan_undoes_a_cancellation(tenant_a, plans):
    _monthly, yearly = plans
    learner, client, sub = subscribed(tenant_a)
    client.post("/subscription/", {"action": "switch", "plan": "all-year"})
    page = client.post("/subscription/", {"action": "cancel"}, follow=True).content.decode()
    assert "You will not move to All access, yearly either." in page  # said, not dropped silently
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert (sub.cancel_at_period_end, sub.switch_to) == (True, None)

    client.post("/subscription/", {"action": "switch", "plan": "all-year"})
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert (sub.cancel_at_period_end, sub.switch_to) == (False, yearly)

    # "Stay on All access" keeps the current plan, and it renews as before.
    page = client.get("/subscription/").content.decode()
    assert "Stay on All access" in page
    client.post("/subscription/", {"action": "switch"})
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert (sub.cancel_at_period_end, sub.switch_to) == (False, None)
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        assert Order.objects.get(source="renewal").total == 2900


def test_a_switch_is_refused_with_a_reason_and_changes_nothing(tenant_a, tenant_b, plans):
    _monthly, yearly = plans
    with scope(tenant=tenant_b):
        SubscriptionPlan.objects.create(tenant=tenant_b, name="Beta's plan", slug="beta-plan", price=100)
    learner, client, sub = subscribed(tenant_a)
    yearly.is_active = False
    yearly.save(update_fields=["is_active"])
    for slug in ("all-year", "beta-plan", "nonexistent"):
        page = client.post("/subscription/", {"action": "switch", "plan": slug}, follow=True).content.decode()
        assert "This plan is not on sale." in page, slug
    assert "Change plan" not in client.get("/subscription/").content.decode()  # nothing to switch to

    yearly.is_active = True
    yearly.save(update_fields=["is_active"])
    with scope(tenant=tenant_a):
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)  # the month is over, its renewal unpaid
    page = client.post("/subscription/", {"action": "switch", "plan": "all-year"}, follow=True).content.decode()
    assert "Your renewal is due: renew first, then choose the plan of the next period." in page
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.switch_to is None and sub.status == "past_due"


def test_the_plans_page_shows_a_subscriber_their_plan_and_lets_them_switch(tenant_a, plans):
    learner, client, sub = subscribed(tenant_a)
    page = client.get("/plans/").content.decode()
    assert page.count("Your plan") == 1 and page.count('value="switch"') == 1 and "?plan=" not in page
    client.post("/subscription/", {"action": "switch", "plan": "all-year"})
    page = client.get("/plans/").content.decode()
    assert "Chosen for the next period" in page and 'value="switch"' not in page


def test_a_switched_renewal_charges_the_storefronts_currency_now(tenant_a, plans):
    """The subscription keeps the currency it was sold in while it renews on its plan; the plan chosen instead is
    sold at its price now, in the storefront's currency now."""
    learner, client, sub = subscribed(tenant_a)
    tenant_a.currency = "JPY"
    tenant_a.save(update_fields=["currency"])
    client.post("/subscription/", {"action": "switch", "plan": "all-year"})
    with scope(tenant=tenant_a):
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(minutes=1))
        renewal = Order.objects.get(source="renewal")
        assert (renewal.currency, renewal.total) == ("JPY", 29000)
        sub.refresh_from_db()
        assert (sub.currency, sub.price) == ("JPY", 29000)
