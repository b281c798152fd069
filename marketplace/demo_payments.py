"""The demo's money: settings, plans, a coupon, a promoter, and a few purchases made through the real checkout and
webhook path, so the admin shows orders, splits, the ledger and statements on first start. Idempotent: every
purchase has a fixed idempotency key, and a second run finds the same orders."""

from __future__ import annotations

from catalog.models import Bundle, ContentItem
from payments import services
from payments.models import Coupon, Order, PaymentSettings, Promoter, SubscriptionPlan
from payments.promoters import promoter_apply, promoter_decide, touch_record

PLANS = {
    "USD": [("monthly", "All access, monthly", "month", 1900), ("yearly", "All access, yearly", "year", 15900)],
    "CNY": [("monthly", "全站畅学 月卡", "month", 4900), ("yearly", "全站畅学 年卡", "year", 39900)],
}


def _pay(tenant, started) -> None:
    """Pay a pending demo order as the sandbox's "Pay" button does: a signed webhook through the real path."""
    if started.payment.status == started.payment.Status.PENDING:
        services.sandbox_settle(tenant=tenant, payment=started.payment, outcome="succeeded")


def seed_payments(*, tenant, actor, people: dict) -> dict:
    settings_row, _ = PaymentSettings.objects.get_or_create(tenant=tenant)
    settings_row.promoters_enabled = True
    if tenant.currency == "CNY":  # prices include 6% VAT on the Chinese storefront
        settings_row.tax_rate_bp, settings_row.prices_include_tax = 600, True
    settings_row.save()
    if services.split_rule_current(tenant=tenant).promoter_commission_bp == 0:
        services.split_rule_create(tenant=tenant, actor=actor, promoter_commission_bp=1000,
                                   promoter_second_level_bp=300)
    for slug, name, interval, price in PLANS.get(tenant.currency, PLANS["USD"]):
        SubscriptionPlan.objects.get_or_create(tenant=tenant, slug=slug, defaults={
            "name": name, "interval": interval, "price": price, "creators_share": True})
    Coupon.objects.get_or_create(tenant=tenant, code="WELCOME10", defaults={"kind": "percent", "value": 1000})

    slug = tenant.slug
    promoter_user = people[f"learner2@{slug}.demo"]
    promoter = Promoter.objects.filter(user=promoter_user).first() or promoter_apply(tenant=tenant,
                                                                                     user=promoter_user)
    if promoter.status != Promoter.Status.APPROVED:
        promoter_decide(promoter=promoter, status=Promoter.Status.APPROVED, actor=actor)

    paid = list(ContentItem.objects.filter(status="published", price__gt=0).order_by("id"))
    buyer3, buyer4, buyer5 = (people[f"learner{i}@{slug}.demo"] for i in (3, 4, 5))
    if not Order.objects.filter(idempotency_key=f"demo-{slug}-1").exists():
        touch_record(tenant=tenant, code=promoter.code, user=buyer3, path="/")
    purchases = [
        (buyer3, {"item": paid[-1]}, f"demo-{slug}-1"),
        (buyer4, {"item": paid[-2], "coupon_code": "WELCOME10"}, f"demo-{slug}-2"),
        (buyer4, {"bundle": Bundle.objects.filter(is_published=True).order_by("id").last()}, f"demo-{slug}-3"),
        (buyer5, {"plan": SubscriptionPlan.objects.get(slug="monthly")}, f"demo-{slug}-4"),
    ]
    for user, what, key in purchases:
        existing = Order.objects.filter(idempotency_key=key).first()
        if existing is None:
            _pay(tenant, services.checkout_start(tenant=tenant, user=user, idempotency_key=key, **what))
        elif existing.status == Order.Status.PENDING:
            _pay(tenant, services.existing_checkout(existing, user))
    refunded = Order.objects.get(idempotency_key=f"demo-{slug}-2")
    if refunded.refunded == 0 and refunded.status == Order.Status.PAID:
        services.refund_create(payment=refunded.payments.get(status="succeeded"), amount=refunded.total // 2,
                               actor=actor, reason="Demo: partial refund")
    return {"orders": Order.objects.count(), "promoter": promoter.code}
