"""Commissions on subscription renewals, as Teachable pays affiliates on recurring payments: off by default (only
the first payment was brought by the link), on when the storefront chooses, and only while the promoter still
earns."""

import pytest
from django_scopes import scope

from payments.ledger import ledger_verify
from payments.models import Order, PaymentSettings, Promoter, Subscription, SubscriptionPlan
from payments.promoters import promoter_decide
from payments.subscriptions import subscriptions_sweep
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_checkout import buy
from tests.payments.test_promoters import commissions, programme, promoter  # noqa: F401 (a fixture)
from tests.payments.test_subscriptions import pay_renewal, renewal_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(tenant_a, programme):  # noqa: F811
    with scope(tenant=tenant_a):
        return SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900,
                                               interval="month", grace_days=3)


def subscribed_through(tenant, seller: Promoter | None = None, link: str = ""):
    """A learner follows the promoter's link (or ``link``, a query string) and subscribes; at the period's end the
    sweep opens their renewal. Returns the first order, the renewal order, and a way to pay the renewal."""
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    client.get(f"/?{link or f'ref={seller.code}'}")
    buy(client, "plan=all")
    with scope(tenant=tenant):
        first = Order.objects.get(user=learner)
        sub = Subscription.objects.get(user=learner)
        subscriptions_sweep(tenant=tenant, now=sub.current_period_end)
        renewal = Order.objects.get(user=learner, source="renewal")
    return first, renewal, lambda: pay_renewal(client, sub)


def settings_set(tenant, **fields):
    with scope(tenant=tenant):
        PaymentSettings.objects.filter(tenant=tenant).update(**fields)


def test_a_renewal_earns_no_commission_by_default(tenant_a, plan):
    seller = promoter(tenant_a)
    first, renewal, pay = subscribed_through(tenant_a, seller)
    pay()
    assert commissions(tenant_a, first) == {seller.pk: 290}
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert renewal.status == "paid" and renewal.promoter is None
    assert commissions(tenant_a, renewal) == {}


def test_with_renewal_commissions_on_the_promoter_and_their_recruiter_earn_on_each_renewal(tenant_a, plan):
    settings_set(tenant_a, renewal_commissions=True)
    top = promoter(tenant_a)
    seller = promoter(tenant_a, recruited_by=top)
    first, renewal, pay = subscribed_through(tenant_a, seller)
    pay()
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert (renewal.promoter, renewal.promoter_second_level) == (seller, top)
        assert renewal.attribution["renewal_of"] == first.number
        assert renewal.attribution["touch"] == first.attribution["touch"]  # the evidence is the first sale's
        assert ledger_verify(tenant=tenant_a).ok
    assert commissions(tenant_a, renewal) == {seller.pk: 290, top.pk: 145}


def test_a_promoter_suspended_since_earns_nothing_on_the_renewal(tenant_a, plan):
    settings_set(tenant_a, renewal_commissions=True)
    seller = promoter(tenant_a)
    _first, renewal, pay = subscribed_through(tenant_a, seller)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=seller, status="suspended", actor=None)
    pay()
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert renewal.status == "paid" and renewal.promoter == seller  # named, but no longer earning
    assert commissions(tenant_a, renewal) == {}


def test_a_subscription_nobody_brought_renews_with_nobody_credited(tenant_a, plan):
    settings_set(tenant_a, renewal_commissions=True)
    _learner, client, sub, renewal = renewal_due(tenant_a)
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        renewal.refresh_from_db()
        assert renewal.status == "paid" and renewal.promoter is None and renewal.attribution == {}


def test_with_renewal_commissions_on_the_partner_who_brought_the_subscription_earns_on_its_renewal(tenant_a, plan):
    from payments import services
    from tests.payments.test_partners import channel, earned

    settings_set(tenant_a, renewal_commissions=True)
    with scope(tenant=tenant_a):
        services.split_rule_create(tenant=tenant_a, actor=None, partner_commission_bp=2000)
    school = channel(tenant_a)
    first, renewal, pay = subscribed_through(tenant_a, link=f"zc={school.code}")
    with scope(tenant=tenant_a):
        assert renewal.partner == school and renewal.channel is None
        assert renewal.attribution["partner"] == {**first.attribution["partner"], "renewal_of": first.number}
    pay()
    assert earned(tenant_a, first, "partner") == earned(tenant_a, renewal, "partner") == {school.pk: 580}
