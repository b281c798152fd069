"""The three-decimal dinars (BHD, KWD): card networks, and so Stripe, charge them only in whole tens of fils.

Prices and fixed coupons are entered in that step, a percentage's discount and tax added on top are rounded to it,
and refunds go in it, so every amount sent to the provider can be charged.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Role
from catalog.models import Bundle
from marketplace.errors import ApplicationError
from payments import services
from payments.ledger import ledger_verify
from payments.models import Coupon, Order, PaymentSettings, Refund, SubscriptionPlan
from payments.splits import tax_of
from tests.conftest import host_client
from tests.factories import TenantFactory, catalog_creator, catalog_item, member
from tests.marketplace.test_admin_constraints import field_errors
from tests.payments.test_stripe import stripe_api, stripe_storefront  # noqa: F401 (the fixture)


@pytest.mark.django_db
def test_prices_and_fixed_coupons_off_the_step_are_refused_at_their_field():
    tenant = TenantFactory(slug="alpha", domain="alpha.test", currency="KWD")
    owner = host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))

    plan = owner.post(reverse("admin:payments_subscriptionplan_add"), {
        "name": "All", "slug": "all", "interval": "month", "price": "5.005", "grace_days": 3, "is_active": "on"})
    fixed = owner.post(reverse("admin:payments_coupon_add"), {"code": "off", "kind": "fixed", "value": "1.255",
                                                             "is_active": "on"})
    assert "KWD is charged in steps of KD 0.010" in field_errors(plan, "price")
    assert "KWD is charged in steps of KD 0.010" in field_errors(fixed, "value")
    percent = owner.post(reverse("admin:payments_coupon_add"), {"code": "pct", "kind": "percent", "value": "12.55",
                                                               "is_active": "on"})
    assert percent.status_code == 302  # a percentage, not money
    with scope(tenant=tenant):
        assert not SubscriptionPlan.objects.exists()
        assert list(Coupon.objects.values_list("code", flat=True)) == ["PCT"]
        item = catalog_item(tenant, title="Course", price=2000)
        item.price = 2005
        with pytest.raises(ValidationError, match="steps of KD 0.010"):
            item.full_clean()
        with pytest.raises(ValidationError, match="steps of KD 0.010"):
            Bundle(tenant=tenant, title="Set", slug="set", price=3001).full_clean()
        item.price = 2010
        item.full_clean()  # a whole number of tens is fine


@given(price=st.integers(1, 10**7), percent=st.integers(0, 10000), rate=st.integers(0, 5000),
       included=st.booleans())
def test_a_quote_in_steps_of_ten_charges_a_multiple_of_ten(price, percent, rate, included):
    price *= 10
    discount = services._discount(Coupon(kind=Coupon.Kind.PERCENT, value=percent), subtotal=price, item=None,
                                  step=10)
    after = price - discount
    tax = tax_of(after, rate_bp=rate, included=included, step=10)
    total = after if included else after + tax
    assert discount % 10 == 0 and 0 <= discount <= price
    assert total % 10 == 0
    # Rounded to the nearest ten fils: never more than half a step from the exact amount.
    assert abs(discount * 10000 - price * percent) <= 5 * 10000
    if not included:
        assert abs(tax * 10000 - after * rate) <= 5 * 10000


@pytest.fixture
def kuwait(transactional_db, settings, stripe_api, live_server):  # noqa: F811
    tenant = stripe_storefront(settings, stripe_api, live_server, slug="kw", name="Kuwait Academy",
                               domain="kw.localhost", currency="KWD")
    with scope(tenant=tenant):
        PaymentSettings.objects.create(tenant=tenant, tax_rate_bp=500, prices_include_tax=False)
        Coupon.objects.create(tenant=tenant, code="SAVE15", kind=Coupon.Kind.PERCENT, value=1500)
    return tenant


def test_a_kwd_sale_with_a_percentage_coupon_and_tax_on_top_is_charged_and_refunded_in_tens_of_fils(
        kuwait, stripe_api):  # noqa: F811
    course = catalog_item(kuwait, title="Course", price=10230, creators=[catalog_creator(kuwait, "Ada")])
    learner = member(kuwait)
    with scope(tenant=kuwait):
        started = services.checkout_start(tenant=kuwait, user=learner, idempotency_key="k1", item=course,
                                          coupon_code="SAVE15", provider_name="stripe")
    # 15 % of 10.230 is 1.5345, rounded to 1.530; 5 % tax on the 8.700 left is 0.435, rounded to 0.440.
    order = started.order
    assert (order.discount, order.tax, order.total) == (1530, 440, 9140)
    assert stripe_api.complete(started.payment.provider_ref)["delivery"]["status"] == 200

    with scope(tenant=kuwait):
        payment = order.payments.get()
        with pytest.raises(ApplicationError) as refused:
            services.refund_create(payment=payment, amount=1005, actor=None)
        assert refused.value.code == "refund_amount_invalid"
        assert not Refund.objects.exists()
        services.refund_create(payment=payment, amount=1000, actor=None)
        assert Order.objects.get(pk=order.pk).refunded == 1000
        assert ledger_verify(tenant=kuwait).ok


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "typed", "stored", "shown"), [
    ("percent", "12.5", 1250, "12.50"), ("percent", "99.99", 9999, "99.99"), ("fixed", "10.5", 1050, "10.50")])
def test_a_coupon_is_typed_as_it_is_shown_and_stored_in_basis_points_or_minor_units(kind, typed, stored, shown):
    tenant = TenantFactory(slug="alpha", domain="alpha.test", currency="CNY")
    owner = host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_coupon_add"), {"code": "c", "kind": kind, "value": typed,
                                                                "is_active": "on"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    with scope(tenant=tenant):
        coupon = Coupon.objects.get()
    assert coupon.value == stored
    form = owner.get(reverse("admin:payments_coupon_change", args=[coupon.pk])).context["adminform"].form
    assert str(form["value"].value()) == shown


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "typed", "error"), [
    ("percent", "100.5", "A coupon takes less than 100% off"),
    ("percent", "100", "To give something away, grant the learner access under Entitlements."),
    ("percent", "12.345", "A percentage takes at most two decimals (12.25)."),
    ("fixed", "10.555", "CNY amounts have at most 2 decimals.")])
def test_a_coupon_value_its_kind_cannot_hold_is_refused_at_its_field(kind, typed, error):
    tenant = TenantFactory(slug="alpha", domain="alpha.test", currency="CNY")
    owner = host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_coupon_add"), {"code": "c", "kind": kind, "value": typed,
                                                                "is_active": "on"})
    assert error in field_errors(response, "value")
    with scope(tenant=tenant):
        assert not Coupon.objects.exists()
