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
    return {"code": code, "kind": "percent", "value": "20", "item": "", "max_uses": "", "expires_at_0": "",
            "expires_at_1": "", "is_active": "on"}


def plan_form(slug: str) -> dict:
    return {"name": "Monthly", "slug": slug, "description": "", "interval": "month", "price": "30.00",
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


def domain_forms(tenant, rows: list[dict]) -> dict:
    """The operator's tenant form with its domain inline holding ``rows`` (id, host, is_primary, DELETE)."""
    data = {"name": tenant.name, "primary_color": tenant.primary_color, "default_language": tenant.default_language,
            "currency": tenant.currency, "platform_fee_bp": tenant.platform_fee_bp, "is_active": "on",
            "domains-TOTAL_FORMS": str(len(rows)),
            "domains-INITIAL_FORMS": str(sum(1 for row in rows if row.get("id"))), "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000"}
    for n, row in enumerate(rows):
        data.update({f"domains-{n}-id": str(row.get("id", "")), f"domains-{n}-tenant": str(tenant.pk),
                     f"domains-{n}-host": row["host"]})
        data.update({f"domains-{n}-{flag}": "on" for flag in ("is_primary", "DELETE") if row.get(flag)})
    return data


def domain_rows(tenant) -> list[tuple[str, bool]]:
    from marketplace.models import Domain

    return list(Domain.objects.filter(tenant=tenant).order_by("host").values_list("host", "is_primary"))


@pytest.mark.parametrize("change", ["untick", "delete", "two"])
def test_a_storefront_keeps_exactly_one_primary_domain_in_the_operators_form(tenant_a, change):
    """``Tenant.url`` builds invitation and email links on the primary domain; without one they fall back to
    ``<slug><TENANT_DEV_HOST_SUFFIX>``, which in production is the bare slug, a host that serves nothing."""
    from marketplace.models import Domain

    primary = Domain.objects.get(tenant=tenant_a, is_primary=True)
    rows = {"untick": [{"id": primary.pk, "host": primary.host}],
            "delete": [{"id": primary.pk, "host": primary.host, "is_primary": True, "DELETE": True}],
            "two": [{"id": primary.pk, "host": primary.host, "is_primary": True},
                    {"host": "learn.alpha.example", "is_primary": True}]}[change]
    before = domain_rows(tenant_a)
    response = operator_client().post(reverse("admin:marketplace_tenant_change", args=[tenant_a.pk]),
                                      domain_forms(tenant_a, rows))
    assert response.status_code == 200
    assert "exactly one primary domain" in response.content.decode()
    assert domain_rows(tenant_a) == before


def test_the_operator_adds_an_alias_domain_and_moves_the_primary_to_it(tenant_a):
    from marketplace.models import Domain

    operator = operator_client()
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    primary = Domain.objects.get(tenant=tenant_a, is_primary=True)
    response = operator.post(change, domain_forms(
        tenant_a, [{"id": primary.pk, "host": primary.host, "is_primary": True}, {"host": "learn.alpha.example"}]))
    assert response.status_code == 302
    assert domain_rows(tenant_a) == [("alpha.test", True), ("learn.alpha.example", False)]
    alias = Domain.objects.get(host="learn.alpha.example")
    response = operator.post(change, domain_forms(
        tenant_a, [{"id": primary.pk, "host": primary.host}, {"id": alias.pk, "host": alias.host, "is_primary": True}]))
    assert response.status_code == 302
    assert domain_rows(tenant_a) == [("alpha.test", False), ("learn.alpha.example", True)]
