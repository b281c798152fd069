"""Partner platforms: the commission of a sale their tracked link brought, held, clawed back, released and paid."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import ProtectedError, Sum
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from distribution.models import Channel, ChannelClick
from marketplace.models import AuditLog
from payments import services
from payments.ledger import balances, ledger_verify
from payments.models import Order, PaymentSettings, Posting, ReferralTouch
from payments.payouts import payout_run, shares_release, statements
from tests.conftest import host_client, operator_client
from tests.factories import catalog_creator, catalog_item, member
from tests.payments.test_checkout import buy
from tests.payments.test_promoters import promoter

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(tenant_a):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True, attribution_window_days=30)
        services.split_rule_create(tenant=tenant_a, actor=None, partner_commission_bp=2000,
                                   promoter_commission_bp=1000, promoter_second_level_bp=500)
    return catalog_item(tenant_a, title="Course", price=10000, creators=[catalog_creator(tenant_a, "Ada")])


def channel(tenant, kind="partner", name="Partner school"):
    with scopes_disabled():
        return Channel.objects.create(tenant=tenant, name=name, kind=kind, endpoint_url="https://partner.example/in")


def earned(tenant, order, kind) -> dict[int, int]:
    with scope(tenant=tenant):
        rows = (Posting.objects.filter(entry__order=order, account__kind=kind)
                .values_list(f"account__{kind}").annotate(total=Sum("amount")))
        return {party: -total for party, total in rows}


def test_a_sale_through_a_partners_link_earns_its_commission_with_the_click_as_evidence(tenant_a, course):
    school = channel(tenant_a)
    visitor = host_client("alpha.test")
    visitor.get(f"/item/{course.slug}/?zc={school.code}")
    learner = member(tenant_a)
    visitor.force_login(learner)
    buy(visitor, f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        click = ChannelClick.objects.get()
        assert order.status == Order.Status.PAID and order.partner == school and order.promoter is None
        assert order.attribution["channel"]["click"] == click.pk and order.split_rule.partner_commission_bp == 2000
    # 10 % to the platform and 20 % to the partner; Ada's 50 % is of the 7000 left.
    assert earned(tenant_a, order, "partner") == {school.pk: 2000}
    with scope(tenant=tenant_a):
        ada = course.creators.get()
    assert earned(tenant_a, order, "creator") == {ada.pk: 3500}


def test_the_last_touch_decides_between_a_partner_and_a_promoter(tenant_a, course):
    school, seller = channel(tenant_a), promoter(tenant_a)
    # Promoter's link, then the partner's: the partner brought the sale.
    first = member(tenant_a)
    client = host_client("alpha.test", first)
    client.get(f"/?ref={seller.code}")
    client.get(f"/item/{course.slug}/?zc={school.code}")
    buy(client, f"item={course.slug}")
    # Partner's link, then the promoter's: the promoter did.
    second = member(tenant_a)
    client = host_client("alpha.test", second)
    client.get(f"/item/{course.slug}/?zc={school.code}")
    client.get(f"/?ref={seller.code}")
    buy(client, f"item={course.slug}")
    with scope(tenant=tenant_a):
        by_partner, by_promoter = Order.objects.get(user=first), Order.objects.get(user=second)
        assert (by_partner.partner, by_partner.promoter) == (school, None)
        assert (by_promoter.partner, by_promoter.promoter, by_promoter.channel) == (None, seller, school)
    assert earned(tenant_a, by_partner, "partner") == {school.pk: 2000}
    assert earned(tenant_a, by_partner, "promoter") == {}
    assert earned(tenant_a, by_promoter, "partner") == {}
    assert earned(tenant_a, by_promoter, "promoter") == {seller.pk: 1000}


def test_other_channels_and_a_switched_off_partner_earn_nothing(tenant_a, course):
    weibo, former = channel(tenant_a, kind="weibo", name="Weibo"), channel(tenant_a, name="Former partner")
    with scopes_disabled():
        Channel.objects.filter(pk=former.pk).update(is_enabled=False)
    learners = []
    for source in (weibo, former):
        learner = member(tenant_a)
        client = host_client("alpha.test", learner)
        client.get(f"/item/{course.slug}/?zc={source.code}")
        buy(client, f"item={course.slug}")
        learners.append(learner)
    with scope(tenant=tenant_a):
        orders = [Order.objects.get(user=learner) for learner in learners]
        assert [(o.status, o.channel, o.partner) for o in orders] == [("paid", weibo, None), ("paid", former, None)]
        assert not Posting.objects.filter(account__kind="partner").exists()


def test_held_clawed_back_released_and_paid_out(tenant_a, course):
    school = channel(tenant_a)
    learners = [member(tenant_a) for _ in range(2)]
    for learner in learners:
        client = host_client("alpha.test", learner)
        client.get(f"/item/{course.slug}/?zc={school.code}")
        buy(client, f"item={course.slug}")
    with scope(tenant=tenant_a):
        first, second = (Order.objects.get(user=learner) for learner in learners)
        services.refund_create(payment=second.payments.get(), amount=2500, actor=None)  # a quarter back
        [statement] = statements(tenant=tenant_a, kind="partner")
        assert (statement.name, statement.held, statement.payable) == ("Partner school", 3500, 0)
        assert shares_release(tenant=tenant_a, now=timezone.now() + timedelta(days=15)) == 2
        [payout] = [p for p in payout_run(tenant=tenant_a, actor=None, reference="B1") if p.partner_id]
        assert (payout.partner, payout.amount, payout.creator, payout.promoter) == (school, 3500, None, None)
        [statement] = statements(tenant=tenant_a, kind="partner")
        assert (statement.held, statement.payable, statement.paid) == (0, 0, 3500)
        # After the window a refund takes back from what was payable: the partner now owes it.
        services.refund_create(payment=first.payments.get(), amount=10000, actor=None)
        [statement] = statements(tenant=tenant_a, kind="partner")
        assert statement.payable == -2000
        assert sum(balances(tenant=tenant_a).values()) == 0 and ledger_verify(tenant=tenant_a).ok
        # Money was booked to the partner: its channel can no longer be deleted.
        with pytest.raises(ProtectedError):
            school.delete()


def test_the_admin_lists_the_partners_statement_and_the_partner_verifies_it(tenant_a, course, tmp_path):
    school = channel(tenant_a)
    client = host_client("alpha.test", member(tenant_a))
    client.get(f"/item/{course.slug}/?zc={school.code}")
    buy(client, f"item={course.slug}")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:payments_payout_changelist")).content.decode()
    assert "Partner school (partner platform)" in page and "20.00" in page
    csv = owner.get(reverse("admin:payments_payout_statement", args=["partner", school.pk])).content.decode()
    assert "Held (refund window),,,,20.00,CNY" in csv and "chain head" in csv
    with scope(tenant=tenant_a):
        order = Order.objects.get(partner=school)
    detail = owner.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()
    assert "Partner school" in detail and "Partner school (held)" in detail
    proof = owner.get(reverse("admin:payments_payout_statement_json", args=["partner", school.pk])).json()
    assert proof["accounts"] == [f"partner:{school.pk}:held"]
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(proof))
    script = Path(__file__).parents[2] / "docs" / "verify_statement.py"
    run = subprocess.run([sys.executable, str(script), str(path), proof["head"]["hash"]], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0 and "statement verifies" in run.stdout and "2000" in run.stdout, run.stdout
    assert owner.get(reverse("admin:payments_payout_statement", args=["platform", 1])).status_code == 404


def test_the_split_rule_form_sets_every_commission_and_keeps_the_old_version(tenant_a, course):
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    form = owner.get(reverse("admin:payments_splitrule_add")).content.decode()
    assert 'name="platform_fee_bp"' in form and "disabled" in form.split('name="platform_fee_bp"')[1][:80]
    response = owner.post(reverse("admin:payments_splitrule_add"), {
        "platform_fee_bp": "0", "partner_commission_bp": "1500", "promoter_commission_bp": "1200",
        "promoter_second_level_bp": "300"})
    assert response.status_code == 302
    with scope(tenant=tenant_a):
        rule = services.split_rule_current(tenant=tenant_a)
        # The team sets the commissions; the platform fee posted is not theirs to set and stays the operator's.
        assert (rule.version, rule.platform_fee_bp, rule.partner_commission_bp, rule.promoter_commission_bp,
                rule.promoter_second_level_bp) == (2, 1000, 1500, 1200, 300)
    too_much = owner.post(reverse("admin:payments_splitrule_add"), {
        "platform_fee_bp": "0", "partner_commission_bp": "9500", "promoter_commission_bp": "0",
        "promoter_second_level_bp": "0"})
    assert too_much.status_code == 200
    assert "cannot exceed 100%" in too_much.content.decode().split('id="id_partner_commission_bp"')[0][-600:]
    with scope(tenant=tenant_a):
        assert services.split_rule_current(tenant=tenant_a).version == 2


def operator_tenant_form(tenant, **changes) -> dict:
    domain = tenant.domains.get()
    return {"name": tenant.name, "primary_color": tenant.primary_color, "default_language": tenant.default_language,
            "currency": tenant.currency, "platform_fee_bp": tenant.platform_fee_bp, "is_active": "on",
            "domains-TOTAL_FORMS": "1", "domains-INITIAL_FORMS": "1", "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000", "domains-0-id": str(domain.pk), "domains-0-tenant": str(tenant.pk),
            "domains-0-host": domain.host, "domains-0-is_primary": "on", **changes}


def test_only_the_operator_sets_a_storefronts_platform_fee_and_later_orders_pay_it(tenant_a, course):
    """The platform fee is the platform's revenue: the storefront's owner sees it but cannot lower it; the operator's
    change is a new split rule version keeping the team's commissions, and only later orders pay it."""
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert owner.post(change, {"name": "Alpha", "primary_color": "#123456", "default_language": "en",
                               "platform_fee_bp": "0"}).status_code == 302
    fee_row = owner.get(change).content.decode().split('field-platform_fee_bp')[1]
    assert "1000" in fee_row.split('class="readonly"')[1][:40]
    tenant_a.refresh_from_db()
    assert tenant_a.platform_fee_bp == 1000
    first = member(tenant_a)
    buy(host_client("alpha.test", first), f"item={course.slug}")

    operator = operator_client()
    too_high = operator.post(change, operator_tenant_form(tenant_a, platform_fee_bp="8500"))  # + 2000 partner
    assert too_high.status_code == 200
    assert "cannot exceed 100%" in too_high.content.decode().split('id="id_platform_fee_bp"')[0][-600:]
    assert operator.post(change, operator_tenant_form(tenant_a, platform_fee_bp="1500")).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.platform_fee_bp == 1500
    second = member(tenant_a)
    buy(host_client("alpha.test", second), f"item={course.slug}")
    with scope(tenant=tenant_a):
        rule = services.split_rule_current(tenant=tenant_a)
        assert (rule.version, rule.platform_fee_bp, rule.partner_commission_bp, rule.promoter_commission_bp,
                rule.promoter_second_level_bp) == (2, 1500, 2000, 1000, 500)
        fee = dict(Posting.objects.filter(account__code="platform").values_list("entry__order__user", "amount"))
        assert fee == {first.pk: -1000, second.pk: -1500}
        assert AuditLog.objects.filter(action="payments.split_rule_created", data__platform_fee_bp=1500).exists()
    # Saving the storefront again without touching the fee makes no new version.
    assert operator.post(change, operator_tenant_form(tenant_a, name="Alpha Academy")).status_code == 302
    with scope(tenant=tenant_a):
        assert services.split_rule_current(tenant=tenant_a).version == 2


def test_a_later_visit_through_a_channel_that_earns_nothing_does_not_hand_the_sale_back_to_the_promoter(
        tenant_a, course):
    school, weibo, seller = channel(tenant_a), channel(tenant_a, kind="weibo", name="Weibo"), promoter(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/?ref={seller.code}")
    client.get(f"/item/{course.slug}/?zc={school.code}")
    client.get(f"/item/{course.slug}/?zc={weibo.code}")
    buy(client, f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert (order.channel, order.partner, order.promoter) == (weibo, school, None)
        # The evidence names both visits: the last one, and the partner's that earned the commission.
        assert order.attribution["channel"]["channel"] == weibo.code
        assert order.attribution["partner"]["channel"] == school.code
    assert earned(tenant_a, order, "partner") == {school.pk: 2000}
    assert earned(tenant_a, order, "promoter") == {}


def test_a_partner_switched_off_before_the_payment_arrives_earns_nothing(tenant_a, course):
    school = channel(tenant_a)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.get(f"/item/{course.slug}/?zc={school.code}")
    page = client.get(f"/checkout/?item={course.slug}").content.decode()
    key = page.split('name="key" value="')[1].split('"')[0]
    hosted = client.post("/checkout/", {"item": course.slug, "key": key, "pay": "1"}).url
    with scopes_disabled():
        Channel.objects.filter(pk=school.pk).update(is_enabled=False)
    client.post(hosted, {"action": "pay"})
    with scope(tenant=tenant_a):
        assert Order.objects.get(user=learner).status == "paid"
        assert earned(tenant_a, Order.objects.get(user=learner), "partner") == {}


@pytest.mark.parametrize("query", ["ref=%00", "ref=AB%00CD", "zc=%00", "zc=X%00", "ref=" + "A" * 17])
def test_a_code_that_is_not_ours_is_ignored_not_looked_up(tenant_a, course, query):
    """On PostgreSQL a NUL character in a looked-up value is an error: such codes never reach a query (an address
    carrying one is a bad request), and a code too long to be ours, or a visitor cookie with a NUL, is ignored."""
    client = host_client("alpha.test", member(tenant_a))
    client.raise_request_exception = False
    client.cookies["zk_visitor"] = "abc\x00"
    status = 400 if "%00" in query else 200
    assert client.get(f"/item/{course.slug}/?{query}").status_code == status
    assert client.get(f"/?{query}").status_code == status
    with scope(tenant=tenant_a):
        assert not ReferralTouch.objects.exists() and not ChannelClick.objects.exists()
