"""Per-storefront unique rules in the admin: a duplicate is a form error next to its field, never a server error."""

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from payments.models import Coupon, SubscriptionPlan
from tests.conftest import host_client, operator_client
from tests.factories import member

pytestmark = pytest.mark.django_db


def coupon_form(code: str) -> dict:
    return {"code": code, "kind": "percent", "value": "2000", "item": "", "max_uses": "", "expires_at_0": "",
            "expires_at_1": "", "is_active": "on"}


def plan_form(slug: str) -> dict:
    return {"name": "Monthly", "slug": slug, "description": "", "interval": "month", "price": "3000",
            "grace_days": "3", "is_active": "on"}


def field_errors(response, field: str) -> str:
    """The error list the admin shows next to one field."""
    page = response.content.decode()
    start = page.find(f'id="id_{field}_error"')
    return page[start:page.index("</ul>", start)] if start != -1 else ""


def test_a_coupon_code_differing_only_in_case_is_a_duplicate_shown_at_the_code(tenant_a):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_coupon_add"), coupon_form(" save20 "))
    assert response.status_code == 200
    assert "Coupon with this Code already exists." in field_errors(response, "code")
    with scope(tenant=tenant_a):
        assert list(Coupon.objects.values_list("code", flat=True)) == ["SAVE20"]


def test_a_new_coupon_code_is_stored_upper_case(tenant_a):
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_coupon_add"), coupon_form(" welcome "))
    assert response.status_code == 302
    with scope(tenant=tenant_a):
        coupon = Coupon.objects.get()
        assert (coupon.code, coupon.tenant) == ("WELCOME", tenant_a)


def test_renaming_a_coupon_to_another_coupons_code_is_refused(tenant_a):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
        other = Coupon.objects.create(tenant=tenant_a, code="SAVE10", kind="percent", value=1000)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_coupon_change", args=[other.pk]), coupon_form("Save20"))
    assert response.status_code == 200
    assert "Coupon with this Code already exists." in field_errors(response, "code")
    with scope(tenant=tenant_a):
        other.refresh_from_db()
        assert other.code == "SAVE10"


def test_the_same_coupon_code_on_another_storefront_is_allowed(tenant_a, tenant_b):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
    owner_b = host_client("beta.test", member(tenant_b, Role.OWNER, mfa=True))
    response = owner_b.post(reverse("admin:payments_coupon_add"), coupon_form("save20"))
    assert response.status_code == 302
    with scopes_disabled():
        assert sorted(Coupon.objects.values_list("tenant__slug", "code")) == [("alpha", "SAVE20"), ("beta", "SAVE20")]


def test_a_duplicate_subscription_plan_slug_is_a_form_error(tenant_a):
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Monthly", slug="monthly", price=3000)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.post(reverse("admin:payments_subscriptionplan_add"), plan_form("monthly"))
    assert response.status_code == 200
    assert "Subscription plan with this Slug already exists." in field_errors(response, "slug")
    with scope(tenant=tenant_a):
        assert SubscriptionPlan.objects.count() == 1


def test_the_operator_still_edits_a_storefronts_row_on_the_platform_host(tenant_a):
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
        other = Coupon.objects.create(tenant=tenant_a, code="SAVE10", kind="percent", value=1000)
    operator = operator_client()
    assert operator.get(reverse("admin:payments_coupon_add")).status_code == 403  # no tenant to add it to
    clash = operator.post(reverse("admin:payments_coupon_change", args=[other.pk]), coupon_form("save20"))
    assert clash.status_code == 200
    assert "Coupon with this Code already exists." in field_errors(clash, "code")
    renamed = operator.post(reverse("admin:payments_coupon_change", args=[other.pk]), coupon_form("save15"))
    assert renamed.status_code == 302
    with scopes_disabled():
        other.refresh_from_db()
        assert (other.code, other.tenant) == ("SAVE15", tenant_a)
