"""Subscriptions: the whole catalog for a period, renewals with a grace period, cancelling at the period's end."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from catalog.access import can_access
from payments import services
from payments.ledger import ledger_verify
from payments.models import JournalEntry, Order, Subscription, SubscriptionPlan
from payments.selectors import entitled_item_ids
from payments.subscriptions import add_interval, subscriptions_sweep
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_admin_money import owner
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(tenant_a):
    with scope(tenant=tenant_a):
        return SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900,
                                               interval="month", grace_days=3)


def pay_renewal(client, sub, action="pay"):
    """Press "Renew now" on the subscription page, then ``action`` on the sandbox's page it leads to."""
    response = client.post("/subscription/", {"action": "renew"})
    assert response.status_code == 302 and "/sandbox/" in response.url, response
    return client.post(response.url, {"action": action}, follow=True)


def renewal_due(tenant):
    """A learner subscribed to "all" whose period is over: the sweep opened their renewal (the subscription is past
    due). Returns the learner, their client, the subscription and the renewal order."""
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant):
        sub = Subscription.objects.get(user=learner)
        subscriptions_sweep(tenant=tenant, now=sub.current_period_end)
        sub.refresh_from_db()
        return learner, client, sub, Order.objects.get(source="renewal")


def test_add_interval_clamps_to_the_end_of_the_month_and_comes_back_to_the_billing_day():
    start = timezone.now().replace(year=2026, month=1, day=31)
    assert add_interval(start, "month").date().isoformat() == "2026-02-28"
    assert add_interval(start, "year").date().isoformat() == "2027-01-31"
    february = add_interval(start, "month", day=31)
    assert add_interval(february, "month", day=31).date().isoformat() == "2026-03-31"
    assert add_interval(start.replace(year=2028, month=2, day=29), "year", day=29).date().isoformat() == "2029-02-28"


def test_subscribe_renew_lapse_and_cancel(tenant_a, plan, django_capture_on_commit_callbacks):
    paid = catalog_item(tenant_a, title="Deep Course", price=9900)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        assert sub.status == "active" and can_access(learner, paid)
        end = sub.current_period_end

        # The period ends: a renewal order opens, access continues through the grace period.
        with django_capture_on_commit_callbacks(execute=True):
            assert subscriptions_sweep(tenant=tenant_a, now=end + timedelta(minutes=1)) == {
                "renewals_opened": 1, "ended": 0}
        assert subscriptions_sweep(tenant=tenant_a, now=end + timedelta(minutes=2)) == {
            "renewals_opened": 0, "ended": 0}  # safe to run again
        sub.refresh_from_db()
        # The three grace days count from when the renewal opened.
        assert sub.status == "past_due" and sub.entitlement.ends_at == end + timedelta(days=3, minutes=1)
        assert "renew" in mail.outbox[-1].subject.lower()
        assert "To keep learning, pay ¥29.00 for your next All access period;" in mail.outbox[-1].body
    page = client.get("/subscription/").content.decode()
    assert "Your next All access period, ¥29.00, is due." in page and "Renew now for ¥29.00" in page

    # Paying the renewal extends the period by a month from the old end.
    assert "Payment received" in pay_renewal(client, sub).content.decode()
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "active" and sub.current_period_end == add_interval(end, "month")
        assert Order.objects.filter(user=learner, status="paid").count() == 2
        assert ledger_verify(tenant=tenant_a).ok

    # Cancelling keeps access to the end of the period, then it ends.
    client.post("/subscription/", {"action": "cancel"})
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.cancel_at_period_end and can_access(learner, paid)
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(seconds=1))
        sub.refresh_from_db()
        assert sub.status == "ended"
        assert sub.entitlement.ends_at == sub.current_period_end


def test_an_unpaid_renewal_ends_after_the_grace_period(tenant_a, plan):
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        end = sub.current_period_end
        subscriptions_sweep(tenant=tenant_a, now=end)
        subscriptions_sweep(tenant=tenant_a, now=end + timedelta(days=3, seconds=1))
        sub.refresh_from_db()
        assert sub.status == "ended"
        renewal = Order.objects.get(user=learner, source="renewal")
        assert renewal.status == "cancelled"
        sub.entitlement.refresh_from_db()
        assert sub.entitlement.ends_at == end + timedelta(days=3)  # access stopped when the grace ran out


def test_one_live_subscription_per_learner(tenant_a, plan):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    response = client.post("/checkout/", {"plan": "all", "key": "second", "pay": "1"})
    assert response.status_code == 400 and "You already have a subscription." in response.content.decode()


def test_a_renewal_keeps_the_billing_period_it_was_sold_with_as_it_keeps_the_price(tenant_a, plan):
    """The storefront turns its monthly plan into a yearly one at ten times the price: a monthly subscriber's
    renewal charges the price they subscribed at, for the month it pays for, not a year."""
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        end = sub.current_period_end
        SubscriptionPlan.objects.filter(pk=plan.pk).update(interval="year", price=29000)
        subscriptions_sweep(tenant=tenant_a, now=end)
        assert Order.objects.get(source="renewal").total == 2900
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert (sub.status, sub.interval) == ("active", "month")
        assert sub.current_period_end == add_interval(end, "month", day=sub.billing_day)


def test_a_renewal_paid_after_the_subscription_ended_buys_one_period_from_the_day_it_is_paid(tenant_a, plan):
    """A renewal the learner was still paying at the provider when the grace ran out brings the subscription back
    for a new period from the day it is paid (docs/ledger.md): one period, starting a new billing cycle, not the old
    cycle's next billing day, which could be days or nearly two months away."""
    learner, client, sub, renewal = renewal_due(tenant_a)
    with scope(tenant=tenant_a):
        hosted = services.existing_checkout(renewal, learner).redirect_url
        # It ended four days ago, its billing day with it; the renewal's checkout is still open.
        ended = timezone.now() - timedelta(days=4)
        Subscription.objects.filter(pk=sub.pk).update(status="ended", ended_at=ended, current_period_end=ended,
                                                      billing_day=ended.day)
    assert client.post(hosted, {"action": "pay"}, follow=True).status_code == 200
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "active"
        start = sub.current_period_start
        assert timezone.now() - timedelta(minutes=5) < start <= timezone.now()
        assert (sub.billing_day, sub.current_period_end) == (start.day, add_interval(start, "month"))


def test_a_plan_taken_off_sale_keeps_its_subscribers_until_the_team_stops_their_renewals(tenant_a, plan):
    """Off sale, a plan takes no new subscribers, and those it has keep renewing (closing enrolment must not cancel
    everyone). Retiring it is a separate, explicit step: "Stop renewing at period end" on its subscriptions."""
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.filter(pk=plan.pk).update(is_active=False)
        sub = Subscription.objects.get(user=learner)
        first_end = sub.current_period_end
        assert subscriptions_sweep(tenant=tenant_a, now=first_end) == {"renewals_opened": 1, "ended": 0}
    assert "You already have" not in pay_renewal(client, sub).content.decode()
    newcomer = host_client("alpha.test", member(tenant_a))
    assert newcomer.post("/checkout/", {"plan": "all", "key": "k1", "pay": "1"}).status_code == 404

    owner_client = owner(tenant_a)
    changelist = reverse("admin:payments_subscription_changelist")
    response = owner_client.post(changelist, {"action": "stop_renewing", "_selected_action": [sub.pk]}, follow=True)
    assert "1 subscription stops renewing" in response.content.decode()
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.cancel_at_period_end and sub.status == "active"
        assert subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)["ended"] == 1
        sub.refresh_from_db()
        assert sub.status == "ended" and sub.current_period_end > first_end


def test_a_new_subscription_keeps_the_billing_period_of_the_checkout_it_was_sold_in(tenant_a, plan):
    """The team turns the monthly plan into a yearly one while a learner's checkout is open: the learner pays the
    month's price for a month, not a year."""
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = client.post("/checkout/", {"plan": "all", "key": "k-month", "pay": "1"}).url
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.filter(pk=plan.pk).update(interval="year", price=29000)
    client.post(hosted, {"action": "pay"}, follow=True)
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        assert (sub.price, sub.interval) == (2900, "month")
        assert sub.current_period_end == add_interval(sub.current_period_start, "month")


def test_stopping_renewals_of_a_subscription_whose_renewal_is_due_ends_it_and_closes_the_renewal(tenant_a, plan):
    """Its paid period is over and its renewal open: "Stop renewing" ends it now, and the renewal cannot be paid."""
    learner, _client, sub, renewal = renewal_due(tenant_a)
    assert sub.status == "past_due"
    response = owner(tenant_a).post(reverse("admin:payments_subscription_changelist"),
                                    {"action": "stop_renewing", "_selected_action": [sub.pk]}, follow=True)
    assert response.status_code == 200
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "ended" and sub.renewal_order is None
        assert not renewal.payments.filter(status="pending").exists()
        assert not can_access(learner, catalog_item(tenant_a, title="Later", price=100))


def test_a_learner_whose_renewal_is_due_sees_its_price_and_may_decline_it_which_ends_the_subscription_now(
        tenant_a, plan):
    learner, client, sub, renewal = renewal_due(tenant_a)
    page = client.get("/subscription/").content.decode()
    assert "Your next All access period, ¥29.00, is due." in page and "Renew now for ¥29.00" in page
    page = client.post("/subscription/", {"action": "cancel"}, follow=True).content.decode()
    assert "Your subscription has ended; its renewal is closed." in page and "Ended on" in page
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "ended" and sub.renewal_order is None
        assert not renewal.payments.filter(status="pending").exists()
        assert not can_access(learner, catalog_item(tenant_a, title="Later", price=100))


def test_a_plan_payment_that_would_give_a_learner_a_second_subscription_is_booked_and_flagged(tenant_a, plan):
    """A state checkouts never lead to (a new plan's checkout closes an ended subscription's renewal checkout
    first): the subscription ended with its renewal still open, and the learner holds another one. Paying that
    renewal books the sale and tells the team, instead of failing the provider's event on every delivery."""
    from marketplace.models import AuditLog

    learner, client, sub, renewal = renewal_due(tenant_a)
    with scope(tenant=tenant_a):
        hosted = services.existing_checkout(renewal, learner).redirect_url
        Subscription.objects.filter(pk=sub.pk).update(status="ended", ended_at=timezone.now(), renewal_order=None)
        now = timezone.now()
        gift = services.entitlement_grant(tenant=tenant_a, user=learner, actor=None, whole_catalog=True,
                                          starts_at=now, ends_at=now + timedelta(days=30))
        held = Subscription.objects.create(tenant=tenant_a, user=learner, plan=plan, price=0, currency="CNY",
                                           interval=plan.interval,
                                           billing_day=now.day, current_period_start=now,
                                           current_period_end=now + timedelta(days=30), entitlement=gift)

    response = client.post(hosted, {"action": "pay"}, follow=True)
    assert response.status_code == 200 and "Payment received" in response.content.decode()
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert renewal.status == "paid"
        assert JournalEntry.objects.filter(order=renewal, kind="sale").count() == 1
        assert ledger_verify(tenant=tenant_a).ok
        assert list(Subscription.objects.filter(user=learner).values_list("pk", "status").order_by("pk")) == [
            (sub.pk, "ended"), (held.pk, "active")]
        flag = AuditLog.objects.get(action="payments.subscription_payment_unapplied")
        assert flag.data == {"held": held.pk, "renewal_of": sub.pk}

    # The team refunds it in full; the learner's other subscription is untouched.
    with scope(tenant=tenant_a):
        services.refund_create(payment=renewal.payments.get(status="succeeded"), amount=renewal.total,
                               actor=None)
        assert Subscription.objects.get(pk=held.pk).status == "active"
        assert ledger_verify(tenant=tenant_a).ok


def data_tier(tenant):
    """Two paid courses, "Data Course" in the category "Data" and "Design Course" in none, and the plan "data-tier"
    that opens the category "Data" only."""
    from catalog.models import Category

    data = catalog_item(tenant, title="Data Course", price=9900)
    design = catalog_item(tenant, title="Design Course", price=9900)
    with scope(tenant=tenant):
        category = Category.objects.create(tenant=tenant, name="Data", slug="data")
        data.categories.add(category)
        tier = SubscriptionPlan.objects.create(tenant=tenant, name="Data tier", slug="data-tier", price=1900)
        tier.categories.add(category)
    return data, design, tier


def test_a_tier_opens_only_its_categories(tenant_a):
    data, design, tier = data_tier(tenant_a)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=data-tier")
    with scope(tenant=tenant_a):
        assert can_access(learner, data) and not can_access(learner, design)
        assert entitled_item_ids(user=learner) == {data.pk}

        # The team leaves the plan without categories, which its form says is the whole catalog: so it is for
        # those who subscribed to the tier, too, not nothing.
        tier.categories.clear()
        assert can_access(learner, data) and can_access(learner, design)
        assert entitled_item_ids(user=learner) is None


def test_a_declined_or_abandoned_renewal_can_be_paid_again_within_the_grace_period(tenant_a, plan):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        end = sub.current_period_end
        subscriptions_sweep(tenant=tenant_a, now=end)
    assert "No payment was taken." in pay_renewal(client, sub, action="fail").content.decode()

    # Declined: "Renew now" starts another payment of the same renewal order; this one is left open and expires.
    response = client.post("/subscription/", {"action": "renew"})
    assert response.status_code == 302
    with scope(tenant=tenant_a):
        assert services.checkouts_expire(tenant=tenant_a, now=timezone.now() + timedelta(days=1)) == 1

    assert "Payment received" in pay_renewal(client, sub).content.decode()
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "active" and sub.current_period_end == add_interval(end, "month")
        renewal = Order.objects.get(user=learner, source="renewal")
        assert renewal.status == "paid"
        assert list(renewal.payments.order_by("pk").values_list("status", flat=True)) == [
            "failed", "cancelled", "succeeded"]
        assert JournalEntry.objects.filter(order=renewal, kind="sale").count() == 1
        assert ledger_verify(tenant=tenant_a).ok
    # Nothing is due any more.
    response = client.post("/subscription/", {"action": "renew"}, follow=True)
    assert "No renewal is due." in response.content.decode()


def subscribe_and_renew(client, learner, tenant):
    """Subscribe, reach the period's end and pay the renewal: (subscription, first order, renewal order)."""
    buy(client, "plan=all")
    with scope(tenant=tenant):
        sub = Subscription.objects.get(user=learner)
        subscriptions_sweep(tenant=tenant, now=sub.current_period_end)
    pay_renewal(client, sub)
    with scope(tenant=tenant):
        sub.refresh_from_db()
        first, renewal = Order.objects.filter(user=learner, status="paid").order_by("paid_at")
        return sub, first, renewal


def refund_in_full(order):
    services.refund_create(payment=order.payments.get(status="succeeded"), amount=order.total, actor=None)


def test_a_fully_refunded_renewal_ends_the_period_it_paid_for(tenant_a, plan):
    paid = catalog_item(tenant_a, title="Deep Course", price=9900)
    learner = member(tenant_a)
    sub, _first, renewal = subscribe_and_renew(host_client("alpha.test", learner), learner, tenant_a)
    with scope(tenant=tenant_a):
        refund_in_full(renewal)
        sub.refresh_from_db()
        sub.entitlement.refresh_from_db()
        assert sub.status == "ended" and sub.entitlement.ends_at <= timezone.now()
        assert not can_access(learner, paid)
        assert ledger_verify(tenant=tenant_a).ok


def test_refunding_an_earlier_period_keeps_the_paid_current_one(tenant_a, plan):
    paid = catalog_item(tenant_a, title="Deep Course", price=9900)
    learner = member(tenant_a)
    sub, first, _renewal = subscribe_and_renew(host_client("alpha.test", learner), learner, tenant_a)
    with scope(tenant=tenant_a):
        refund_in_full(first)
        first.refresh_from_db()
        sub.refresh_from_db()
        sub.entitlement.refresh_from_db()
        assert first.refunded == first.total
        assert sub.status == "active" and sub.entitlement.revoked_at is None
        assert sub.entitlement.ends_at == sub.current_period_end and can_access(learner, paid)


def test_a_fully_refunded_first_period_ends_the_subscription(tenant_a, plan):
    paid = catalog_item(tenant_a, title="Deep Course", price=9900)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    with scope(tenant=tenant_a):
        refund_in_full(Order.objects.get(user=learner))
        assert Subscription.objects.get(user=learner).status == "ended" and not can_access(learner, paid)


def test_one_renewal_that_cannot_open_does_not_stop_the_sweep(tenant_a, plan):
    stuck, late = member(tenant_a), member(tenant_a)
    buy(host_client("alpha.test", late), "plan=all")
    with scope(tenant=tenant_a):
        sweep_at = Subscription.objects.get(user=late).current_period_end
        subscriptions_sweep(tenant=tenant_a, now=sweep_at)  # late's renewal is due and never paid
    buy(host_client("alpha.test", stuck), "plan=all")
    with scope(tenant=tenant_a):
        # Stuck's subscription is in a currency that can no longer be charged: its renewal cannot open.
        Subscription.objects.filter(user=stuck).update(currency="XXX")
        counts = subscriptions_sweep(tenant=tenant_a, now=add_interval(sweep_at, "month"))
        assert counts == {"renewals_opened": 0, "ended": 1}
        assert Subscription.objects.get(user=late).status == "ended"
        assert Subscription.objects.get(user=stuck).status == "active"


def test_a_plan_set_to_free_ends_at_the_period_end_instead_of_renewing(tenant_a, plan):
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.filter(pk=plan.pk).update(price=0)
        sub = Subscription.objects.get(user=learner)
        assert subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end) == {"renewals_opened": 0,
                                                                                    "ended": 1}
        assert not Order.objects.filter(source="renewal").exists()


def test_renewals_keep_the_price_and_the_day_the_learner_subscribed_on(tenant_a, plan):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        # Subscribed on a 31st; the storefront then raises the plan's price for new subscribers.
        jan31 = sub.current_period_end.replace(year=2027, month=1, day=31)
        Subscription.objects.filter(pk=sub.pk).update(billing_day=31, current_period_end=jan31)
        SubscriptionPlan.objects.filter(pk=plan.pk).update(price=3900)
    assert "Your next period, ¥29.00, is due on" in client.get("/subscription/").content.decode()

    ends = []
    for _period in range(2):
        with scope(tenant=tenant_a):
            sub.refresh_from_db()
            subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        pay_renewal(client, sub)
        with scope(tenant=tenant_a):
            sub.refresh_from_db()
            ends.append(sub.current_period_end.date().isoformat())
    assert ends == ["2027-02-28", "2027-03-31"]
    with scope(tenant=tenant_a):
        assert list(Order.objects.filter(source="renewal").values_list("total", flat=True)) == [2900, 2900]
    newcomer = member(tenant_a)
    buy(host_client("alpha.test", newcomer), "plan=all")
    with scope(tenant=tenant_a):
        assert Subscription.objects.get(user=newcomer).price == Order.objects.get(user=newcomer).total == 3900


def test_a_plan_without_grace_days_still_gives_a_day_to_pay_the_renewal(tenant_a, django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Strict", slug="strict", price=2900, interval="month",
                                        grace_days=0)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=strict")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        end = sub.current_period_end
        with django_capture_on_commit_callbacks(execute=True):
            assert subscriptions_sweep(tenant=tenant_a, now=end) == {"renewals_opened": 1, "ended": 0}
        sub.refresh_from_db()
        assert sub.status == "past_due" and sub.grace_until == end + timedelta(days=1)
        assert sub.entitlement.ends_at == end + timedelta(days=1)
        assert [m.to for m in mail.outbox] == [[learner.email]] and "renew" in mail.outbox[0].subject.lower()
        assert Order.objects.get(source="renewal").status == "pending"  # the emailed checkout is still open
        assert subscriptions_sweep(tenant=tenant_a, now=end + timedelta(hours=23)) == {
            "renewals_opened": 0, "ended": 0}

    assert "Payment received" in pay_renewal(client, sub).content.decode()
    with scope(tenant=tenant_a):
        sub.refresh_from_db()
        assert sub.status == "active" and sub.current_period_end == add_interval(end, "month")


def test_a_late_sweep_gives_the_whole_grace_period_from_when_the_renewal_opens(
        tenant_a, plan, django_capture_on_commit_callbacks):
    learner, leaving = member(tenant_a), member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    client = host_client("alpha.test", leaving)
    buy(client, "plan=all")
    client.post("/subscription/", {"action": "cancel"})
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        # Beat was down for a week: the period ended longer ago than the plan's three grace days.
        late = max(Subscription.objects.values_list("current_period_end", flat=True)) + timedelta(days=7)
        with django_capture_on_commit_callbacks(execute=True):
            assert subscriptions_sweep(tenant=tenant_a, now=late) == {"renewals_opened": 1, "ended": 1}
        sub.refresh_from_db()
        assert sub.status == "past_due" and sub.grace_until == late + timedelta(days=3)
        assert sub.entitlement.ends_at == late + timedelta(days=3)
        assert Order.objects.get(source="renewal").status == "pending"
        # Only the learner whose renewal is due is asked to renew; the one who cancelled is not.
        assert [m.to for m in mail.outbox] == [[learner.email]]
        assert Subscription.objects.get(user=leaving).status == "ended"

        assert subscriptions_sweep(tenant=tenant_a, now=late + timedelta(days=3, seconds=1)) == {
            "renewals_opened": 0, "ended": 1}
        sub.refresh_from_db()
        assert sub.status == "ended" and Order.objects.get(source="renewal").status == "cancelled"


def test_a_renewal_keeps_the_currency_the_learner_subscribed_in(tenant_a, plan):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")  # 2900 fen: ¥29.00
    # The storefront then moves to yen: 2900 minor units would now be ¥2,900 JPY, a different price.
    tenant_a.currency = "JPY"
    tenant_a.save(update_fields=["currency"])
    assert "Your next period, ¥29.00, is due on" in client.get("/subscription/").content.decode()
    admin_page = owner(tenant_a).get(reverse("admin:payments_subscription_changelist")).content.decode()
    assert "¥29.00" in admin_page and "¥2,900" not in admin_page

    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        assert sub.currency == "CNY"
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        renewal = Order.objects.get(source="renewal")
        assert (renewal.currency, renewal.total) == ("CNY", 2900)
    assert "Payment received" in pay_renewal(client, sub).content.decode()
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert renewal.status == "paid" and renewal.payments.get(status="succeeded").currency == "CNY"
        assert ledger_verify(tenant=tenant_a).ok

    # New subscribers pay in the storefront's new currency, and renew in it.
    newcomer = member(tenant_a)
    buy(host_client("alpha.test", newcomer), "plan=all")
    with scope(tenant=tenant_a):
        assert Subscription.objects.get(user=newcomer).currency == Order.objects.get(user=newcomer).currency == "JPY"


def test_existing_subscriptions_take_the_currency_of_their_first_order(tenant_a, plan):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("payments.migrations.0014_subscription_currency")
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    tenant_a.currency = "JPY"
    tenant_a.save(update_fields=["currency"])
    with scopes_disabled():
        Subscription.objects.update(currency="")
        migration.from_first_order(apps, None)
        assert Subscription.objects.get(user=learner).currency == "CNY"


def test_a_renewal_email_queued_before_the_renewal_was_paid_or_ended_is_not_sent(tenant_a, plan):
    """The sweep queues the email when it opens the renewal; by the time the worker sends it the learner may have
    paid, or the subscription may have ended (refunded): neither learner is asked to pay."""
    from payments.tasks import renewal_email_send

    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(minutes=1))
    mail.outbox.clear()
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        renewal_email_send(tenant_id=tenant_a.pk, subscription_id=sub.pk)
        assert Subscription.objects.get(pk=sub.pk).status == "active"
        Subscription.objects.filter(pk=sub.pk).update(status="ended")
        renewal_email_send(tenant_id=tenant_a.pk, subscription_id=sub.pk)
    assert not [m for m in mail.outbox if "renew" in m.subject.lower()]


def test_a_checkout_key_sent_first_cannot_keep_someone_elses_renewal_from_opening(tenant_a):
    """Learners choose their checkout keys; a renewal's key is signed by the server, so no key a learner sends can be
    the one the sweep opens the renewal with."""
    from payments.subscriptions import renewal_key

    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900)
    course = catalog_item(tenant_a, title="Course", price=1000)
    subscriber = member(tenant_a)
    buy(host_client("alpha.test", subscriber), "plan=all")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=subscriber)
    squatter = host_client("alpha.test", member(tenant_a))
    for key in (f"renewal-{sub.pk}-{sub.current_period_end:%Y%m%d%H%M%S}", f"renewal-{sub.pk}"):
        assert squatter.post("/checkout/", {"item": course.slug, "key": key, "pay": "1"}).status_code == 302
    with scope(tenant=tenant_a):
        assert renewal_key(sub) == renewal_key(Subscription.objects.get(pk=sub.pk))  # the same for a second sweep
        counts = subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(minutes=1))
        sub.refresh_from_db()
    assert counts["renewals_opened"] == 1 and sub.status == Subscription.Status.PAST_DUE


@pytest.mark.parametrize("renewal_open", [False, True])
def test_deleting_the_account_ends_the_subscription_and_no_renewal_is_opened_or_mailed(
        tenant_a, plan, renewal_open, django_capture_on_commit_callbacks):
    from accounts.privacy import user_erase

    if renewal_open:
        learner, _client, sub, _renewal = renewal_due(tenant_a)
    else:
        learner = member(tenant_a)
        buy(host_client("alpha.test", learner), "plan=all")
        with scope(tenant=tenant_a):
            sub = Subscription.objects.get(user=learner)
    user_erase(user=learner)
    mail.outbox.clear()
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.ENDED
        # An open renewal checkout is closed with it.
        assert not Order.objects.filter(user=learner, status=Order.Status.PENDING).exists()
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(days=40))
        assert Order.objects.filter(user=learner).count() == 1 + renewal_open
    assert mail.outbox == []


def test_the_checkout_says_what_each_renewal_costs_and_how_long_a_due_one_keeps_access(tenant_a, plan):
    """A coupon takes off the first period only and tax is added on top: the page says the renewal's own price before
    Pay, and the renewal the period's end opens costs exactly that."""
    from payments.models import Coupon, PaymentSettings

    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=1000, prices_include_tax=False)
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Yearly", slug="yearly", price=29000, interval="year",
                                        grace_days=0)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get("/checkout/?plan=all&coupon=SAVE20").content.decode()
    assert "Pay ¥25.52" in page  # (29.00 − 20 %) + 10 % tax
    assert "Then ¥31.90 a month until you cancel." in page
    assert "access continues for 3 days while it is due." in page
    assert 'aria-describedby="plan-terms' in page
    yearly = client.get("/checkout/?plan=yearly").content.decode()
    assert "Then ¥319.00 a year until you cancel." in yearly
    assert "access continues for 1 day while it is due." in yearly  # no grace days: the one day to pay

    buy(client, "plan=all", coupon="SAVE20")
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        assert Order.objects.get(user=learner).total == 2552
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
        assert Order.objects.get(source="renewal").total == 3190
        first = Order.objects.filter(user=learner).earliest("created_at")
    receipt = client.get(f"/orders/{first.number}/")
    assert "Manage your subscription" in receipt.content.decode()
