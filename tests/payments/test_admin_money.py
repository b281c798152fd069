"""The storefront's money settings in the admin: values that would break checkout or the nightly jobs are refused at
their field, and what the team or the operator saves is what learners see."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from payments.models import Coupon, PaymentSettings, SplitRule, Subscription, SubscriptionPlan
from tests.conftest import host_client, operator_client
from tests.factories import member
from tests.marketplace.test_admin_constraints import field_errors
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def owner(tenant):
    return host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))


def settings_form(**changes):
    return {"tax_rate_bp": 0, "prices_include_tax": "on", "refund_window_days": 14, "promoters_enabled": "on",
            "attribution_window_days": 30, **changes}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("attribution_window_days", 1000000, "less than or equal to 3650"),
    ("attribution_window_days", 0, "greater than or equal to 1"),
    ("refund_window_days", 1000000, "less than or equal to 3650"),
])
def test_windows_out_of_range_are_refused_at_their_field(tenant_a, field, value, message):
    response = owner(tenant_a).post(reverse("admin:payments_paymentsettings_add"), settings_form(**{field: value}))
    assert response.status_code == 200 and message in field_errors(response, field)
    with scope(tenant=tenant_a):
        assert not PaymentSettings.objects.exists()


def test_a_grace_period_out_of_range_is_refused_at_its_field(tenant_a):
    response = owner(tenant_a).post(reverse("admin:payments_subscriptionplan_add"), {
        "name": "All", "slug": "all", "interval": "month", "price": "10.00", "grace_days": 10000000, "is_active": "on"})
    assert response.status_code == 200 and "less than or equal to 365" in field_errors(response, "grace_days")


def test_a_percentage_over_100_is_refused_at_the_value(tenant_a):
    response = owner(tenant_a).post(reverse("admin:payments_coupon_add"), {
        "code": "big", "kind": "percent", "value": "200", "is_active": "on"})
    assert response.status_code == 200
    assert "A coupon takes less than 100% off: every sale is paid for." in field_errors(response, "value")
    assert "percent_at_most_100" not in response.content.decode()
    with scope(tenant=tenant_a):
        assert not Coupon.objects.exists()


def test_the_new_split_rule_is_named_by_its_version(tenant_a):
    response = owner(tenant_a).post(reverse("admin:payments_splitrule_add"), {
        "partner_commission_bp": 1500, "promoter_commission_bp": 0, "promoter_second_level_bp": 0}, follow=True)
    with scope(tenant=tenant_a):
        version = SplitRule.objects.get(partner_commission_bp=1500).version
    assert f"v{version}" in response.content.decode() and "vNone" not in response.content.decode()


def test_the_operator_saves_a_storefronts_payment_settings_on_the_platform_host(tenant_a):
    with scope(tenant=tenant_a):
        row = PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=600)
    operator = operator_client()
    response = operator.post(reverse("admin:payments_paymentsettings_change", args=[row.pk]),
                             settings_form(tax_rate_bp=800))
    assert response.status_code == 302
    with scopes_disabled():
        row.refresh_from_db()
        assert row.tax_rate_bp == 800


def test_a_statement_of_an_id_no_database_holds_is_not_found(tenant_a):
    url = reverse("admin:payments_payout_statement", args=["creator", 10**22])
    assert owner(tenant_a).get(url).status_code == 404


def test_plans_say_when_tax_comes_on_top_and_the_subscription_says_what_the_renewal_charges(tenant_a):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=600, prices_include_tax=False)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=3000)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Trial", slug="trial", price=0)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    plans = client.get("/plans/").content.decode()
    assert "+ tax" in plans and "?plan=all" in plans
    assert "?plan=trial" not in plans and client.get("/checkout/?plan=trial").status_code == 404
    buy(client, "plan=all")
    page = client.get("/subscription/").content.decode()
    assert re.search(r"Your next period, ¥31\.80, is due on [^<]*: we email you the renewal to pay then\.", page)
    with scope(tenant=tenant_a):
        assert Subscription.objects.get(user=learner).price == 3000
