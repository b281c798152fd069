"""Promoters (分销): referral links and codes, last-touch attribution, two levels at most, commissions."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role
from payments import services
from payments.ledger import ledger_verify
from payments.models import Order, PaymentSettings, Posting, Promoter, ReferralTouch
from payments.promoters import promoter_decide
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.marketplace.test_admin_constraints import field_errors
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme(tenant_a):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True, attribution_window_days=30)
        services.split_rule_create(tenant=tenant_a, actor=None, promoter_commission_bp=1000,
                                   promoter_second_level_bp=500)
    return catalog_item(tenant_a, title="Course", price=10000)


def promoter(tenant, *, recruited_by=None):
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    if recruited_by is not None:
        client.get(f"/?ref={recruited_by.code}")
    client.post("/promote/")
    with scope(tenant=tenant):
        found = Promoter.objects.get(user=learner)
        return promoter_decide(promoter=found, status="approved", actor=None)


def commissions(tenant, order) -> dict[int, int]:
    with scope(tenant=tenant):
        rows = (Posting.objects.filter(entry__order=order, account__kind="promoter")
                .values_list("account__promoter").annotate(total=Sum("amount")))
        return {promoter_id: -total for promoter_id, total in rows}


def test_a_referral_link_before_sign_up_earns_both_levels_and_never_a_third(tenant_a, programme):
    top = promoter(tenant_a)
    middle = promoter(tenant_a, recruited_by=top)
    bottom = promoter(tenant_a, recruited_by=middle)
    assert middle.recruited_by == top and bottom.recruited_by == middle

    # An anonymous visitor follows the bottom promoter's link, then signs up and buys.
    visitor = host_client("alpha.test")
    visitor.get(f"/item/{programme.slug}/?ref={bottom.code}")
    learner = member(tenant_a)
    visitor.force_login(learner)
    buy(visitor, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.promoter == bottom and order.promoter_second_level == middle
        touch = ReferralTouch.objects.get(pk=order.attribution["touch"])
        assert touch.source == "link" and touch.promoter == bottom and order.attribution["code"] == bottom.code
    # 10% to the promoter, 5% to their recruiter, nothing to the recruiter's recruiter.
    assert commissions(tenant_a, order) == {bottom.pk: 1000, middle.pk: 500}


def test_a_code_at_checkout_is_the_last_touch(tenant_a, programme):
    first, second = promoter(tenant_a), promoter(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/?ref={first.code}")
    page = client.get(f"/checkout/?item={programme.slug}").content.decode()
    key = page.split('name="key" value="')[1].split('"')[0]
    hosted = client.post("/checkout/", {"item": programme.slug, "key": key, "referral": second.code.lower(),
                                        "pay": "1"}).url
    client.post(hosted, {"action": "pay"})
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.promoter == second and order.attribution["source"] == "code"


def test_self_referral_follows_the_setting(tenant_a, programme):
    me = promoter(tenant_a)
    client = host_client("alpha.test", me.user)
    client.get(f"/?ref={me.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=me.user).promoter is None
        PaymentSettings.objects.update(self_referral_allowed=True)
    other = catalog_item(tenant_a, title="Other", price=5000)
    buy(client, f"item={other.slug}")
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=me.user, lines__item=other).promoter == me


def test_however_often_a_promoter_opened_their_own_link_the_one_who_brought_them_earns_the_sale(
        tenant_a, programme):
    recruiter = promoter(tenant_a)
    me = promoter(tenant_a, recruited_by=recruiter)
    client = host_client("alpha.test", me.user)
    client.get(f"/?ref={recruiter.code}")
    for _ in range(25):  # checking their own link and QR code
        client.get(f"/?ref={me.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=me.user).promoter == recruiter


def test_touches_outside_the_window_and_unapproved_promoters_earn_nothing(tenant_a, programme):
    old, pending = promoter(tenant_a), promoter(tenant_a)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=pending, status="suspended", actor=None)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/?ref={old.code}")
    with scope(tenant=tenant_a):
        ReferralTouch.objects.filter(promoter=old).update(created_at=timezone.now() - timedelta(days=31))
    client.get(f"/?ref={pending.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=learner).promoter is None


def test_a_refund_claws_back_commissions_and_the_page_shows_them(tenant_a, programme):
    seller = promoter(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/?ref={seller.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        services.refund_create(payment=order.payments.get(), amount=5000, actor=None)
        assert ledger_verify(tenant=tenant_a).ok
    assert commissions(tenant_a, order) == {seller.pk: 500}
    page = host_client("alpha.test", seller.user).get("/promote/").content.decode()
    assert f"?ref={seller.code}" in page and "<svg" in page and "5.00" in page


def test_no_programme_no_promoter_page(tenant_a):
    assert host_client("alpha.test", member(tenant_a)).get("/promote/").status_code == 404


def checkout_through(tenant, seller, item):
    """A learner comes through ``seller``'s link and stops at the hosted payment page: (learner, client, page)."""
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    client.get(f"/?ref={seller.code}")
    page = client.get(f"/checkout/?item={item.slug}").content.decode()
    key = page.split('name="key" value="')[1].split('"')[0]
    return learner, client, client.post("/checkout/", {"item": item.slug, "key": key, "pay": "1"}).url


def test_a_promoter_suspended_before_the_payment_arrives_earns_nothing(tenant_a, programme):
    top = promoter(tenant_a)
    seller = promoter(tenant_a, recruited_by=top)
    learner, client, hosted = checkout_through(tenant_a, seller, programme)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=seller, status="suspended", actor=None)
    assert "Payment received" in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.status == "paid" and order.promoter == seller  # the evidence of who brought the learner stays
        assert ledger_verify(tenant=tenant_a).ok
    # The suspended promoter earns nothing; their recruiter, still approved, keeps the second level.
    assert commissions(tenant_a, order) == {top.pk: 500}


def test_a_promoter_whose_account_was_switched_off_before_the_payment_arrives_earns_nothing(tenant_a, programme):
    top = promoter(tenant_a)
    seller = promoter(tenant_a, recruited_by=top)
    learner, client, hosted = checkout_through(tenant_a, seller, programme)
    seller.user.is_active = False  # shut out by the operator: nobody can be paid or reached there
    seller.user.save(update_fields=["is_active"])
    assert "Payment received" in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
    assert commissions(tenant_a, order) == {top.pk: 500}


def test_no_commission_is_earned_on_a_payment_arriving_after_the_programme_ended(tenant_a, programme):
    seller = promoter(tenant_a)
    learner, client, hosted = checkout_through(tenant_a, seller, programme)
    with scope(tenant=tenant_a):
        PaymentSettings.objects.update(promoters_enabled=False)
    assert "Payment received" in client.post(hosted, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.status == "paid" and order.promoter == seller and ledger_verify(tenant=tenant_a).ok
    assert commissions(tenant_a, order) == {}


def test_the_second_level_follows_the_self_referral_setting_too(tenant_a, programme):
    top = promoter(tenant_a)
    bottom = promoter(tenant_a, recruited_by=top)
    client = host_client("alpha.test", top.user)  # the recruiter buys through their recruit's link
    client.get(f"/?ref={bottom.code}")
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        PaymentSettings.objects.update(self_referral_allowed=True)
    other = catalog_item(tenant_a, title="Other", price=10000)
    buy(client, f"item={other.slug}")
    with scope(tenant=tenant_a):
        refused, allowed = Order.objects.filter(user=top.user).order_by("pk")
    assert commissions(tenant_a, refused) == {bottom.pk: 1000}
    assert commissions(tenant_a, allowed) == {bottom.pk: 1000, top.pk: 500}


def test_a_promoters_statement_names_no_other_payee(tenant_a, programme):
    from payments.payouts import payout_run, shares_release

    seller, rival = promoter(tenant_a), promoter(tenant_a)
    for who in (rival, seller):
        client = host_client("alpha.test", member(tenant_a))
        client.get(f"/?ref={who.code}")
        buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=15))
        payouts = payout_run(tenant=tenant_a, actor=None, reference="RUN-1")
        assert len([p for p in payouts if p.promoter_id]) == 2
    statement = host_client("alpha.test", seller.user).get("/promote/statement.json").content.decode()
    assert "RUN-1" in statement and rival.user.email not in statement and seller.user.email not in statement


def test_what_a_promoter_earned_stays_in_view_when_suspended_or_when_the_programme_ends(tenant_a, programme):
    seller = promoter(tenant_a)
    client = host_client("alpha.test", member(tenant_a))
    client.get(f"/?ref={seller.code}")
    buy(client, f"item={programme.slug}")
    own = host_client("alpha.test", seller.user)
    with scope(tenant=tenant_a):
        promoter_decide(promoter=seller, status="suspended", actor=None)
    page = own.get("/promote/").content.decode()
    assert "Suspended" in page and "¥10.00" in page and f"?ref={seller.code}" not in page

    with scope(tenant=tenant_a):
        promoter_decide(promoter=seller, status="approved", actor=None)
        PaymentSettings.objects.update(promoters_enabled=False)
    page = own.get("/promote/").content.decode()
    assert "The promoter programme has ended" in page and "¥10.00" in page and f"?ref={seller.code}" not in page
    assert own.get("/promote/statement.json").status_code == 200
    # Someone who never applied finds no programme.
    assert host_client("alpha.test", member(tenant_a)).get("/promote/").status_code == 404


def test_the_promoters_page_lists_learners_who_bought_not_those_who_only_started_a_checkout(tenant_a, programme):
    seller = promoter(tenant_a)
    bought, declined = member(tenant_a, display_name="Bought Bo"), member(tenant_a, display_name="Declined Di")
    for learner, action in ((bought, "pay"), (declined, "fail")):
        client = host_client("alpha.test", learner)
        client.get(f"/?ref={seller.code}")
        buy(client, f"item={programme.slug}", action=action)
    page = host_client("alpha.test", seller.user).get("/promote/").content.decode()
    referred = page.split('id="referred-heading"')[1].split("</section>")[0]
    assert "Bought Bo" in referred and "Declined Di" not in referred


def test_a_code_entered_at_a_refused_checkout_is_not_remembered(tenant_a, programme):
    """The learner types a promoter's code with a coupon that does not exist: the checkout is refused and writes
    nothing, so a later purchase without the code is not credited to that promoter."""
    referrer = promoter(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get(f"/checkout/?item={programme.slug}").content.decode()
    key = page.split('name="key" value="')[1].split('"')[0]
    refused = client.post("/checkout/", {"item": programme.slug, "key": key, "referral": referrer.code,
                                         "coupon": "NO-SUCH-CODE", "pay": "1"})
    assert refused.status_code == 400 and "This coupon code is not valid." in refused.content.decode()
    with scope(tenant=tenant_a):
        assert not ReferralTouch.objects.exists() and not Order.objects.exists()
    buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=learner).promoter is None


# --- the team invites ---------------------------------------------------------------------------------------------

def test_the_team_invites_a_learner_who_is_a_promoter_at_once_and_told_where_their_link_is(
        tenant_a, programme, django_capture_on_commit_callbacks):
    from marketplace.models import Tenant

    Tenant.objects.filter(pk=tenant_a.pk).update(default_language="zh-hans")
    learner = member(tenant_a, email="lin@example.com")
    team = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    add = reverse("admin:payments_promoter_add")
    with django_capture_on_commit_callbacks(execute=True):
        response = team.post(add, {"email": "LIN@example.com"})
    assert response.status_code == 302
    with scope(tenant=tenant_a):
        invited = Promoter.objects.get(user=learner)
        assert (invited.status, invited.recruited_by, invited.approved_at is not None) == ("approved", None, True)
    [message] = mail.outbox
    assert message.to == ["lin@example.com"] and "推广员" in message.subject
    assert "http://alpha.test/promote/" in message.body
    page = host_client("alpha.test", learner).get("/promote/").content.decode()
    assert f"?ref={invited.code}" in page

    # Bad input is shown next to the field and writes nothing.
    stranger = team.post(add, {"email": "nobody@example.com"})
    assert "请对方先注册" in field_errors(stranger, "email")  # the storefront's language
    again = team.post(add, {"email": "lin@example.com"})
    assert "已经是推广员" in field_errors(again, "email")
    with scope(tenant=tenant_a):
        assert Promoter.objects.count() == 1


def test_inviting_a_learner_who_applied_or_was_suspended_approves_their_profile(tenant_a, programme):
    learner = member(tenant_a, email="kim@example.com")
    host_client("alpha.test", learner).post("/promote/")
    with scope(tenant=tenant_a):
        applied = Promoter.objects.get(user=learner)
        promoter_decide(promoter=applied, status="suspended", actor=None)
    team = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert team.post(reverse("admin:payments_promoter_add"), {"email": "kim@example.com"}).status_code == 302
    with scope(tenant=tenant_a):
        applied.refresh_from_db()
        assert applied.status == "approved" and Promoter.objects.count() == 1


def test_no_invitations_while_the_programme_is_closed(tenant_a):
    team = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert team.get(reverse("admin:payments_promoter_add")).status_code == 403


def test_the_promoters_page_lists_each_sale_with_what_it_earns_and_says_what_a_refund_after_payout_owes(
        tenant_a, programme):
    from payments.payouts import payout_run, shares_release

    top = promoter(tenant_a)
    recruit = promoter(tenant_a, recruited_by=top)
    buyers = [member(tenant_a) for _ in range(2)]
    for buyer, seller in zip(buyers, (top, recruit), strict=True):
        client = host_client("alpha.test", buyer)
        client.get(f"/?ref={seller.code}")
        buy(client, f"item={programme.slug}")
    with scope(tenant=tenant_a):
        own_sale, recruits_sale = (Order.objects.get(user=buyer) for buyer in buyers)
        services.refund_create(payment=own_sale.payments.get(), amount=5000, actor=None)  # half back: 5.00 kept
    page = host_client("alpha.test", top.user).get("/promote/").content.decode()
    sales = page.split('class="summary promoter-sales"')[1].split("</table>")[0]
    assert sales.count("<tr><td>") == 2
    assert "Course <span class=\"meta\">(Partly refunded)</span></td>\n        <td>¥5.00" in sales
    assert "(brought by a promoter you recruited)</span></td>\n        <td>¥5.00" in sales  # 5% of ¥100.00
    assert "1 promoter joined through you." in page and "you earn 5% of each sale they bring." in page
    assert "you owe" not in page

    # Paid out, then the rest of the first sale is refunded: the promoter owes what it took back.
    with scope(tenant=tenant_a):
        shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=30))
        payout_run(tenant=tenant_a, actor=None)
        services.refund_create(payment=own_sale.payments.get(), amount=5000, actor=None)
    page = host_client("alpha.test", top.user).get("/promote/").content.decode()
    assert ("A sale was refunded after its commission was paid to you: you owe ¥5.00, which is taken from your next "
            "commissions.") in page
    sales = page.split('class="summary promoter-sales"')[1].split("</table>")[0]
    assert sales.count("<tr><td>") == 2 and "(Refunded)</span></td>\n        <td>¥0.00" in sales
