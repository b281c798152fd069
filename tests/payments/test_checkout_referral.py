"""A referral code typed at checkout: one that credits nobody is refused next to its field, as a coupon is, so the
learner does not pay believing their friend is credited when nobody is."""

import re

import pytest
from django_scopes import scope

from accounts.privacy import user_erase
from payments.models import Order, ReferralTouch
from payments.promoters import promoter_decide
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_promoters import programme, promoter  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def checkout_key(client, slug: str) -> str:
    page = client.get(f"/checkout/?item={slug}").content.decode()
    return re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)


def test_a_mistyped_referral_code_is_refused_next_to_its_field_and_nothing_is_written(tenant_a, programme):  # noqa: F811
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    key = checkout_key(client, programme.slug)
    refused = client.post("/checkout/", {"item": programme.slug, "key": key, "referral": "NOSUCH", "coupon": "",
                                         "pay": "1"})
    assert refused.status_code == 400
    form = refused.context["form"]
    assert form.errors["referral"] == ["No promoter has this referral code: check it, or leave the field empty."]
    assert form.has_error("referral", code="referral_invalid")
    assert form["referral"].value() == "NOSUCH"  # kept, to be corrected
    with scope(tenant=tenant_a):
        assert not Order.objects.exists() and not ReferralTouch.objects.exists()


def test_a_code_of_a_promoter_who_no_longer_earns_is_refused_too(tenant_a, programme):  # noqa: F811
    """A suspended promoter's code, or the code of one who deleted their account, credits nobody either."""
    suspended, gone = promoter(tenant_a), promoter(tenant_a)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=suspended, status="suspended", actor=None)
    user_erase(user=gone.user)
    client = host_client("alpha.test", member(tenant_a))
    for code in (suspended.code, gone.code):
        refused = client.post("/checkout/", {"item": programme.slug, "key": checkout_key(client, programme.slug),
                                             "referral": code, "pay": "1"})
        assert refused.status_code == 400 and refused.context["form"].has_error("referral", code="referral_invalid")
    with scope(tenant=tenant_a):
        assert not Order.objects.exists() and not ReferralTouch.objects.exists()


def test_applying_a_coupon_with_a_mistyped_referral_code_still_shows_the_discount(tenant_a, programme):  # noqa: F811
    """The refusal is about the referral field alone: the coupon the learner applied is priced as before."""
    from payments.models import Coupon

    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
    client = host_client("alpha.test", member(tenant_a))
    page = client.post("/checkout/", {"item": programme.slug, "key": checkout_key(client, programme.slug),
                                      "referral": "NOSUCH", "coupon": "SAVE20", "apply": "1"})
    assert page.status_code == 400
    assert page.context["quote"].discount == 2000
    assert page.context["form"].has_error("referral", code="referral_invalid")


def test_a_correct_code_in_any_case_is_taken(tenant_a, programme):  # noqa: F811
    friend = promoter(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    hosted = client.post("/checkout/", {"item": programme.slug, "key": checkout_key(client, programme.slug),
                                        "referral": f" {friend.code.lower()} ", "pay": "1"})
    assert hosted.status_code == 302
    client.post(hosted.url, {"action": "pay"})
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=learner).promoter == friend


def test_a_promoters_own_code_is_refused_where_own_purchases_earn_nothing_and_taken_where_they_do(
        tenant_a, programme):  # noqa: F811
    from payments.models import PaymentSettings

    own = promoter(tenant_a)
    client = host_client("alpha.test", own.user)
    refused = client.post("/checkout/", {"item": programme.slug, "key": checkout_key(client, programme.slug),
                                         "referral": own.code.lower(), "pay": "1"})
    assert refused.status_code == 400 and refused.context["form"].has_error("referral", code="referral_own")
    assert "This is your own referral code" in refused.content.decode()
    with scope(tenant=tenant_a):
        assert not Order.objects.exists() and not ReferralTouch.objects.exists()
        PaymentSettings.objects.update(self_referral_allowed=True)
    taken = client.post("/checkout/", {"item": programme.slug, "key": checkout_key(client, programme.slug),
                                       "referral": own.code, "pay": "1"})
    assert taken.status_code == 302
    with scope(tenant=tenant_a):
        assert ReferralTouch.objects.get().promoter == own
