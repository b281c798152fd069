"""The ledger under random money traffic, tampering, and (on PostgreSQL) the database's own guards."""

import uuid
from collections import defaultdict
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from distribution.models import Channel, ChannelClick
from marketplace import tenancy
from marketplace.errors import ApplicationError
from payments import ledger, services
from payments.models import (
    Coupon,
    Entitlement,
    JournalEntry,
    LedgerAccount,
    Order,
    Payment,
    PaymentSettings,
    Payout,
    Posting,
    Promoter,
    ReferralTouch,
    Refund,
    SubscriptionPlan,
    WebhookEvent,
)
from payments.payouts import payout_run, shares_release
from payments.providers.sandbox import HEADER, SandboxProvider
from tests.factories import catalog_creator, catalog_item, member

SANDBOX = SandboxProvider()
CLEARING = "clearing:sandbox"
PAYEES = ["creator", "promoter", "partner"]  # the accounts whose money is paid out to someone


def deliver(tenant, body: bytes) -> str:
    """Send ``body`` through the webhook service with a fresh, valid sandbox signature."""
    return services.webhook_receive(tenant=tenant, provider_name="sandbox", headers={HEADER: SANDBOX.signature(body)},
                                     body=body)


def buy(tenant, item, *, coupon_code: str = "", via=None) -> Payment:
    """A new learner's checkout; ``via`` is a partner channel or a promoter whose link they came through first."""
    learner = member(tenant, "learner")
    if isinstance(via, Channel):
        ChannelClick.objects.create(tenant=tenant, channel=via, user=learner)
    elif isinstance(via, Promoter):
        ReferralTouch.objects.create(tenant=tenant, promoter=via, user=learner)
    what = {"plan": item} if isinstance(item, SubscriptionPlan) else {"item": item}
    started = services.checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex,
                                      coupon_code=coupon_code, **what)
    return started.payment


def settle(tenant, payment: Payment) -> Payment:
    assert deliver(tenant, SANDBOX.event_body(payment=payment, outcome="succeeded")) == "applied"
    payment.refresh_from_db()
    return payment


def force_deferred_checks() -> None:
    """On PostgreSQL, run the deferred 'every entry balances' trigger now instead of at commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def in_force(order) -> int:
    """How many of the order's entitlements give access now: a refund revokes an item's, and ends a subscription's
    (its end is moved to now); a failed refund gives them back."""
    now = timezone.now()
    return order.entitlements.filter(revoked_at=None).filter(Q(ends_at=None) | Q(ends_at__gt=now)).count()


def assert_ledger_invariants(tenant) -> None:
    """Everything that must hold of a tenant's books whatever happened before (call inside its scope)."""
    postings = list(Posting.objects.select_related("account", "entry"))
    per_entry: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_account: dict[int, int] = defaultdict(int)
    for p in postings:
        assert p.currency == p.account.currency
        per_entry[p.entry_id][p.currency] += p.amount
        per_account[p.account_id] += p.amount
    entries = list(JournalEntry.objects.all())
    for entry in entries:
        if entry.kind == JournalEntry.Kind.PUBLICATION:  # records what was published, moves no money
            assert entry.pk not in per_entry and entry.record_digest == ledger.record_digest(entry.record)
            continue
        assert entry.pk in per_entry, f"entry #{entry.sequence} has no postings"
        assert all(total == 0 for total in per_entry[entry.pk].values()), (entry.sequence, per_entry[entry.pk])
    assert sum(p.amount for p in postings) == 0

    # balances() agrees with sums computed here, for every account and nothing else
    computed = ledger.balances(tenant=tenant)
    assert {a.pk: v for a, v in computed.items()} == {a.pk: per_account.get(a.pk, 0)
                                                      for a in LedgerAccount.objects.all()}
    for account, value in computed.items():
        assert ledger.balance(account=account) == value

    payments = list(Payment.objects.select_related("order"))
    captured = sum(p.amount for p in payments if p.status == Payment.Status.SUCCEEDED)
    refunded = 0
    for payment in payments:
        refunds = sum(Refund.objects.filter(payment=payment, failed_at=None).values_list("amount", flat=True))
        assert payment.refunded_amount <= payment.amount
        assert refunds == payment.refunded_amount
        assert payment.order.refunded == payment.refunded_amount
        assert payment.order.refunded <= payment.order.total
        if payment.status != Payment.Status.SUCCEEDED:
            assert payment.refunded_amount == 0
        refunded += payment.refunded_amount
    clearing = LedgerAccount.objects.filter(code=CLEARING).first()
    clearing_balance = per_account.get(clearing.pk, 0) if clearing else 0
    assert clearing_balance == captured - refunded

    # What was paid out is what left the payees' payable accounts, and an order's released shares hold nothing.
    paid_out = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PAYOUT).first()
    payouts = list(Payout.objects.values_list("amount", "creator", "promoter", "partner"))
    assert -per_account.get(paid_out.pk if paid_out else None, 0) == sum(amount for amount, *_payee in payouts)
    assert all(sum(1 for who in payee if who) == 1 for _amount, *payee in payouts)
    released_held = Posting.objects.filter(entry__order__shares_released_at__isnull=False,
                                           account__kind__in=PAYEES, account__code__endswith=":held")
    assert sum(released_held.values_list("amount", flat=True)) == 0

    for entry in entries:
        if entry.kind == JournalEntry.Kind.SALE:
            amounts = [p for p in postings if p.entry_id == entry.pk]
            assert sum(p.amount for p in amounts if p.amount < 0) == -entry.order.total
            assert [p.amount for p in amounts if p.account.code == CLEARING] == [entry.order.total]
        elif entry.kind in (JournalEntry.Kind.REFUND, JournalEntry.Kind.REVERSAL):
            amounts = [p.amount for p in postings if p.entry_id == entry.pk and p.account.code == CLEARING]
            assert amounts == [(-1 if entry.kind == JournalEntry.Kind.REFUND else 1) * entry.refund.amount]
    sales = JournalEntry.objects.filter(kind=JournalEntry.Kind.SALE)
    assert sorted(sales.values_list("order_id", flat=True)) == sorted(
        p.order_id for p in payments if p.status == Payment.Status.SUCCEEDED)
    # A refund is booked once; one that failed is undone once, or was never booked when it failed first.
    for refund in Refund.objects.all():
        kinds = sorted(refund.journal_entries.values_list("kind", flat=True))
        assert kinds == ([] if refund.failed_at else ["refund"]) or (refund.failed_at and kinds == [
            "refund", "reversal"]), (refund.pk, kinds)

    for order in Order.objects.all():
        active = in_force(order)
        if order.status == Order.Status.REFUNDED:
            assert order.refunded == order.total
            assert order.entitlements.exists()
            assert active == 0
        elif order.status in (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED):
            assert active == order.lines.count()
        else:
            assert not order.entitlements.exists()

    result = ledger.ledger_verify(tenant=tenant)
    assert result.ok, result
    assert result.entries == len(entries)
    force_deferred_checks()


# --- random traffic -------------------------------------------------------------------------------------------------

@pytest.fixture
def shop(tenant_a):
    """Three items with zero, one and two creators, a plan shared with the creators of the paid items it covers
    (these three), three coupons (one with two uses), and the channels that earn commissions: a partner platform and
    a promoter recruited by another."""
    first, second = catalog_creator(tenant_a, "Lin Wei"), catalog_creator(tenant_a, "Ada Byron")
    items = [
        catalog_item(tenant_a, title="Tea", price=999, creators=[first]),
        catalog_item(tenant_a, title="Silk", price=1000),
        catalog_item(tenant_a, title="Paper", price=2501, creators=[first, second]),
    ]
    with scopes_disabled():
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All", slug="all", price=1999, creators_share=True)
        Coupon.objects.create(tenant=tenant_a, code="SAVE15", kind=Coupon.Kind.PERCENT, value=1500)
        Coupon.objects.create(tenant=tenant_a, code="TENOFF", kind=Coupon.Kind.FIXED, value=10)
        Coupon.objects.create(tenant=tenant_a, code="LAST2", kind=Coupon.Kind.PERCENT, value=5000, max_uses=2)
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
        partner = Channel.objects.create(tenant=tenant_a, name="Partner", kind=Channel.Kind.PARTNER)
        recruiter = Promoter.objects.create(tenant=tenant_a, user=member(tenant_a), code="TOP001",
                                            status=Promoter.Status.APPROVED)
        promoter = Promoter.objects.create(tenant=tenant_a, user=member(tenant_a), code="LOW001",
                                           status=Promoter.Status.APPROVED, recruited_by=recruiter)
    return tenant_a, items, {"": None, "partner": partner, "promoter": promoter}


coupon_code = st.sampled_from(["", "save15", "TENOFF", "last2", "last2"])  # often the one with two uses
checkout = st.tuples(st.just("checkout"), st.integers(0, 3), coupon_code, st.sampled_from(["", "partner", "promoter"]))
succeed = st.tuples(st.just("succeed"), st.integers(0, 50))
# small parts, exactly what is left, one unit too many, or anything up to past the largest total
refund_amount = st.integers(1, 400) | st.integers(1, 400) | st.sampled_from(["rest", "rest+1"]) | st.integers(1, 3000)
operation = st.one_of(
    checkout, succeed, succeed,
    st.tuples(st.just("fail"), st.integers(0, 50)),
    st.tuples(st.just("replay"), st.integers(0, 50), st.integers(1, 3)),
    *[st.tuples(st.just("refund"), st.integers(0, 50), refund_amount)] * 3,
    # a refund made at the provider (its dashboard, or a chargeback lost), reported once or several times
    st.tuples(st.just("provider_refund"), st.integers(0, 50), refund_amount, st.integers(1, 3)),
    # a refund the provider could not pay out (reported one to three times), or a provider's refund reported failed
    # before it was reported made; and a refund the team paid back outside the provider
    st.tuples(st.just("refund_fails"), st.integers(0, 50), st.integers(1, 3)),
    st.tuples(st.just("refund_fails_first"), st.integers(0, 50), refund_amount),
    st.tuples(st.just("refund_outside"), st.integers(0, 50), refund_amount),
    st.tuples(st.just("payout"), st.booleans()),
    st.tuples(st.just("expire")),
)
# Every example opens with a few checkouts and payments, so what follows has orders to pay, fail and refund.
operations = st.tuples(st.lists(checkout, min_size=1, max_size=4), st.lists(succeed, min_size=1, max_size=3),
                       st.lists(operation, min_size=5, max_size=40)).map(lambda t: t[0] + t[1] + t[2])


def snapshot():
    return (
        sorted(Payment.objects.values_list("pk", "status", "refunded_amount")),
        sorted(Order.objects.values_list("pk", "status", "refunded")),
        JournalEntry.objects.count(), Posting.objects.count(), Refund.objects.count(),
        Entitlement.objects.filter(revoked_at__isnull=True).count(), WebhookEvent.objects.count(),
    )


def coupon_held(code: str) -> int:
    """The uses a coupon has given: its paid orders and its open checkouts."""
    return Order.objects.filter(coupon__code=code).filter(
        Q(paid_at__isnull=False) | Q(status=Order.Status.PENDING)).count()


def refund_aim(pool: list[Payment], op) -> tuple[Payment, int, int]:
    """The payment a refund operation picks from ``pool``, what is left of it, and the amount it asks for."""
    payment = pool[op[1] % len(pool)]
    payment.refresh_from_db()
    left = payment.amount - payment.refunded_amount
    return payment, left, {"rest": left, "rest+1": left + 1}.get(op[2], op[2])


def payee_balances() -> dict[str, int]:
    """Each payee account's balance (negative: owed to the payee)."""
    totals: dict[str, int] = defaultdict(int)
    for code, amount in Posting.objects.filter(account__kind__in=PAYEES).values_list("account__code", "amount"):
        totals[code] += amount
    return totals


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations, tax=st.sampled_from([(0, True), (600, True), (600, False), (1300, False)]),
       rule=st.sampled_from([None, (0, 0, 0, 0), (3333, 1500, 1000, 500), (1000, 2000, 1200, 300),
                             (10000, 0, 0, 0)]))
def test_random_money_traffic_keeps_the_books(shop, ops, tax, rule):
    """Checkouts (some through a partner's link or a promoter's), payments, failures, replayed webhooks, refunds
    and payout runs, in any order: the books hold after all of it."""
    tenant, items, channels = shop
    with tenancy.activate(tenant):  # one transaction per example, rolled back at the end
        PaymentSettings.objects.filter(tenant=tenant).update(tax_rate_bp=tax[0], prices_include_tax=tax[1])
        if rule is not None:
            fee, partner, promoter, second = rule
            services.split_rule_create(tenant=tenant, actor=None, partner_commission_bp=partner,
                                       promoter_commission_bp=promoter, promoter_second_level_bp=second)
            services.platform_fee_set(tenant=tenant, actor=None, platform_fee_bp=fee)
        days = 0  # how far the payout runs have moved the clock
        payments: list[Payment] = []
        sent: list[bytes] = []
        reported = 0  # refunds made at the provider
        for op in ops:
            kind = op[0]
            if kind == "checkout":
                goods = [*items, SubscriptionPlan.objects.get(slug="all")]
                item, code, via = goods[op[1]], op[2], channels[op[3]]
                if code == "last2" and coupon_held("LAST2") >= 2:
                    before = snapshot()
                    with pytest.raises(ApplicationError) as refused:
                        buy(tenant, item, coupon_code=code, via=via)
                    assert refused.value.code == "coupon_exhausted" and snapshot() == before
                    event("a used-up coupon was refused")
                    continue
                quote = services.quote(tenant=tenant, price=item.price, coupon_code=code,
                                       item=None if isinstance(item, SubscriptionPlan) else item)
                payment = buy(tenant, item, coupon_code=code, via=via)
                assert (payment.amount, payment.order.total) == (quote.total, quote.total)
                assert (payment.order.partner, payment.order.promoter) == (
                    via if op[3] == "partner" else None, via if op[3] == "promoter" else None)
                payments.append(payment)
                if isinstance(item, SubscriptionPlan):
                    event("a plan shared with creators was bought")
            elif kind in ("succeed", "fail") and payments:
                # mostly a pending payment; now and then any, for late and out-of-order outcomes
                pending = [p for p in payments if p.status == Payment.Status.PENDING]
                pool = pending if pending and op[1] % 3 else payments
                payment = pool[op[1] % len(pool)]
                payment.refresh_from_db()
                before = payment.status
                body = SANDBOX.event_body(payment=payment, outcome="succeeded" if kind == "succeed" else "failed")
                assert deliver(tenant, body) == "applied"
                sent.append(body)
                payment.refresh_from_db()
                if before == Payment.Status.PENDING:
                    assert payment.status == (Payment.Status.SUCCEEDED if kind == "succeed" else Payment.Status.FAILED)
                else:  # late or out-of-order events never undo or redo an outcome
                    assert payment.status == before
            elif kind == "replay" and sent:
                body, before = sent[op[1] % len(sent)], snapshot()
                for _ in range(op[2]):
                    assert deliver(tenant, body) == "duplicate"
                assert snapshot() == before
                event("a webhook was replayed")
            elif kind == "refund" and payments:
                # mostly a captured payment; now and then any payment, which may not be refundable
                captured = [p for p in payments if p.status == Payment.Status.SUCCEEDED]
                pool = captured if captured and op[1] % 4 else payments
                payment, left, amount = refund_aim(pool, op)
                if amount <= 0:
                    continue
                before = snapshot()
                if payment.status != Payment.Status.SUCCEEDED:
                    with pytest.raises(ApplicationError) as refused:
                        services.refund_create(payment=payment, amount=amount, actor=None)
                    assert refused.value.code == "not_refundable"
                    assert snapshot() == before
                elif amount > left:
                    with pytest.raises(ApplicationError) as refused:
                        services.refund_create(payment=payment, amount=amount, actor=None)
                    assert refused.value.code == "refund_exceeds_captured"
                    event("a refund beyond what is left was refused")
                    assert refused.value.extra["refundable"] == left
                    assert snapshot() == before
                else:
                    refund = services.refund_create(payment=payment, amount=amount, actor=None)
                    assert refund.amount == amount
                    payment.refresh_from_db()
                    assert payment.refunded_amount == sum(r.amount for r in payment.refunds.filter(failed_at=None))
                    event("a refund was made")
                    if payment.refunded_amount == payment.amount:
                        event("a payment was refunded in full")
            elif kind == "provider_refund" and payments:
                captured = [p for p in payments if p.status == Payment.Status.SUCCEEDED] or payments
                payment, left, amount = refund_aim(captured, op)
                if amount <= 0:
                    continue
                booked = []
                for _ in range(op[3]):  # the provider's reports of one refund book it once
                    booked.append(services.refund_record(payment=payment, amount=amount,
                                                         provider_ref=f"re_{reported}", reason=""))
                reported += 1
                payment.refresh_from_db()
                if payment.status != Payment.Status.SUCCEEDED or left <= 0:
                    assert booked == [None] * op[3]
                    continue
                # never more than what was left, however much the provider reports
                assert booked[0].amount == min(amount, left) and booked[1:] == [None] * (op[3] - 1)
                booked_total = sum(r.amount for r in payment.refunds.filter(failed_at=None))
                assert payment.refunded_amount == booked_total <= payment.amount
                event("a refund made at the provider was booked")
            elif kind == "refund_fails":
                live = list(Refund.objects.filter(failed_at=None).exclude(provider_ref="").order_by("pk"))
                if not live:
                    continue
                refund = live[op[1] % len(live)]
                order = refund.payment.order
                was = (order.refunded, order.status, in_force(order))
                undone = [services.refund_fail(payment=refund.payment, provider_ref=refund.provider_ref,
                                               amount=refund.amount, reason="expired_or_canceled_card")
                          for _ in range(op[2])]
                assert undone[0] == refund and undone[1:] == [None] * (op[2] - 1)
                order.refresh_from_db()
                assert order.refunded == was[0] - refund.amount
                assert order.status == (Order.Status.PARTIALLY_REFUNDED if order.refunded else Order.Status.PAID)
                if was[1] == Order.Status.REFUNDED:
                    assert in_force(order) == order.lines.count() > was[2]
                    event("a full refund failed and access opened again")
                event("a refund failed at the provider")
            elif kind == "refund_fails_first" and payments:
                captured = [p for p in payments if p.status == Payment.Status.SUCCEEDED] or payments
                payment, left, amount = refund_aim(captured, op)
                if amount <= 0:
                    continue
                before, ref = snapshot(), f"re_{reported}"
                reported += 1
                services.refund_fail(payment=payment, provider_ref=ref, amount=amount, reason="unknown")
                assert services.refund_record(payment=payment, amount=amount, provider_ref=ref, reason="") is None
                after = snapshot()
                assert (after[:4], after[5:]) == (before[:4], before[5:])  # only the failed refund's row is new
            elif kind == "refund_outside" and payments:
                captured = [p for p in payments if p.status == Payment.Status.SUCCEEDED]
                if not captured:
                    continue
                payment, left, amount = refund_aim(captured, op)
                if 0 < amount <= left:
                    refund = services.refund_create(payment=payment, amount=amount, actor=None, paid_outside=True)
                    assert refund.provider_ref == ""
                    event("a refund was paid outside the provider")
            elif kind == "payout":
                # Past the refund window (or not yet), then pay everything payable; the next run finds nothing.
                days += 15 if op[1] else 0
                released = shares_release(tenant=tenant, now=timezone.now() + timedelta(days=days))
                owed = {code: -total for code, total in payee_balances().items()
                        if code.endswith(":payable") and total < 0}
                payouts = payout_run(tenant=tenant, actor=None)
                assert sorted(p.amount for p in payouts) == sorted(owed.values())
                assert all(total >= 0 for code, total in payee_balances().items() if code.endswith(":payable"))
                assert payout_run(tenant=tenant, actor=None) == []
                if released:
                    event("shares were released")
                if payouts:
                    event("payees were paid")
            elif kind == "expire":
                # An hour on, every open checkout expires; nothing is booked for it.
                still_open = Payment.objects.filter(status=Payment.Status.PENDING).count()
                before = JournalEntry.objects.count()
                later = timezone.now() + timedelta(minutes=61)
                assert services.checkouts_expire(tenant=tenant, now=later) == still_open
                assert not Order.objects.filter(status=Order.Status.PENDING).exists()
                assert JournalEntry.objects.count() == before
                if still_open:
                    event("open checkouts expired")
        # A coupon counts each paid order once, and its paid and open orders never exceed its limit.
        for coupon in Coupon.objects.all():
            assert coupon.used_count == Order.objects.filter(coupon=coupon, paid_at__isnull=False).count()
            assert coupon.max_uses is None or coupon_held(coupon.code) <= coupon.max_uses
        assert_ledger_invariants(tenant)
        transaction.set_rollback(True)


# --- worked examples ------------------------------------------------------------------------------------------------

def test_a_sale_and_a_refund_book_these_postings(shop):
    tenant, (tea, _silk, _paper), _channels = shop
    with tenancy.activate(tenant):
        payment = settle(tenant, buy(tenant, tea))
        order = payment.order
        creator = tea.item_creators.get().creator_id
        sale = JournalEntry.objects.get(order=order, kind=JournalEntry.Kind.SALE)
        assert {p.account.code: p.amount for p in sale.postings.all()} == {
            CLEARING: 999, "platform": -100, f"creator:{creator}:held": -450, "tenant": -449}
        refund = services.refund_create(payment=payment, amount=999, actor=None)
        entry = refund.journal_entries.get()
        assert {p.account.code: p.amount for p in entry.postings.all()} == {
            CLEARING: -999, "platform": 100, f"creator:{creator}:held": 450, "tenant": 449}
        order.refresh_from_db()
        assert order.status == Order.Status.REFUNDED
        assert not order.entitlements.filter(revoked_at__isnull=True).exists()
        assert_ledger_invariants(tenant)


def test_partial_refunds_that_add_up_to_the_sale_return_every_share_to_zero(shop):
    """A sale refunded in parts must leave the books as a refund in one go does: every share back at zero.

    Fails: refund_create claws back each refund with ``splits.clawback(amount, sale_parts(order))`` on its own,
    ignoring what earlier refunds of the order already took back, so the rounding favours the same share every
    time. Ten refunds of 100 out of a 1000 sale split {platform 100, tenant 900} balance, but 1000 refunds of 1
    take every unit from the storefront: the platform keeps its fee (-100) and the storefront ends at +100.
    """
    tenant, (_tea, silk, _paper), _channels = shop
    with tenancy.activate(tenant):
        payment = settle(tenant, buy(tenant, silk))
        for _ in range(7):
            services.refund_create(payment=payment, amount=1, actor=None)
        services.refund_create(payment=payment, amount=993, actor=None)
        net: dict[str, int] = defaultdict(int)
        for posting in Posting.objects.filter(entry__order=payment.order).select_related("account"):
            net[posting.account.code] += posting.amount
        assert payment.order.total == 1000
        assert dict(net) == {CLEARING: 0, "platform": 0, "tenant": 0}


def test_a_refund_never_credits_a_share(shop):
    """Each refund entry takes money back: the clearing account pays out, every share account is debited.

    Fails: the refund's parts are the difference of two cumulative largest-remainder claw-backs, which is not
    monotone (the Alabama paradox). Tea (999, 10% fee, one creator at 50%) is shared {platform 100, creator 450,
    storefront 449}; after a refund of 5 ({platform 1, creator 2, storefront 2}), a refund of 1 books
    {platform -1, creator +1, storefront +1}: the refund credits the platform's fee and takes 2 from the others.
    """
    tenant, (tea, _silk, _paper), _channels = shop
    with tenancy.activate(tenant):
        payment = settle(tenant, buy(tenant, tea))
        services.refund_create(payment=payment, amount=5, actor=None)
        refund = services.refund_create(payment=payment, amount=1, actor=None)
        parts = {p.account.code: p.amount for p in refund.journal_entries.get().postings.select_related("account")}
        assert parts.pop(CLEARING) == -1
        assert all(amount > 0 for amount in parts.values()), parts


def test_a_refund_claws_back_the_shares_the_sale_paid_not_todays(shop):
    """The split rule is versioned so that a sale is refunded as it was shared; the creators' shares must be too.

    Fails: ``sale_parts`` reads the item's current ``ItemCreator`` rows, so after a creator's share changes a full
    refund claws back by the new shares: the creator gives back more (or less) than the sale paid them and the
    storefront the difference, and the order's accounts do not return to zero.
    """
    from catalog.models import ItemCreator

    tenant, (tea, _silk, _paper), _channels = shop
    with tenancy.activate(tenant):
        payment = settle(tenant, buy(tenant, tea))
        ItemCreator.objects.filter(item=tea).update(share_bp=10000)
        services.refund_create(payment=payment, amount=payment.amount, actor=None)
        net: dict[str, int] = defaultdict(int)
        for posting in Posting.objects.filter(entry__order=payment.order).select_related("account"):
            net[posting.account.code] += posting.amount
        assert all(amount == 0 for amount in net.values()), dict(net)


# --- tampering ------------------------------------------------------------------------------------------------------

def tamper(sql: str, params: list) -> None:
    """Change ledger rows behind the services' back (on PostgreSQL, with the append-only triggers off briefly)."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            return
        # Pending deferred-trigger events block ALTER TABLE: fire them first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in ("payments_posting", "payments_journalentry"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        for table in ("payments_posting", "payments_journalentry"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def books(shop):
    """The shop's three publications (entries #1..#3), then three sales and a partial refund (#4..#7), which the
    tests call money entries 1..4."""
    tenant, (tea, silk, paper), _channels = shop
    with tenancy.activate(tenant):
        first = settle(tenant, buy(tenant, tea))
        settle(tenant, buy(tenant, silk))
        services.refund_create(payment=first, amount=300, actor=None)
        settle(tenant, buy(tenant, paper))
        assert list(JournalEntry.objects.values_list("kind", flat=True)) == [
            "publish", "publish", "publish", "sale", "sale", "refund", "sale"]
        entries = dict(enumerate(JournalEntry.objects.exclude(kind="publish"), start=1))
        assert ledger.ledger_verify(tenant=tenant).ok
    return tenant, entries


def verify(tenant):
    with tenancy.activate(tenant):
        return ledger.ledger_verify(tenant=tenant)


def command_output() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("ledger_verify", stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_the_command_passes_intact_books(books):
    tenant, entries = books
    code, output = command_output()
    assert code == 0
    assert f"alpha: 7 entries verify; head {entries[4].hash}" in output


def test_a_changed_posting_amount_is_found(books):
    tenant, entries = books
    with scopes_disabled():
        posting = entries[2].postings.order_by("amount").first()
    tamper("UPDATE payments_posting SET amount = amount - 1 WHERE id = %s", [posting.pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 5)
    assert "do not balance" in result.problem
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #5: its postings do not balance" in output


def test_money_moved_between_accounts_of_one_entry_is_found_by_the_hash(books):
    tenant, entries = books
    with scopes_disabled():
        credits = list(entries[3].postings.filter(amount__gt=0).order_by("id"))  # the refund gives back shares
    assert len(credits) >= 2
    tamper("UPDATE payments_posting SET amount = amount + 1 WHERE id = %s", [credits[0].pk])
    tamper("UPDATE payments_posting SET amount = amount - 1 WHERE id = %s", [credits[1].pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 6)
    assert "does not match its hash" in result.problem
    code, output = command_output()
    assert code == 1
    assert "broken at entry #6" in output


def test_a_changed_memo_is_found(books):
    tenant, entries = books
    tamper("UPDATE payments_journalentry SET memo = %s WHERE id = %s", ["Sale nothing to see", entries[1].pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 4)
    assert "does not match its hash" in result.problem
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #4:" in output


def test_a_changed_hash_breaks_the_next_link(books):
    tenant, entries = books
    tamper("UPDATE payments_journalentry SET hash = %s WHERE id = %s", ["f" * 64, entries[2].pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 5)


def test_a_deleted_entry_in_the_middle_is_found(books):
    tenant, entries = books
    tamper("DELETE FROM payments_posting WHERE entry_id = %s", [entries[2].pk])
    tamper("DELETE FROM payments_journalentry WHERE id = %s", [entries[2].pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 6)
    assert "entry is missing" in result.problem
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #6: sequence 6 where 5 was expected" in output


def test_a_deleted_last_entry_is_found_by_the_head(books):
    tenant, entries = books
    tamper("DELETE FROM payments_posting WHERE entry_id = %s", [entries[4].pk])
    tamper("DELETE FROM payments_journalentry WHERE id = %s", [entries[4].pk])
    result = verify(tenant)
    assert (result.ok, result.broken_at) == (False, 7)
    assert "entries were removed" in result.problem
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #7" in output


def test_the_command_reports_only_the_broken_tenant(books, tenant_b):
    tenant, entries = books
    tamper("UPDATE payments_journalentry SET memo = %s WHERE id = %s", ["changed", entries[4].pk])
    code, output = command_output()
    assert code == 1
    assert "alpha: broken at entry #7" in output
    assert "beta: 0 entries verify" in output


# --- PostgreSQL guards ----------------------------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.usefixtures("on_postgres")
class TestDatabaseGuards:
    @pytest.mark.parametrize("sql", [
        "UPDATE payments_journalentry SET memo = 'x' WHERE id = %(entry)s",
        "DELETE FROM payments_journalentry WHERE id = %(entry)s",
        "UPDATE payments_posting SET amount = amount + 1 WHERE id = %(posting)s",
        "DELETE FROM payments_posting WHERE id = %(posting)s",
    ])
    def test_ledger_rows_are_append_only(self, books, sql):
        _tenant, entries = books
        with scopes_disabled():
            posting = entries[1].postings.first()
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, {"entry": entries[1].pk, "posting": posting.pk})

    @pytest.mark.parametrize("table", ["payments_posting", "payments_journalentry", "payments_ledgeraccount"])
    def test_the_books_cannot_be_emptied_with_truncate(self, books, table):
        """As ``manage.py flush`` would: row triggers never see a TRUNCATE, so a statement trigger refuses it unless
        the session allows it on purpose (as this suite's own resets do)."""
        with pytest.raises(IntegrityError, match=f"TRUNCATE on {table} refused"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the books were written in this test's transaction
            cursor.execute("SET LOCAL zhiku.ledger_truncate = ''")
            cursor.execute(f"TRUNCATE {table} CASCADE")
        with scopes_disabled():
            assert Posting.objects.count() > 0 and LedgerAccount.objects.count() > 0

    def test_the_orm_cannot_update_a_posting_either(self, books):
        _tenant, entries = books
        with scopes_disabled(), pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            Posting.objects.filter(entry=entries[1]).update(amount=0)

    def _entry(self, tenant, sequence: int) -> JournalEntry:
        return JournalEntry.objects.create(tenant=tenant, sequence=sequence, kind=JournalEntry.Kind.REVERSAL,
                                           memo="by hand", created_at=timezone.now(),
                                           previous_hash=uuid.uuid4().hex * 2, hash=uuid.uuid4().hex * 2)

    def _account(self, tenant, code: str, currency: str = "CNY") -> LedgerAccount:
        return ledger.account_for(tenant=tenant, code=code, kind="tenant", currency=currency, name=code)

    def test_an_unbalanced_entry_is_refused_when_constraints_are_checked(self, tenant_a):
        with scope(tenant=tenant_a):
            left, right = self._account(tenant_a, "left"), self._account(tenant_a, "right")
            with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
                entry = self._entry(tenant_a, 1000)
                Posting.objects.create(tenant=tenant_a, entry=entry, account=left, amount=5, currency="CNY")
                Posting.objects.create(tenant=tenant_a, entry=entry, account=right, amount=-4, currency="CNY")
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            assert not JournalEntry.objects.filter(sequence=1000).exists()

    def test_an_entry_balanced_only_across_currencies_is_refused(self, tenant_a):
        with scope(tenant=tenant_a):
            cny, usd = self._account(tenant_a, "cash", "CNY"), self._account(tenant_a, "cash", "USD")
            with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
                entry = self._entry(tenant_a, 1001)
                Posting.objects.create(tenant=tenant_a, entry=entry, account=cny, amount=5, currency="CNY")
                Posting.objects.create(tenant=tenant_a, entry=entry, account=usd, amount=-5, currency="USD")
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def test_postings_added_one_by_one_may_balance_only_at_the_end(self, tenant_a):
        with scope(tenant=tenant_a):
            left, right = self._account(tenant_a, "left"), self._account(tenant_a, "right")
            with transaction.atomic():
                entry = self._entry(tenant_a, 1002)
                Posting.objects.create(tenant=tenant_a, entry=entry, account=left, amount=7, currency="CNY")
                Posting.objects.create(tenant=tenant_a, entry=entry, account=right, amount=-7, currency="CNY")
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            assert entry.postings.count() == 2

    @pytest.mark.parametrize("scope_at_commit", ["its own", "another storefront's", "none"])
    def test_the_application_role_cannot_hide_an_unbalanced_entry_from_the_check(self, tenant_a, scope_at_commit):
        """Row-level security shows the production role only its storefront's rows; switching the storefront
        setting before commit must not hide an entry's postings from the balance check, which runs as the owner."""
        from django.conf import settings as django_settings

        hide = {"its own": None, "another storefront's": str(tenant_a.pk + 1000), "none": ""}[scope_at_commit]
        with tenancy.activate(tenant_a):
            left = self._account(tenant_a, "left")
            with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic(), \
                    connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(django_settings.DATABASE_RLS_ROLE)}")
                entry = self._entry(tenant_a, 1003)
                Posting.objects.create(tenant=tenant_a, entry=entry, account=left, amount=500, currency="CNY")
                if hide is not None:
                    cursor.execute("SELECT set_config('zhiku.tenant_id', %s, true)", [hide])
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT does
