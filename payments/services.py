"""Writes on payments: entitlements, checkout, payment outcomes, refunds and the ledger entries they leave.

Money rules live here and nowhere else. Each function that moves money locks the rows it changes, checks state
first (so running it twice has no second effect), and books its journal entry in the same transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.selectors import user_can_buy
from marketplace.errors import ApplicationError
from marketplace.models import Tenant
from marketplace.money import CURRENCY_EXPONENTS, charge_step, format_money
from marketplace.services import audit_log_write
from recommender.events import purchases_record

from . import ledger, splits
from .models import (
    Coupon,
    Entitlement,
    JournalEntry,
    LedgerAccount,
    Order,
    OrderLine,
    Payment,
    PaymentSettings,
    Posting,
    Refund,
    SplitRule,
    Subscription,
    WebhookEvent,
)
from .providers import ProviderEvent, SignatureError, provider

logger = logging.getLogger(__name__)

# --- entitlements ---------------------------------------------------------------------------------------------------


def entitlement_check(*, item=None, bundle=None, whole_catalog: bool = False, plan=None,
                      starts_at: datetime | None = None, ends_at: datetime | None = None) -> None:
    """What an entitlement must be: access to exactly one thing, for a period that ends after it starts."""
    if sum(bool(x) for x in (item, bundle, whole_catalog, plan)) != 1:
        raise ApplicationError(_("Grant access to one item, one bundle, one subscription tier or the whole catalog."),
                               code="entitlement_target")
    if ends_at is not None and ends_at <= (starts_at or timezone.now()):
        raise ApplicationError(_("Access must end after it starts."), code="entitlement_period",
                               extra={"field": "ends_at"})


def entitlement_grant(*, tenant, user, actor, item=None, bundle=None, whole_catalog: bool = False, plan=None,
                      source: str = Entitlement.Source.GRANT, reference: str = "", order=None,
                      starts_at: datetime | None = None, ends_at: datetime | None = None) -> Entitlement:
    starts_at = starts_at or timezone.now()
    entitlement_check(item=item, bundle=bundle, whole_catalog=whole_catalog, plan=plan, starts_at=starts_at,
                      ends_at=ends_at)
    with transaction.atomic(savepoint=False):  # nothing in here is caught: a failure fails the caller's transaction
        entitlement = Entitlement.objects.create(
            tenant=tenant, user=user, item=item, bundle=bundle, whole_catalog=whole_catalog, plan=plan, source=source,
            reference=reference, order=order, starts_at=starts_at, ends_at=ends_at)
        audit_log_write(tenant=tenant, actor=actor, action="payments.entitlement_granted", target=entitlement,
                        data={"user": user.pk, "source": source, "reference": reference})
    return entitlement


def entitlement_revoke(*, entitlement: Entitlement, actor) -> Entitlement:
    """End access now; safe to repeat."""
    with transaction.atomic():
        entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
        if entitlement.revoked_at is None:
            entitlement.revoked_at = timezone.now()
            entitlement.save(update_fields=["revoked_at"])
            audit_log_write(tenant=entitlement.tenant, actor=actor, action="payments.entitlement_revoked",
                            target=entitlement)
    return entitlement


def bundle_items_removed(*, bundle, item_ids, actor) -> int:
    """Items taken out of a bundle stay open to whoever holds the bundle now: each live bundle entitlement gets one
    per removed item, with its source, order, reference and period (so refunding that order still ends them). Items
    added to a bundle open to its holders at once, since a bundle entitlement covers what the bundle holds.
    Returns how many were granted."""
    from catalog.models import ContentItem

    items = list(ContentItem.objects.filter(pk__in=list(item_ids)))
    now, granted = timezone.now(), 0
    holders = Entitlement.objects.filter(bundle=bundle, revoked_at__isnull=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)).select_related("user", "order")
    with transaction.atomic():
        for held in holders:
            for item in items:
                entitlement_grant(tenant=held.tenant, user=held.user, actor=actor, item=item, source=held.source,
                                  reference=held.reference or f"bundle {bundle.slug}", order=held.order,
                                  starts_at=held.starts_at, ends_at=held.ends_at)
                granted += 1
    return granted


# --- settings and rules ---------------------------------------------------------------------------------------------

def payment_settings(*, tenant) -> PaymentSettings:
    """The storefront's payment settings, or the defaults (unsaved) until its team changes them."""
    return PaymentSettings.objects.filter(tenant=tenant).first() or PaymentSettings(tenant=tenant)


def split_rule_current(*, tenant) -> SplitRule:
    rule = SplitRule.objects.order_by("-version").first()
    if rule is None:
        with transaction.atomic():
            fee = Tenant.objects.values_list("platform_fee_bp", flat=True).get(pk=tenant.pk)
            rule, _ = SplitRule.objects.get_or_create(tenant=tenant, version=1, defaults={"platform_fee_bp": fee})
    return rule


def split_rule_check(*, platform_fee_bp: int, partner_commission_bp: int = 0, promoter_commission_bp: int = 0,
                     promoter_second_level_bp: int = 0, fee_field: str | None = None) -> None:
    """A sale pays the platform fee and one channel's commission: a partner's, or a promoter's and their
    recruiter's. Together they cannot exceed the whole. ``fee_field`` names the field to blame when the fee is
    what changes (the operator's form); otherwise the larger commission is blamed."""
    for field, bp in (("platform_fee_bp", platform_fee_bp), ("partner_commission_bp", partner_commission_bp),
                      ("promoter_commission_bp", promoter_commission_bp),
                      ("promoter_second_level_bp", promoter_second_level_bp)):
        if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= splits.WHOLE:
            raise ApplicationError(_("Basis points are a whole number from 0 to 10000."), code="split_bp_invalid",
                                   extra={"field": field})
    if platform_fee_bp + max(partner_commission_bp, promoter_commission_bp + promoter_second_level_bp) > splits.WHOLE:
        field = fee_field or ("partner_commission_bp"
                              if partner_commission_bp >= promoter_commission_bp + promoter_second_level_bp
                              else "promoter_commission_bp")
        raise ApplicationError(_("The fee and a commission together cannot exceed 100%."), code="split_over_whole",
                               extra={"field": field})


def _split_rule_write(*, tenant, actor, platform_fee_bp: int, partner_commission_bp: int,
                      promoter_commission_bp: int, promoter_second_level_bp: int, fee_field: str | None = None
                      ) -> SplitRule:
    """The next version of the storefront's split rule; the caller holds ``_locked_fee``'s lock."""
    split_rule_check(platform_fee_bp=platform_fee_bp, partner_commission_bp=partner_commission_bp,
                     promoter_commission_bp=promoter_commission_bp, promoter_second_level_bp=promoter_second_level_bp,
                     fee_field=fee_field)
    latest = SplitRule.objects.filter(tenant=tenant).order_by("-version").first()
    rule = SplitRule.objects.create(
        tenant=tenant, version=(latest.version if latest else 0) + 1, platform_fee_bp=platform_fee_bp,
        partner_commission_bp=partner_commission_bp, promoter_commission_bp=promoter_commission_bp,
        promoter_second_level_bp=promoter_second_level_bp,
        created_by=actor if getattr(actor, "is_authenticated", False) else None)
    audit_log_write(tenant=tenant, actor=actor, action="payments.split_rule_created", target=rule,
                    data={"version": rule.version, "platform_fee_bp": platform_fee_bp,
                          "partner_commission_bp": partner_commission_bp,
                          "promoter_commission_bp": promoter_commission_bp,
                          "promoter_second_level_bp": promoter_second_level_bp})
    return rule


def _locked_fee(tenant) -> int:
    """The storefront's platform fee, its row locked: split rule versions are numbered under this lock, and the
    operator's fee change and a team's new commissions wait for each other."""
    # NO KEY: rows being written that point at the storefront do not wait for this lock.
    return Tenant.objects.select_for_update(no_key=True).values_list("platform_fee_bp", flat=True).get(pk=tenant.pk)


def split_rule_create(*, tenant, actor, partner_commission_bp: int = 0, promoter_commission_bp: int = 0,
                      promoter_second_level_bp: int = 0) -> SplitRule:
    """A new version of the split rule with the team's commissions and the platform fee the operator set; orders
    already placed keep the version they were split with."""
    with transaction.atomic():
        return _split_rule_write(tenant=tenant, actor=actor, platform_fee_bp=_locked_fee(tenant),
                                 partner_commission_bp=partner_commission_bp,
                                 promoter_commission_bp=promoter_commission_bp,
                                 promoter_second_level_bp=promoter_second_level_bp)


def platform_fee_check(*, tenant, platform_fee_bp: int) -> SplitRule:
    """Refuse a platform fee that leaves no room for the commissions the storefront's team set (in its latest split
    rule, which is returned: unsaved, with no commissions, before the first)."""
    latest = SplitRule.objects.filter(tenant=tenant).order_by("-version").first() or SplitRule()
    split_rule_check(platform_fee_bp=platform_fee_bp, partner_commission_bp=latest.partner_commission_bp,
                     promoter_commission_bp=latest.promoter_commission_bp,
                     promoter_second_level_bp=latest.promoter_second_level_bp, fee_field="platform_fee_bp")
    return latest


def platform_fee_set(*, tenant, actor, platform_fee_bp: int) -> SplitRule | None:
    """The operator's change of a storefront's platform fee: saved on the storefront, and a new split rule version
    keeping the team's commissions, so orders placed from now on pay it. None when the fee is unchanged."""
    with transaction.atomic():
        if _locked_fee(tenant) == platform_fee_bp:
            return None
        latest = platform_fee_check(tenant=tenant, platform_fee_bp=platform_fee_bp)
        rule = _split_rule_write(tenant=tenant, actor=actor, platform_fee_bp=platform_fee_bp,
                                 partner_commission_bp=latest.partner_commission_bp,
                                 promoter_commission_bp=latest.promoter_commission_bp,
                                 promoter_second_level_bp=latest.promoter_second_level_bp,
                                 fee_field="platform_fee_bp")
        Tenant.objects.filter(pk=tenant.pk).update(platform_fee_bp=platform_fee_bp)
        tenant.platform_fee_bp = platform_fee_bp
    return rule


# --- checkout -------------------------------------------------------------------------------------------------------

@dataclass
class CheckoutStarted:
    order: Order
    payment: Payment
    redirect_url: str


def _coupon_usable(code: str, *, now, user=None) -> Coupon:
    coupon = Coupon.objects.filter(code__iexact=code.strip()).first()
    if coupon is None or not coupon.is_active:
        raise ApplicationError(_("This coupon code is not valid."), code="coupon_invalid", extra={"field": "coupon"})
    if coupon.expires_at and coupon.expires_at <= now:
        raise ApplicationError(_("This coupon has expired."), code="coupon_expired", extra={"field": "coupon"})
    _coupon_check_uses(coupon, user=user)
    return coupon


def _coupon_hold(coupon_id: int) -> None:
    """Count a coupon's uses with its row locked, so concurrent checkouts cannot share its last use."""
    _coupon_check_uses(Coupon.objects.select_for_update().get(pk=coupon_id))


def _coupon_check_uses(coupon: Coupon, *, user=None) -> None:
    """A coupon's uses are its paid orders and its open checkouts: a checkout holds its use until it is paid
    (then counted for good) or fails, is cancelled or expires (then free again). ``user``'s own open checkouts are
    not counted when quoting them a price, since their new checkout replaces the open one of the same thing (the
    count under the coupon's lock, after the replacement, is the one that decides)."""
    if coupon.max_uses is None:
        return
    held = coupon.orders.filter(status=Order.Status.PENDING)
    if user is not None:
        held = held.exclude(user=user)
    if coupon.used_count + held.count() >= coupon.max_uses:
        raise ApplicationError(_("This coupon has been used up."), code="coupon_exhausted", extra={"field": "coupon"})


def _discount(coupon: Coupon | None, *, subtotal: int, item, step: int) -> int:
    """The coupon's discount on ``subtotal``, a percentage's rounded half up to the currency's charge ``step``."""
    if coupon is None:
        return 0
    if coupon.item_id and (item is None or coupon.item_id != item.pk):
        raise ApplicationError(_("This coupon is for another item."), code="coupon_not_applicable",
                               extra={"field": "coupon"})
    if coupon.kind == Coupon.Kind.PERCENT:
        return min(subtotal, (subtotal * coupon.value * 2 + splits.WHOLE * step) // (2 * splits.WHOLE * step) * step)
    return min(subtotal, coupon.value)


@dataclass
class Quote:
    subtotal: int
    discount: int
    tax: int
    total: int
    coupon: Coupon | None
    settings: PaymentSettings


def quote(*, tenant, price: int, item=None, coupon_code: str = "", conf: PaymentSettings | None = None,
          user=None, currency: str = "") -> Quote:
    """What the learner (``user``, when known) will pay for ``price``: the coupon's discount, then tax included in
    or added to the rest. ``conf`` is the storefront's payment settings when the caller has read them already;
    ``currency`` the one ``price`` is in when that is not the storefront's current one (a renewal's)."""
    step = charge_step(currency or tenant.currency)
    coupon = _coupon_usable(coupon_code, now=timezone.now(), user=user) if coupon_code.strip() else None
    discount = _discount(coupon, subtotal=price, item=item, step=step)
    conf = conf or payment_settings(tenant=tenant)
    after_discount = price - discount
    tax = splits.tax_of(after_discount, rate_bp=conf.tax_rate_bp, included=conf.prices_include_tax, step=step)
    total = after_discount if conf.prices_include_tax else after_discount + tax
    if total <= 0:
        raise ApplicationError(_("The coupon makes this free; ask the storefront to grant access instead."),
                               code="zero_total", extra={"field": "coupon"})
    return Quote(subtotal=price, discount=discount, tax=tax, total=total, coupon=coupon, settings=conf)


def _order_number() -> str:
    return "ZK" + secrets.token_hex(5).upper()


def purchase_check(*, user, item=None, bundle=None, plan=None) -> tuple[str, int]:
    """Whether ``user`` can buy this item, bundle or plan now: its (title, price), or an ApplicationError saying why
    not (not on sale, free, owned already, a subscription already held)."""
    from catalog.access import can_access
    from catalog.models import ContentItem

    if item is not None:
        if item.status != ContentItem.Status.PUBLISHED:
            raise ApplicationError(_("This item is not on sale."), code="not_on_sale")
        if item.is_free:
            raise ApplicationError(_("This item is free: no purchase needed."), code="free_item")
        if can_access(user, item):
            raise ApplicationError(_("You already have this item."), code="already_owned")
        title, price = item.title, item.price
    elif bundle is not None:
        if not bundle.is_published:
            raise ApplicationError(_("This bundle is not on sale."), code="not_on_sale")
        published = list(bundle.items.filter(status=ContentItem.Status.PUBLISHED))
        if not published:
            raise ApplicationError(_("This bundle is not on sale."), code="not_on_sale")
        if all(can_access(user, i) for i in published):
            raise ApplicationError(_("You already have everything in this bundle."), code="already_owned")
        if bundle.price == 0:
            raise ApplicationError(_("This bundle is free: no purchase needed."), code="free_item")
        title, price = bundle.title, bundle.price
    else:
        if not plan.is_active or plan.price == 0:
            raise ApplicationError(_("This plan is not on sale."), code="not_on_sale")
        if Subscription.objects.filter(user=user).exclude(status=Subscription.Status.ENDED).exists():
            raise ApplicationError(_("You already have a subscription."), code="already_subscribed")
        title, price = plan.name, plan.price
    return title, price


def checkout_start(*, tenant, user, idempotency_key: str, item=None, bundle=None, plan=None, coupon_code: str = "",
                   promoter_code: str = "", visitor: str = "", provider_name: str | None = None,
                   request=None) -> CheckoutStarted:
    """Create the order and a pending payment for one item, bundle or subscription plan, and return where the
    learner pays.

    The same ``idempotency_key`` always returns the same order and payment, also when many requests carry it at
    once (the unique constraint decides; the losers read the winner's order). Nothing is written when a check fails
    or the provider refuses to start.
    """
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise ApplicationError(_("Every checkout attempt needs an idempotency key of 1 to 100 characters."),
                               code="idempotency_key_invalid")
    existing = Order.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return keyed_checkout(existing, user, item=item, bundle=bundle, plan=plan, coupon_code=coupon_code)
    if sum(x is not None for x in (item, bundle, plan)) != 1:
        raise ApplicationError(_("Choose one item, bundle or plan to buy."), code="nothing_to_buy")
    if not user_can_buy(user=user):
        raise ApplicationError(_("Confirm your email address before buying."), code="email_unverified",
                               status=403)
    title, price = purchase_check(user=user, item=item, bundle=bundle, plan=plan)
    from distribution.models import Channel
    from distribution.selectors import channel_attribution

    from .promoters import attribution_for, touch_record

    # A promoter's code entered at checkout is remembered with the checkout it was entered for, or not at all.
    with transaction.atomic():
        if promoter_code.strip():
            touch_record(tenant=tenant, code=promoter_code, visitor=visitor, user=user, source="code")
        conf = payment_settings(tenant=tenant)
        attribution = attribution_for(tenant=tenant, user=user, visitor=visitor, conf=conf)
        channel = channel_attribution(tenant=tenant, user=user, visitor=visitor,
                                      window_days=conf.attribution_window_days)
        partner = None
        if channel is not None:
            # The newest partner link, if it came after the promoter's, earns the commission: a later visit through a
            # channel that earns nothing (a post on Weibo, say) does not hand the sale back to the promoter.
            brought = channel if channel.channel.kind == Channel.Kind.PARTNER and channel.channel.is_enabled else (
                channel_attribution(tenant=tenant, user=user, visitor=visitor, partners_only=True,
                                    window_days=conf.attribution_window_days))
            if brought is not None and (attribution is None or brought.at >= attribution.at):
                partner, attribution = brought, None
        return order_open(tenant=tenant, user=user, key=key, title=title, price=price, item=item, bundle=bundle,
                          plan=plan, coupon_code=coupon_code, provider_name=provider_name, request=request,
                          conf=conf, attribution=attribution, channel=channel, partner=partner)


def payment_in_progress() -> ApplicationError:
    return ApplicationError(_("Your earlier payment for this is still being confirmed. Please check your orders in a "
                              "moment."), code="payment_in_progress", status=409)


def order_open(*, tenant, user, key: str, title: str, price: int, item=None, bundle=None, plan=None,
               subscription=None, coupon_code: str = "", provider_name: str | None = None, request=None,
               source: str = "storefront", attribution=None, channel=None, partner=None,
               conf: PaymentSettings | None = None, currency: str = "", shares: list | None = None) -> CheckoutStarted:
    """Write the order, its line and a pending payment, and start the payment at the provider: all or nothing.

    ``attribution`` names the promoter who brought the sale; ``channel`` the distribution channel whose tracked link
    the learner came through (``distribution.selectors.channel_attribution``), each with its evidence. ``partner``
    is the partner platform (a channel of that kind, with its evidence) that earns the sale's commission instead of
    a promoter: the one whose tracked link came last, or whose API placed the order. ``currency`` is the one
    ``price`` is in when that is not the storefront's current one (a renewal keeps its subscription's). ``shares`` is
    the line's ``line_shares`` when the caller has it already (a renewal sweep reads each shared plan's once)."""
    from django.conf import settings

    currency = currency or tenant.currency
    if currency not in CURRENCY_EXPONENTS:
        raise ApplicationError(_("This storefront's currency is not supported."), code="currency_unsupported")
    q = quote(tenant=tenant, price=price, item=item, coupon_code=coupon_code, conf=conf, user=user, currency=currency)
    if q.total % charge_step(currency):  # a price the admin would refuse now (``money.CHARGE_STEPS``)
        raise ApplicationError(_("This price cannot be charged in %(currency)s; ask the storefront to correct it.")
                               % {"currency": currency}, code="amount_not_chargeable")
    try:
        gateway = provider(provider_name or settings.PAYMENT_PROVIDER)
    except KeyError as exc:
        raise ApplicationError(_("Unknown payment provider."), code="provider_unknown") from exc
    try:
        with transaction.atomic():
            # One learner's checkouts queue here, one after the other (and a coupon's last use is counted under
            # its row's lock): the same key finds its order; a new one replaces the learner's open checkout of the
            # same item or bundle (or any plan: a learner has one subscription), closed at the provider first, so one
            # purchase is never paid twice. A new plan also replaces the renewal checkout of a subscription that
            # ended while that checkout stayed open at the provider: paid later, it would bring the ended
            # subscription back beside the new one.
            # FOR NO KEY UPDATE: the checkouts still queue, but the webhook of a payment replaced below (which we
            # may wait for in ``payment_close``) can still insert the rows that point at the learner (its foreign
            # keys' KEY SHARE locks); FOR UPDATE would make each wait for the other (a deadlock).
            get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()
            same = Q(idempotency_key=key)
            if subscription is None:  # a renewal replaces nothing
                lines = {"lines__item": item} if item else {"lines__bundle": bundle} if bundle else {
                    "lines__plan__isnull": False, "lines__subscription__isnull": True}
                same |= Q(user=user, status=Order.Status.PENDING, **lines)
                if plan is not None:
                    same |= Q(user=user, status=Order.Status.PENDING,
                              lines__subscription__status=Subscription.Status.ENDED)
            earlier = list(Order.objects.filter(same).distinct())
            for order in earlier:
                if order.idempotency_key == key:
                    return keyed_checkout(order, user, item=item, bundle=bundle, plan=plan, coupon_code=coupon_code)
            if subscription is None:
                # Checked again now that the learner's checkouts queue: another tab's checkout of the same thing may
                # have been paid since ``checkout_start`` checked (it is no longer pending, so nothing above finds
                # it), and the learner must not pay twice. A renewal is checked by the sweep, under its
                # subscription's lock.
                purchase_check(user=user, item=item, bundle=bundle, plan=plan)
            for payment in Payment.objects.filter(order__in=earlier, status=Payment.Status.PENDING):
                if not payment_expire(payment=payment, reason=Payment.REPLACED, actor=user):
                    raise payment_in_progress()
            if q.coupon is not None:
                _coupon_hold(q.coupon.pk)
            order = Order.objects.create(
                tenant=tenant, number=_order_number(), user=user, currency=currency, subtotal=price,
                discount=q.discount, tax=q.tax, total=q.total, tax_rate_bp=q.settings.tax_rate_bp,
                prices_include_tax=q.settings.prices_include_tax, coupon=q.coupon,
                split_rule=split_rule_current(tenant=tenant), idempotency_key=key, source=source,
                promoter=attribution.promoter if attribution else None,
                promoter_second_level=attribution.second_level if attribution else None,
                channel=channel.channel if channel else None, partner=partner.channel if partner else None,
                attribution={**(attribution.evidence if attribution else {}),
                             **({"channel": channel.evidence} if channel else {}),
                             **({"partner": partner.evidence} if partner else {})})
            # A plan's line keeps the period its price pays for, as it keeps the price: the plan may change before
            # the payment arrives.
            interval = subscription.interval if subscription is not None else plan.interval if plan else ""
            # A line keeps the creators' shares it was sold with (a shared plan's: of the items it covers now), as
            # the order keeps its split rule: the team's later edits apply to later sales.
            OrderLine.objects.create(tenant=tenant, order=order, item=item, bundle=bundle, plan=plan,
                                     subscription=subscription, title=title, unit_price=price, interval=interval,
                                     discount=q.discount, tax=q.tax, total=q.total,
                                     shares=shares or line_shares(item=item, bundle=bundle, plan=plan))
            payment, url = _payment_open(order, gateway=gateway, request=request)
            audit_log_write(tenant=tenant, actor=user, action="payments.checkout_started", target=order,
                            data={"total": q.total, "currency": currency, "source": source})
    except IntegrityError:
        # Another request with this key won the race: return what it created.
        existing = Order.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return keyed_checkout(existing, user, item=item, bundle=bundle, plan=plan, coupon_code=coupon_code)
    return CheckoutStarted(order=order, payment=payment, redirect_url=url)


def _payment_open(order: Order, *, gateway, request=None) -> tuple[Payment, str]:
    """A pending payment of the order's total, started at the provider: (payment, where the learner pays)."""
    payment = Payment.objects.create(tenant=order.tenant, order=order, provider=gateway.name, amount=order.total,
                                     currency=order.currency)
    payment.provider_ref, url = gateway.start(payment=payment, request=request)
    payment.save(update_fields=["provider_ref", "updated_at"])
    return payment, url


def payment_retry(*, order: Order, user, request=None) -> CheckoutStarted:
    """Pay an unpaid order again, for the same total: its checkout while that is open, else a new payment attempt
    (after one that failed, was cancelled or expired). Callers decide whether the order is still worth paying."""
    from django.conf import settings

    started = existing_checkout(order, user)
    last = started.payment
    if last.status == Payment.Status.PENDING:
        if started.redirect_url and not last.is_overdue:
            return started
        if not payment_expire(payment=last, actor=user):
            raise payment_in_progress()
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("tenant", "user").get(pk=order.pk)
        if order.status not in (Order.Status.PENDING, Order.Status.FAILED, Order.Status.CANCELLED):
            raise ApplicationError(_("This order is paid already."), code="order_paid", status=409)
        if order.payments.filter(status=Payment.Status.PENDING).exists():
            return existing_checkout(order, user)  # another retry won the race
        if order.coupon_id:
            _coupon_hold(order.coupon_id)
        order.status = Order.Status.PENDING
        order.save(update_fields=["status"])
        payment, url = _payment_open(order, gateway=provider(settings.PAYMENT_PROVIDER), request=request)
        audit_log_write(tenant=order.tenant, actor=user, action="payments.payment_retried", target=order,
                        data={"payment": payment.pk, "provider": payment.provider})
    return CheckoutStarted(order=order, payment=payment, redirect_url=url)


def checkout_resume(*, order: Order, user) -> str:
    """Where the learner finishes paying the order's open checkout, or "" when it has none. One past its time is
    closed here (the sweep would, a little later) unless the provider is taking it now (``payment_in_progress``).
    So is one for what the learner cannot buy any more (``purchase_check``): an item they have got meanwhile, through
    a bundle, a subscription or the team, is not paid for again."""
    payment = order.payments.order_by("-created_at").first()
    if order.status != Order.Status.PENDING or payment is None or payment.status != Payment.Status.PENDING:
        return ""
    line = order.lines.select_related("item", "bundle", "plan").first()
    if line.subscription_id is None:  # a renewal is paid from the subscription page
        try:
            purchase_check(user=user, item=line.item, bundle=line.bundle, plan=line.plan)
        except ApplicationError:
            payment_expire(payment=payment, reason=Payment.UNBUYABLE, actor=user)
            raise
    if not payment.is_overdue:
        return existing_checkout(order, user).redirect_url
    if not payment_expire(payment=payment, actor=user):
        raise payment_in_progress()
    return ""


def keyed_checkout(order: Order, user, *, item=None, bundle=None, plan=None, coupon_code: str = "") -> CheckoutStarted:
    """The checkout a request's idempotency key made before, when the request asks for the same purchase (item,
    bundle or plan, and coupon). A key sent again with another cart is refused (409), as Stripe refuses a key sent
    again with other parameters, rather than sending the learner to pay for the first cart."""
    line = order.lines.first()
    asked = (getattr(item, "pk", None), getattr(bundle, "pk", None), getattr(plan, "pk", None),
             coupon_code.strip().upper())
    made = (line.item_id, line.bundle_id, line.plan_id, order.coupon.code.upper() if order.coupon_id else "")
    if order.user_id == user.pk and asked != made:
        raise ApplicationError(_("This checkout was started for another purchase or coupon; check it and pay again."),
                               code="idempotency_key_mismatch", status=409)
    return existing_checkout(order, user)


def existing_checkout(order: Order, user) -> CheckoutStarted:
    """The checkout already made with this key: its order and payment, and where to finish paying if pending."""
    if order.user_id != user.pk:
        raise ApplicationError(_("This checkout belongs to someone else."), code="idempotency_key_reused",
                               status=409)
    payment = order.payments.order_by("-created_at").first()
    url = ""
    if payment.status == Payment.Status.PENDING:
        url = provider(payment.provider).checkout_url(payment=payment)
    return CheckoutStarted(order=order, payment=payment, redirect_url=url)


# --- payment outcomes -----------------------------------------------------------------------------------------------

_ACCOUNT_NAMES = {"platform": "Platform fee", "tenant": "Storefront revenue", "tax": "Tax collected"}


def _account_spec(share: splits.Share, *, held: bool) -> ledger.AccountSpec:
    """The storefront's own accounts (platform, tenant, tax) are one each; a payee's (creator, promoter, partner)
    are two, held during the refund window and payable after it."""
    if share.party is None:
        return ledger.AccountSpec(code=share.kind, kind=share.kind, name=_ACCOUNT_NAMES.get(share.kind, share.kind))
    state = "held" if held else "payable"
    party = {f"{share.kind}_id": share.party}
    return ledger.AccountSpec(code=f"{share.kind}:{share.party}:{state}", kind=share.kind,
                              name=lambda: f"{LedgerAccount(**party).payee_name} ({state})", **party)


def _postings(order: Order, payment_provider: str, clearing_amount: int, parts: dict[splits.Share, int], *,
              sign: int, held: bool) -> list[tuple[LedgerAccount, int]]:
    """The entry's postings: the provider's clearing account, and each share's account, looked up together."""
    clearing = ledger.AccountSpec(code=f"clearing:{payment_provider}", kind="clearing",
                                  name=f"Held by {payment_provider}")
    specs = {share: _account_spec(share, held=held) for share in parts}
    accounts = ledger.accounts_for(tenant=order.tenant, currency=order.currency, specs=[clearing, *specs.values()])
    return [(accounts[clearing.code], clearing_amount)] + [(accounts[specs[share].code], sign * part)
                                                            for share, part in parts.items()]


def line_shares(*, item=None, bundle=None, plan=None) -> list | None:
    """What an item's, a bundle's or a plan's line is shared between: ``[[item, weight, [[creator, share bp], ...]],
    ...]``; None for a plan the storefront keeps (not ``creators_share``).

    A bundle's amount is divided between its items by their prices (weights), and so is a shared plan's, between the
    paid items it gives access to now: the published ones, in its tier's categories or the whole catalog. A free
    item earns nothing from a plan, since nobody needs the plan for it. A plan's items credited alike (the same
    creators with the same shares, or none) are one piece with no item named, so that a large catalog's order lines
    stay small. Creators take the shares of each item's published
    version, which the storefront's chain records (``catalog.ItemVersion``), so a creator's statement shows what
    each sale paid them by; an item with no published version yet takes its current credits.
    """
    from catalog.models import ContentItem, ItemCreator, ItemVersion

    if plan is not None:
        if not plan.creators_share:
            return None
        covered = ContentItem.objects.filter(status=ContentItem.Status.PUBLISHED, price__gt=0)
        tier = list(plan.categories.values_list("pk", flat=True))
        if tier:
            covered = covered.filter(categories__in=tier).distinct()
        items = list(covered.order_by("id").values_list("id", "price"))
    elif item is not None:
        items = [(item.pk, 1)]
    else:
        items = list(bundle.items.order_by("id").values_list("id", "price"))
    ids = [item_id for item_id, _price in items]
    creators: dict[int, list[list[int]]] = {}
    for item_id, credits in ItemVersion.objects.filter(item_id__in=ids, number=F("item__version")).values_list(
            "item_id", "snapshot__creators"):
        creators[item_id] = [[credit["creator"], credit["share_bp"]] for credit in credits or []]
    for item_id, creator_id, share_bp in ItemCreator.objects.filter(
            item_id__in=[item_id for item_id in ids if item_id not in creators]).order_by(
            "position", "id").values_list("item_id", "creator_id", "share_bp"):
        creators.setdefault(item_id, []).append([creator_id, share_bp])
    if plan is not None:
        alike: dict[tuple, int] = {}  # creators and shares -> the weight of the items credited so
        for item_id, price in items:
            key = tuple(map(tuple, creators.get(item_id, [])))
            alike[key] = alike.get(key, 0) + price
        return [[None, weight, [list(credit) for credit in key]] for key, weight in alike.items()]
    return [[item_id, max(price, 1), creators.get(item_id, [])] for item_id, price in items]


def sale_parts(order: Order, lines: list[OrderLine] | None = None) -> dict[splits.Share, int]:
    """How the order's total is shared: tax, then the lines' amount without tax, in one split by the order's split
    rule and each line's creators' shares as sold. ``lines`` are the order's lines when the caller has read them
    already (with their bundles)."""
    from .promoters import promoter_earns

    rule = order.split_rule
    parts: dict[splits.Share, int] = defaultdict(int)
    if order.tax:
        parts[splits.TAX] = order.tax
    # A commission is earned when the payment arrives: by a promoter still approved whose account is still there, in
    # a promoter programme still running, and by a partner still switched on.
    commissions = []
    if order.partner_id and rule.partner_commission_bp and order.partner.is_enabled:
        commissions.append((splits.Share("partner", order.partner_id), rule.partner_commission_bp))
    programme = order.promoter_id is not None and payment_settings(tenant=order.tenant).promoters_enabled
    for promoter, bp in ((order.promoter, rule.promoter_commission_bp),
                         (order.promoter_second_level, rule.promoter_second_level_bp)):
        if programme and promoter is not None and bp and promoter_earns(promoter):
            commissions.append((splits.Share("promoter", promoter.pk), bp))
    pieces: list[tuple[int, list[tuple[int, int]]]] = []  # (amount without tax, its creators' shares)
    for line in order.lines.select_related("bundle") if lines is None else lines:
        if line.plan_id and line.shares is None:  # a plan the storefront keeps: no creator part
            shares = []
        else:  # orders placed before lines kept their shares take the current ones
            shares = line.shares if line.shares is not None else line_shares(item=line.item, bundle=line.bundle)
        pieces += _line_pieces(line.total - line.tax, shares)
    # One split over the whole order: the fee and commissions are their agreed share of the sale, not a sum of
    # per-item roundings.
    for share, part in splits.split_pieces(pieces, platform_fee_bp=rule.platform_fee_bp,
                                           commissions=commissions).items():
        parts[share] += part
    return dict(parts)


def _line_pieces(net: int, shares: list | None) -> list[tuple[int, list[tuple[int, int]]]]:
    """A line's amount without tax divided between its pieces by their weights: ``[(amount, its creators' shares)]``.
    No shares (a plan the storefront keeps, a bundle emptied before they were stored) is one piece, no creators."""
    from marketplace.money import split_largest_remainder

    shares = shares or [[None, 1, []]]
    amounts = split_largest_remainder(net, [weight for _item, weight, _creators in shares])
    return [(amount, [tuple(credit) for credit in creators])
            for (_item, _weight, creators), amount in zip(shares, amounts, strict=True)]


def plan_payment_parts(*, plan) -> dict[splits.Share, int]:
    """How a payment of the plan at its price would be shared if it were paid now, brought by no partner or promoter:
    what the team sees on the plan's page before sharing it with creators (or not)."""
    q = quote(tenant=plan.tenant, price=plan.price)
    parts = splits.split_pieces(_line_pieces(q.total - q.tax, line_shares(plan=plan)),
                                platform_fee_bp=split_rule_current(tenant=plan.tenant).platform_fee_bp)
    return {splits.TAX: q.tax, **parts} if q.tax else parts


def _shares_still_held(order: Order) -> dict[splits.Share, int]:
    """What each share of the order's sale still holds: what the sale's postings gave it, less what refunds took
    back. Read from the ledger, so later changes to creators' shares or split rules never alter a refund."""
    held: dict[splits.Share, int] = defaultdict(int)
    rows = (Posting.objects.filter(entry__order=order, entry__kind__in=[
        JournalEntry.Kind.SALE, JournalEntry.Kind.REFUND, JournalEntry.Kind.REVERSAL])
            .exclude(account__kind=LedgerAccount.Kind.CLEARING).values_list("account__code", "amount"))
    for code, amount in rows:
        held[_share_of(code)] -= amount
    return {share: value for share, value in held.items() if value > 0}


def _share_of(code: str) -> splits.Share:
    """The share a sale's account code is for: ``creator:7:held`` and ``creator:7:payable`` are both creator 7's."""
    kind, _, party = code.removesuffix(":held").removesuffix(":payable").partition(":")
    return splits.Share(kind, int(party) if party else None)


def payment_succeed(*, payment: Payment, amount: int | None = None, currency: str = "", charge_ref: str = "",
                    actor=None) -> Payment:
    """Capture: the order is paid, access is granted, the coupon is used, the sale is booked. Safe to repeat."""
    with transaction.atomic():
        # Locks the payment and its order (not the tenant, learner or split rule read with them).
        payment = (Payment.objects.select_for_update(of=("self", "order"))
                   .select_related("order__tenant", "order__user", "order__split_rule").get(pk=payment.pk))
        if not payment.can_become(Payment.Status.SUCCEEDED):
            return payment
        if (amount is not None and amount != payment.amount) or (currency and currency.upper() != payment.currency):
            raise ApplicationError(_("The provider captured a different amount."), code="amount_mismatch",
                                   extra={"expected": payment.amount, "captured": amount,
                                          "expected_currency": payment.currency, "captured_currency": currency})
        order = payment.order
        now = timezone.now()
        payment.status = Payment.Status.SUCCEEDED
        payment.provider_charge_ref = charge_ref or payment.provider_charge_ref
        payment.save(update_fields=["status", "provider_charge_ref", "updated_at"])
        order.status, order.paid_at = Order.Status.PAID, now
        order.save(update_fields=["status", "paid_at"])
        if order.coupon_id:
            Coupon.objects.filter(pk=order.coupon_id).update(used_count=F("used_count") + 1)
        bought = []
        lines = list(order.lines.select_related("plan", "subscription", "item", "bundle"))
        paid_twice = _owned_already(order, lines)
        for line in lines:
            if line.plan_id:
                from .subscriptions import subscription_paid

                subscription_paid(order=order, line=line, actor=actor)
            else:
                entitlement_grant(tenant=order.tenant, user=order.user, actor=actor, item=line.item,
                                  bundle=line.bundle, source=Entitlement.Source.PURCHASE, reference=order.number,
                                  order=order)
                bought += [line.item] if line.item_id else list(line.bundle.items.all())
        purchases_record(user=order.user, items=bought, order=order)
        audit_log_write(tenant=order.tenant, actor=actor, action="payments.payment_succeeded", target=order,
                        data={"amount": payment.amount, "provider": payment.provider})
        # Last: the entry locks the storefront's ledger head, which every other sale waits for until this commits.
        postings = _postings(order, payment.provider, order.total, sale_parts(order, lines), sign=-1, held=True)
        ledger.entry_post(tenant=order.tenant, kind=JournalEntry.Kind.SALE, postings=postings, order=order,
                          memo=f"Sale {order.number}")
        from .tasks import checkouts_owned_close, paid_twice_refund, receipt_send

        receipt_send.delay_on_commit(tenant_id=order.tenant_id, order_id=order.pk)
        if paid_twice:
            # Booked like any sale, then given back whole: the money arrived and must leave through the books.
            audit_log_write(tenant=order.tenant, actor=actor, action="payments.paid_twice", target=order,
                            data={"amount": payment.amount, "provider": payment.provider})
            paid_twice_refund.delay_on_commit(tenant_id=order.tenant_id, payment_id=payment.pk)
        else:
            checkouts_owned_close.delay_on_commit(tenant_id=order.tenant_id, user_id=order.user_id)
    return payment


def _owned_already(order: Order, lines: list[OrderLine]) -> bool:
    """Whether the learner already held, for good, everything this item or bundle order buys: its checkout stayed
    open at the provider while another purchase (the bundle holding the item, say) gave them all of it. Access a
    subscription gives does not count: it ends, and an item bought stays."""
    from catalog.models import ContentItem

    from .selectors import entitled_item_ids

    if any(line.plan_id for line in lines):
        return False
    wanted = {line.item_id for line in lines if line.item_id}
    bundles = [line.bundle_id for line in lines if line.bundle_id]
    if bundles:
        wanted |= set(ContentItem.objects.filter(bundles__in=bundles).values_list("pk", flat=True))
    if not wanted:
        return False
    owned = entitled_item_ids(user=order.user, item_ids=wanted, subscriptions=False)
    return owned is None or owned >= wanted


def paid_twice_refund(*, payment: Payment) -> Refund | None:
    """Give back, in full, a payment for what the learner already owned (``_owned_already``). Nothing is refunded
    when anything of it was refunded meanwhile (the team saw it first): what is left is the team's to decide."""
    payment = Payment.objects.get(pk=payment.pk)
    if payment.status != Payment.Status.SUCCEEDED or payment.refunded_amount:
        return None
    try:
        return refund_create(payment=payment, amount=payment.refundable, actor=None, reason=Refund.PAID_TWICE,
                             refunded_before=0)
    except ApplicationError as exc:
        if exc.code == "refund_stale":
            return None
        raise


def checkouts_owned_close(*, user) -> int:
    """Close the learner's open checkouts for what they can no longer buy (``purchase_check``), after a purchase:
    the item's checkout left open at the provider, once its bundle is bought, would otherwise take the money a
    second time. A provider that cannot close one now leaves it to the expiry sweep (and a payment that still
    arrives is given back by ``paid_twice_refund``). Returns how many were closed."""
    closed = 0
    orders = (Order.objects.filter(user=user, status=Order.Status.PENDING, lines__subscription__isnull=True)
              .prefetch_related("lines__item", "lines__bundle", "lines__plan").distinct())
    for order in orders:
        line = order.lines.all()[0]
        try:
            purchase_check(user=user, item=line.item, bundle=line.bundle, plan=line.plan)
        except ApplicationError:
            for payment in order.payments.filter(status=Payment.Status.PENDING):
                try:
                    closed += payment_expire(payment=payment, reason=Payment.UNBUYABLE)
                except ApplicationError as exc:
                    logger.warning("checkout %s not closed: %s", payment.pk, exc.message)
    return closed


def payment_close(*, payment: Payment, status: str, reason: str = "", actor=None) -> Payment:
    """A payment that failed or was cancelled; the order follows it. Safe to repeat; never undoes a success."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if not payment.can_become(status):
            return payment
        payment.status, payment.failure_reason = status, reason[:200]
        payment.save(update_fields=["status", "failure_reason", "updated_at"])
        order_status = Order.Status.FAILED if status == Payment.Status.FAILED else Order.Status.CANCELLED
        Order.objects.filter(pk=payment.order_id, status=Order.Status.PENDING).update(status=order_status)
        audit_log_write(tenant=payment.tenant, actor=actor, action=f"payments.payment_{status}", target=payment)
    return payment


def payment_expire(*, payment: Payment, reason: str = Payment.EXPIRED, actor=None) -> bool:
    """Close a pending payment's checkout: the provider closes its side first, then the payment is cancelled, and
    its order with it. False while the provider is taking the payment (its webhook will tell); safe to repeat."""
    if payment.status != Payment.Status.PENDING:
        return payment.status == Payment.Status.CANCELLED
    if not provider(payment.provider).expire(payment=payment):
        return False
    return payment_close(payment=payment, status=Payment.Status.CANCELLED, reason=reason,
                         actor=actor).status == Payment.Status.CANCELLED


def checkouts_expire(*, tenant, now: datetime | None = None) -> int:
    """Expire the storefront's checkouts left unpaid past ``CHECKOUT_EXPIRES_MINUTES`` (Celery beat runs this).
    A provider that cannot be reached now is asked again on the next run. Returns how many were closed."""
    from django.conf import settings

    cutoff = (now or timezone.now()) - timedelta(minutes=settings.CHECKOUT_EXPIRES_MINUTES)
    closed = 0
    for payment in list(Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=cutoff).order_by("pk")):
        try:
            closed += payment_expire(payment=payment)
        except ApplicationError as exc:
            logger.warning("checkout %s not expired: %s", payment.pk, exc.message)
    return closed


# --- refunds --------------------------------------------------------------------------------------------------------

def refund_check(*, payment: Payment, amount: int, refunded_before: int | None = None) -> None:
    """Whether ``amount`` can be refunded from ``payment`` as read: an ApplicationError saying why not.
    ``refund_create`` asks with the payment locked; the admin asks first, before the person refunding confirms."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ApplicationError(_("A refund is a positive whole number of minor units."), code="refund_amount_invalid",
                               extra={"field": "amount"})
    if payment.status != Payment.Status.SUCCEEDED:
        raise ApplicationError(_("Only a captured payment can be refunded."), code="not_refundable")
    if refunded_before is not None and payment.refunded_amount != refunded_before:
        raise ApplicationError(_("This payment was refunded meanwhile; check what is left and submit again."),
                               code="refund_stale", status=409)
    if amount > payment.refundable:
        raise ApplicationError(_("That is more than is left to refund."), code="refund_exceeds_captured",
                               extra={"refundable": payment.refundable, "field": "amount"})
    if amount % charge_step(payment.currency):
        raise ApplicationError(
            _("%(currency)s is refunded in steps of %(step)s.")
            % {"currency": payment.currency, "step": format_money(charge_step(payment.currency), payment.currency)},
            code="refund_amount_invalid", extra={"field": "amount"})


def refund_create(*, payment: Payment, amount: int, actor, reason: str = "",
                  refunded_before: int | None = None, paid_outside: bool = False) -> Refund:
    """Return ``amount`` of a captured payment, in part or in full, never beyond what it captured.

    The payment row is locked first, so concurrent refunds queue and each sees what the others returned.
    Shares are clawed back in proportion to the sale; a full refund also ends the access it bought.
    ``refunded_before`` is what the person refunding saw refunded: if it changed meanwhile (the same form sent
    twice, or a colleague's refund), nothing is refunded and they are asked to look again. ``paid_outside``: the
    team paid the money back itself (by bank transfer, say, after the provider could not), so the provider is not
    asked; it is booked like any refund.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund_check(payment=payment, amount=amount, refunded_before=refunded_before)
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        refund = Refund.objects.create(tenant=payment.tenant, payment=payment, amount=amount, reason=reason[:200],
                                       created_by=actor if getattr(actor, "is_authenticated", False) else None,
                                       paid_outside=paid_outside)
        if not paid_outside:
            # A key that a retry of this same refund reproduces (the payment's state before it, and the amount): if
            # the provider refunded but its answer was lost, the retry gets that refund back, not a second one. Its
            # refunds that failed are counted, since they change the state without being refunded.
            failed = payment.refunds.filter(failed_at__isnull=False).count()
            key = f"refund-{payment.provider_ref}-{payment.refunded_amount}-{failed}-{amount}"
            refund.provider_ref = provider(payment.provider).refund(payment=payment, amount=amount,
                                                                    idempotency_key=key)
            refund.save(update_fields=["provider_ref"])
        _refund_book(refund, payment=payment, order=order, actor=actor)
    return refund


def refund_record(*, payment: Payment, amount: int, provider_ref: str, reason: str) -> Refund | None:
    """Book money the provider returned without us asking: a refund made in its dashboard, or a chargeback lost.

    The payment row is locked first, so a refund of ours whose event arrives while it commits is seen and not booked
    twice (its ``provider_ref`` is the provider's id). What exceeds the refundable rest is not booked (the provider
    never returns more than it captured; our own refunds were booked first) and is logged. Returns the refund, or
    None when there was nothing to book.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if Refund.objects.filter(payment=payment, provider_ref=provider_ref).exists():
            return None
        if payment.status != Payment.Status.SUCCEEDED or payment.refundable <= 0:
            logger.error("%s returned %s on payment %s, which has nothing left to refund", payment.provider, amount,
                         payment.pk)
            return None
        if amount > payment.refundable:
            logger.error("%s returned %s on payment %s but only %s was left to refund; booked that", payment.provider,
                         amount, payment.pk, payment.refundable)
            amount = payment.refundable
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        refund = Refund.objects.create(tenant=payment.tenant, payment=payment, amount=amount, reason=reason[:200],
                                       provider_ref=provider_ref)
        _refund_book(refund, payment=payment, order=order, actor=None)
    return refund


def refund_fail(*, payment: Payment, provider_ref: str, amount: int | None, reason: str) -> Refund | None:
    """The provider could not pay a refund out (the card was closed, say) and put the money back in the account.

    The refund is undone: the amounts go back, a reversal entry returns the clawed-back shares (to the payable
    accounts once the order's shares are released), and access a full refund ended opens again (a subscription's
    for the rest of its period), since the learner keeps the money's worth until they are paid back. The team is
    told in the audit log, and refunds again, at the provider or outside it (``refund_create(paid_outside=True)``).
    A failure reported before the refund itself is kept, so the report of the refund that follows books nothing.
    Returns the refund, or None when nothing changed.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund = Refund.objects.filter(payment=payment, provider_ref=provider_ref).first()
        if refund is not None and refund.failed_at is not None:
            return None
        now = timezone.now()
        if refund is None:
            if not amount or amount <= 0:
                return None
            # Never booked, so nothing to undo: the row only marks the provider's refund as one that failed.
            return Refund.objects.create(tenant=payment.tenant, payment=payment, amount=amount,
                                         provider_ref=provider_ref, reason=_("Failed at the payment provider"),
                                         failed_at=now, failure_reason=reason[:100])
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        refund.failed_at, refund.failure_reason = now, reason[:100]
        refund.save(update_fields=["failed_at", "failure_reason"])
        was_refunded = order.status == Order.Status.REFUNDED
        _refunded_add(-refund.amount, payment=payment, order=order)
        taken: dict[splits.Share, int] = defaultdict(int)
        for code, value in (Posting.objects.filter(entry__refund=refund, entry__kind=JournalEntry.Kind.REFUND)
                            .exclude(account__kind=LedgerAccount.Kind.CLEARING).values_list("account__code", "amount")):
            taken[_share_of(code)] += value
        postings = _postings(order, payment.provider, refund.amount, dict(taken), sign=-1,
                             held=order.shares_released_at is None)
        ledger.entry_post(tenant=order.tenant, kind=JournalEntry.Kind.REVERSAL, postings=postings, order=order,
                          refund=refund, memo=f"Refund failed {order.number}")
        if was_refunded:
            # What the refund closed (revoked in its transaction, after the refund row was written) opens again.
            for entitlement in order.entitlements.filter(revoked_at__gte=refund.created_at).exclude(
                    source=Entitlement.Source.SUBSCRIPTION):
                Entitlement.objects.filter(pk=entitlement.pk).update(revoked_at=None)
                audit_log_write(tenant=order.tenant, actor=None, action="payments.entitlement_restored",
                                target=entitlement, data={"refund": refund.pk})
            from .subscriptions import subscription_restore_for_failed_refund

            subscription_restore_for_failed_refund(order=order, since=refund.created_at)
        logger.warning("%s could not pay out refund %s of payment %s (%s)", payment.provider, provider_ref,
                       payment.pk, reason)
        audit_log_write(tenant=order.tenant, actor=None, action="payments.refund_failed", target=order,
                        data={"provider_ref": provider_ref, "amount": refund.amount, "reason": reason,
                              "undone": True})
    return refund


def _refunded_add(amount: int, *, payment: Payment, order: Order) -> None:
    """Count ``amount`` more refunded (less, when negative: a refund undone) on the locked payment and order, whose
    status follows: paid, partially refunded, or refunded once all of it is."""
    payment.refunded_amount += amount
    payment.save(update_fields=["refunded_amount", "updated_at"])
    order.refunded += amount
    order.status = (Order.Status.PAID if order.refunded == 0 else
                    Order.Status.REFUNDED if order.refunded == order.total else Order.Status.PARTIALLY_REFUNDED)
    order.save(update_fields=["refunded", "status"])


def _refund_book(refund: Refund, *, payment: Payment, order: Order, actor) -> None:
    """What a refund changes, in the caller's transaction with payment and order locked: the amounts, the clawback
    of shares in proportion to the sale, the ledger entry, and, once all is refunded, the access it bought."""
    amount = refund.amount
    _refunded_add(amount, payment=payment, order=order)
    back = splits.clawback_remaining(amount, _shares_still_held(order))
    # After the refund window, claw back from what is payable.
    postings = _postings(order, payment.provider, -amount, back, sign=1, held=order.shares_released_at is None)
    ledger.entry_post(tenant=order.tenant, kind=JournalEntry.Kind.REFUND, postings=postings, order=order,
                      refund=refund, memo=f"Refund {order.number}")
    if order.status == Order.Status.REFUNDED:
        # A subscription's access is its own: it ends when the refunded order paid for the current period.
        for entitlement in order.entitlements.filter(revoked_at__isnull=True).exclude(
                source=Entitlement.Source.SUBSCRIPTION):
            entitlement_revoke(entitlement=entitlement, actor=actor)
        from .subscriptions import subscription_end_for_refund

        subscription_end_for_refund(order=order, actor=actor)
    audit_log_write(tenant=order.tenant, actor=actor, action="payments.refund_created", target=order,
                    data={"amount": amount, "reason": refund.reason, "provider_ref": refund.provider_ref,
                          "paid_outside": refund.paid_outside})
    from .tasks import refund_notice_send

    refund_notice_send.delay_on_commit(tenant_id=order.tenant_id, refund_id=refund.pk)


# --- webhooks -------------------------------------------------------------------------------------------------------

def webhook_parse(*, provider_name: str, headers, body: bytes) -> ProviderEvent:
    """A provider's webhook, verified: a bad signature, secret or timestamp raises (400) and nothing is read."""
    try:
        return provider(provider_name).parse_event(headers=headers, body=body)
    except KeyError as exc:
        raise ApplicationError("Unknown payment provider.", code="provider_unknown", status=404) from exc
    except SignatureError as exc:
        raise ApplicationError("The webhook signature does not verify.", code="signature_invalid") from exc


def webhook_storefront(*, provider_name: str, event: ProviderEvent) -> str:
    """The slug of the storefront a verified event is for, or "" when it is for none of ours. A checkout's event
    names it; a refund's or a dispute's names only the charge, which one storefront's payment holds."""
    if event.tenant or not event.charge_ref:
        return event.tenant
    from marketplace.tenancy import platform_scope

    with platform_scope():  # a provider's charge ids are unique across the account, so across storefronts
        return Payment.objects.filter(provider=provider_name, provider_charge_ref=event.charge_ref).values_list(
            "tenant__slug", flat=True).first() or ""


def webhook_capture(*, provider_name: str, event: ProviderEvent) -> ProviderEvent:
    """An event about a charge that none of our payments has recorded yet (a refund made in the provider's dashboard
    or a chargeback, delivered before the event of the payment itself, which may still be failing and being retried):
    the provider says which payment it captured, so the event is applied now instead of being dropped."""
    if not event.charge_ref or event.payment_ref or event.tenant or event.type == "ignored":
        return event
    from marketplace.tenancy import platform_scope

    with platform_scope():
        if Payment.objects.filter(provider=provider_name, provider_charge_ref=event.charge_ref).exists():
            return event
    capture = provider(provider_name).capture_lookup(charge_ref=event.charge_ref)
    return replace(event, tenant=capture.tenant, capture=capture) if capture else event


def webhook_receive(*, tenant, provider_name: str, headers, body: bytes) -> str:
    """Verify a provider's webhook and apply it once (``webhook_apply``) to the storefront it is for.

    ``tenant`` None: the platform host, the one endpoint of a provider account serving every storefront (Stripe's),
    which opens the scope of the storefront the event is for ("ignored" when none of ours). A storefront's host takes
    that storefront's events only and refuses another's: the provider's endpoint belongs on the platform host.
    """
    from marketplace.tenancy import event_scope

    event = webhook_capture(provider_name=provider_name,
                            event=webhook_parse(provider_name=provider_name, headers=headers, body=body))
    slug = webhook_storefront(provider_name=provider_name, event=event)
    if tenant is None:
        with event_scope(slug) as found:
            return "ignored" if found is None else webhook_apply(tenant=found, provider_name=provider_name,
                                                                 event=event)
    if slug and slug != tenant.slug:
        raise ApplicationError("This event is for another storefront; send the provider's webhooks to the platform "
                               "host.", code="event_for_another_storefront")
    return webhook_apply(tenant=tenant, provider_name=provider_name, event=event)


def webhook_apply(*, tenant, provider_name: str, event: ProviderEvent) -> str:
    """Apply a verified event to the storefront's payment once. Returns "applied", "duplicate" or "ignored".

    The event row is written in the same transaction as its effect, so an event id is applied exactly once however
    often and in whatever order the provider delivers it.
    """
    payments = Payment.objects.filter(provider=provider_name)
    if event.payment_ref:
        payment = payments.filter(provider_ref=event.payment_ref).first()
    else:
        payment = payments.filter(provider_charge_ref=event.charge_ref).first() if event.charge_ref else None
    if payment is None and event.capture is not None:
        payment = payments.filter(pk=event.capture.payment_id, order__number=event.capture.order_number).first()
    if payment is None:
        return "ignored"  # not about a payment of this storefront's: nothing of it is kept
    seen = WebhookEvent.objects.filter(provider=provider_name, event_id=event.id)
    if seen.exists():
        return "duplicate"
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(tenant=tenant, provider=provider_name, event_id=event.id, type=event.type,
                                        payload=event.payload)
            if event.capture is not None:
                # The provider captured it: book the sale first, as its own event would (which then changes nothing).
                payment = payment_succeed(payment=payment, amount=event.capture.amount,
                                          currency=event.capture.currency, charge_ref=event.charge_ref)
            if event.type == "payment.succeeded":
                payment_succeed(payment=payment, amount=event.amount, currency=event.currency,
                                charge_ref=event.charge_ref)
            elif event.type in ("payment.failed", "payment.cancelled"):
                status = Payment.Status.FAILED if event.type == "payment.failed" else Payment.Status.CANCELLED
                payment_close(payment=payment, status=status, reason=event.type)
            elif event.type in ("refund.succeeded", "dispute.lost") and event.amount and event.refund_ref:
                refund_record(payment=payment, amount=event.amount, provider_ref=event.refund_ref,
                              reason=_provider_refund_reason(event))
            elif event.type == "refund.failed" and event.refund_ref:
                refund_fail(payment=payment, provider_ref=event.refund_ref, amount=event.amount, reason=event.reason)
            elif event.type == "dispute.opened":
                _provider_alert(payment, event)
            else:
                return "ignored"
    except IntegrityError:
        if seen.exists():  # the same event, applied meanwhile by a concurrent delivery
            return "duplicate"
        raise
    return "applied"


def _provider_refund_reason(event: ProviderEvent) -> str:
    if event.type == "dispute.lost":
        return _("Chargeback lost at the payment provider (%(reason)s)") % {"reason": event.reason or "-"}
    return _("Refunded at the payment provider (%(reason)s)") % {"reason": event.reason or "-"}


def _provider_alert(payment: Payment, event: ProviderEvent) -> None:
    """A chargeback opened: nothing is booked (no money moved for good yet), and the team finds it in the audit log
    beside the order."""
    logger.warning("%s %s on payment %s (%s)", payment.provider, event.type, payment.pk, event.refund_ref)
    audit_log_write(tenant=payment.tenant, actor=None, action="payments.dispute_opened", target=payment.order,
                    data={"provider_ref": event.refund_ref, "amount": event.amount, "reason": event.reason})


def sandbox_settle(*, tenant, payment: Payment, outcome: str) -> str:
    """Press a button on the sandbox's hosted page: the sandbox signs the event and it goes through
    ``webhook_receive``, exactly as a real provider's webhook would. ``outcome`` is succeeded, failed or cancelled."""
    from .providers.sandbox import HEADER, SandboxProvider

    sandbox = SandboxProvider()
    body = sandbox.event_body(payment=payment, outcome=outcome)
    return webhook_receive(tenant=tenant, provider_name=sandbox.name, headers={HEADER: sandbox.signature(body)},
                           body=body)
