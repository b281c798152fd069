"""What the admin says after the team acts on orders, refunds, payouts and promoters: figures that add up as shown,
refunds findable by their order, and actions that say what they did, or that there was nothing to do."""

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from marketplace.models import AuditLog
from marketplace.money import format_money
from payments import services
from payments.models import Order, PaymentSettings, Promoter
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def owner(tenant):
    return host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))


def test_tax_included_in_prices_is_said_on_the_order_and_a_refund_is_found_by_its_order(tenant_a):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=600, prices_include_tax=True)
    course = catalog_item(tenant_a, title="Course", price=4900)
    learner = member(tenant_a, email="lin@example.com")
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        services.refund_create(payment=order.payments.get(), amount=1000, actor=None)
    team = owner(tenant_a)

    page = team.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()
    assert "¥2.77, included in the total" in page  # 49.00 × 6 / 106

    listing = team.get(reverse("admin:payments_refund_changelist"), {"q": order.number}).content.decode()
    assert f'{reverse("admin:payments_order_change", args=[order.pk])}">{order.number}</a>' in listing
    assert "1 refund" in listing
    assert "0 refunds" in team.get(reverse("admin:payments_refund_changelist"), {"q": "ZKNOSUCH"}).content.decode()
    by_email = team.get(reverse("admin:payments_refund_changelist"), {"q": "lin@example.com"}).content.decode()
    assert order.number in by_email


def test_a_subscription_a_refund_and_a_payout_show_their_amounts_as_money_on_their_pages(tenant_a):
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import Payout, SubscriptionPlan
    from payments.payouts import payout_run, shares_release
    from tests.factories import catalog_creator

    course = catalog_item(tenant_a, title="Course", price=4900, creators=[catalog_creator(tenant_a, "Ada")])
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=1900)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, f"item={course.slug}")
    buy(client, "plan=all")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner, lines__item=course)
        refund = services.refund_create(payment=order.payments.get(), amount=900, actor=None)
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
        payout_run(tenant=tenant_a, actor=None, reference="B1")
        subscription, payout = learner.subscriptions.get(), Payout.objects.filter(creator__isnull=False).get()
    team = owner(tenant_a)

    page = team.get(reverse("admin:payments_subscription_change", args=[subscription.pk])).content.decode()
    assert "¥19.00" in page and ">1900<" not in page
    page = team.get(reverse("admin:payments_refund_change", args=[refund.pk])).content.decode()
    assert "¥9.00" in page and ">900<" not in page and order.number in page
    page = team.get(reverse("admin:payments_payout_change", args=[payout.pk])).content.decode()
    assert f">{format_money(payout.amount, 'CNY')}<" in page and f">{payout.amount}<" not in page


def test_a_payout_run_with_nothing_payable_says_why(tenant_a):
    response = owner(tenant_a).post(reverse("admin:payments_payout_run"), {"reference": "B1"}, follow=True)
    page = response.content.decode()
    assert "Nothing is payable yet" in page and "0 payouts made." not in page


def test_approving_a_promoter_twice_records_one_decision_and_says_so(tenant_a):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
    learner = member(tenant_a)
    host_client("alpha.test", learner).post("/promote/")
    with scope(tenant=tenant_a):
        promoter = Promoter.objects.get(user=learner)
    team = owner(tenant_a)
    changelist = reverse("admin:payments_promoter_changelist")

    first = team.post(changelist, {"action": "approve", "_selected_action": [promoter.pk]}, follow=True)
    assert "1 promoter is now approved." in first.content.decode()
    second = team.post(changelist, {"action": "approve", "_selected_action": [promoter.pk]}, follow=True)
    assert "1 promoter already was approved: nothing changed." in second.content.decode()
    with scope(tenant=tenant_a):
        assert AuditLog.objects.filter(action="payments.promoter_approved").count() == 1
        assert Promoter.objects.get(pk=promoter.pk).status == Promoter.Status.APPROVED


def test_the_order_list_dates_each_order_once_by_when_it_was_paid_or_else_placed(tenant_a):
    from django.utils import formats, timezone

    course = catalog_item(tenant_a, title="Course", price=4900)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}", action="cancel")
    with scope(tenant=tenant_a):
        paid, cancelled = Order.objects.get(status="paid"), Order.objects.get(status="cancelled")
        Order.objects.filter(pk=paid.pk).update(created_at=paid.created_at - timezone.timedelta(hours=5))
        paid.refresh_from_db()
    page = owner(tenant_a).get(reverse("admin:payments_order_changelist")).content.decode()
    assert "column-when" in page and "column-created_at" not in page and "column-paid_at" not in page

    def shown(moment):
        return formats.localize(timezone.localtime(moment))

    assert shown(paid.paid_at) in page and shown(paid.created_at) not in page
    assert shown(cancelled.created_at) in page
