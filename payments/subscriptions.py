"""Subscription life cycle: start on the first payment, renew period by period, switch plans or cancel at period
end, end after an unpaid grace period.

A subscription's access is one whole-catalog entitlement whose end moves with the paid period (and with the grace
period while a renewal is due). Renewals are ordinary orders paid through the same checkout and webhook path; the
learner is emailed the link. ``subscriptions_sweep`` (run by Celery beat) opens due renewals and ends what is over.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write

from .models import Entitlement, Order, Payment, Subscription, SubscriptionPlan

logger = logging.getLogger(__name__)

# The least time a learner gets to pay a renewal, whatever the plan's grace period says: the renewal email has to
# reach them, and they may need a second try after a declined card. "No grace days" means no free days beyond that.
MINIMUM_GRACE = timedelta(days=1)


def renewal_grace_until(*, plan: SubscriptionPlan, opened_at: datetime) -> datetime:
    """Until when access continues while a renewal opened at ``opened_at`` is unpaid: the plan's grace days from
    then, but never less than ``MINIMUM_GRACE`` nor less than the renewal's checkout stays open, so the learner
    emailed about the renewal can always pay it before the subscription ends. A plan with ``grace_days=0`` gets the
    one day: ending access the moment the renewal opens would leave its checkout and email worthless."""
    checkout = timedelta(minutes=settings.CHECKOUT_EXPIRES_MINUTES)
    return opened_at + max(timedelta(days=plan.grace_days), MINIMUM_GRACE, checkout)


def add_interval(moment: datetime, interval: str, *, day: int | None = None) -> datetime:
    """One billing period later: the same day (or ``day``) next month or year, clamped to the month's last day, so a
    subscription started on the 31st renews on the 28th of February and on the 31st of March again."""
    months = 12 if interval == SubscriptionPlan.Interval.YEAR else 1
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(day or moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _renewal_attribution(sub: Subscription, *, conf) -> dict:
    """Who a renewal's commission goes to: with ``renewal_commissions`` on, the promoter (and their recruiter) or
    partner who brought the subscription's first order, its evidence kept with a note of that order; else nobody.
    Whether they still earn is decided when the renewal is paid, as for any sale (``sale_parts``)."""
    from distribution.selectors import ChannelAttribution

    from .promoters import Attribution

    first = sub.entitlement.order if conf.renewal_commissions and sub.entitlement_id else None
    if first is None or not (first.promoter_id or first.partner_id):
        return {}
    if first.partner_id:
        evidence = {**first.attribution.get("partner", {}), "renewal_of": first.number}
        return {"partner": ChannelAttribution(channel=first.partner, evidence=evidence, at=first.created_at)}
    evidence = {key: value for key, value in first.attribution.items() if key not in ("channel", "partner")}
    return {"attribution": Attribution(promoter=first.promoter, second_level=first.promoter_second_level,
                                       evidence={**evidence, "renewal_of": first.number}, at=first.created_at)}


def subscription_paid(*, order: Order, line, actor=None) -> Subscription | None:
    """A plan's order was paid: start the subscription, or extend it by a period when this was its renewal.

    None when the learner holds another live subscription, which a learner can have only one of: checkouts are
    arranged so that this does not happen (``order_open`` closes a learner's other plan and renewal checkouts
    before opening one), but should it, the sale stays booked, no access is given and the team is told to refund
    it, rather than the provider's event failing on every delivery."""
    from .services import entitlement_grant

    now = timezone.now()
    sub = Subscription.objects.select_for_update().get(pk=line.subscription_id) if line.subscription_id else None
    if sub is None or sub.status == Subscription.Status.ENDED:
        held = Subscription.objects.filter(user=order.user).exclude(status=Subscription.Status.ENDED).first()
        if held is not None:
            logger.error("order %s paid for a subscription while the learner holds subscription %s; refund it",
                         order.number, held.pk)
            audit_log_write(tenant=order.tenant, actor=actor, action="payments.subscription_payment_unapplied",
                            target=order, data={"held": held.pk, "renewal_of": line.subscription_id})
            return None
    if sub is not None:
        if sub.status == Subscription.Status.ENDED:
            # Paid after the grace ran out (the learner was still at the provider): a new cycle from today.
            start = max(sub.current_period_end, now)
            sub.billing_day = start.day
        else:
            start = sub.current_period_end
        # A renewal opens what its plan opens (the plan the learner switched to, say), as a new subscription would.
        tier = line.plan if line.plan.categories.exists() else None
        sub.current_period_start = start
        sub.current_period_end = add_interval(start, sub.interval, day=sub.billing_day)
        sub.status, sub.grace_until, sub.renewal_order, sub.ended_at = Subscription.Status.ACTIVE, None, None, None
        sub.save(update_fields=["current_period_start", "current_period_end", "billing_day", "status", "grace_until",
                                "renewal_order", "ended_at"])
        Entitlement.objects.filter(pk=sub.entitlement_id).update(ends_at=sub.current_period_end, revoked_at=None,
                                                                 whole_catalog=tier is None, plan=tier)
        audit_log_write(tenant=order.tenant, actor=actor, action="payments.subscription_renewed", target=sub,
                        data={"until": sub.current_period_end.isoformat(), "order": order.number})
        return sub
    interval = line.interval or line.plan.interval  # lines sold before they kept it: the plan's
    end = add_interval(now, interval)
    tier = line.plan if line.plan.categories.exists() else None
    entitlement = entitlement_grant(tenant=order.tenant, user=order.user, actor=actor, whole_catalog=tier is None,
                                    plan=tier, source=Entitlement.Source.SUBSCRIPTION, reference=order.number,
                                    order=order, starts_at=now, ends_at=end)
    sub = Subscription.objects.create(tenant=order.tenant, user=order.user, plan=line.plan, price=line.unit_price,
                                      currency=order.currency, interval=interval, billing_day=now.day,
                                      current_period_start=now,
                                      current_period_end=end, entitlement=entitlement)
    audit_log_write(tenant=order.tenant, actor=actor, action="payments.subscription_started", target=sub,
                    data={"plan": line.plan.slug, "until": end.isoformat()})
    return sub


def _renewal_set(*, subscription: Subscription, cancel: bool, actor) -> Subscription:
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status == Subscription.Status.ENDED:
            raise ApplicationError(_("This subscription has already ended."), code="subscription_ended")
        if cancel and sub.status == Subscription.Status.PAST_DUE:
            # Its paid period is over and its renewal is open: stopping renewals ends it now, closing that renewal
            # (the grace period is there to pay it, and it will not be paid).
            _end(sub, at=timezone.now(), actor=actor, reason="cancelled")
            return sub
        if sub.cancel_at_period_end != cancel:
            # One that will not renew switches to no other plan (and one cancelled had none to switch to).
            sub.cancel_at_period_end, sub.switch_to = cancel, None
            sub.save(update_fields=["cancel_at_period_end", "switch_to"])
            action = "cancelled" if cancel else "resumed"
            audit_log_write(tenant=sub.tenant, actor=actor, action=f"payments.subscription_{action}", target=sub)
    return sub


def subscription_cancel(*, subscription: Subscription, actor) -> Subscription:
    """Stop renewing: access runs to the end of the paid period (a subscription whose renewal is already due ends
    now, its renewal closed). Safe to repeat."""
    return _renewal_set(subscription=subscription, cancel=True, actor=actor)


def subscription_resume(*, subscription: Subscription, actor) -> Subscription:
    """Renew again after a cancellation, while the paid period lasts. Safe to repeat."""
    return _renewal_set(subscription=subscription, cancel=False, actor=actor)


def subscription_switch(*, subscription: Subscription, plan: SubscriptionPlan | None, actor) -> Subscription:
    """Renew on ``plan`` from the end of the paid period, as Stripe's and Teachable's scheduled plan changes do: the
    period paid for keeps its plan; the next renewal charges ``plan``'s price (in the storefront's currency now) for
    ``plan``'s period, and opens what ``plan`` opens once it is paid. None, or the subscription's own plan, keeps the
    current plan. Choosing a plan undoes a cancellation: the learner means to go on. Safe to repeat.

    Not while a renewal is due: that renewal is already an order for the current plan, to pay or to let lapse."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if sub.status == Subscription.Status.ENDED:
            raise ApplicationError(_("This subscription has already ended."), code="subscription_ended")
        if sub.status == Subscription.Status.PAST_DUE:
            raise ApplicationError(_("Your renewal is due: renew first, then choose the plan of the next period."),
                                   code="renewal_due")
        if plan is not None and plan.pk == sub.plan_id:
            plan = None
        if plan is not None and (not plan.is_active or plan.price == 0 or plan.tenant_id != sub.tenant_id):
            raise ApplicationError(_("This plan is not on sale."), code="not_on_sale")
        if sub.switch_to_id == (plan.pk if plan else None) and not (plan and sub.cancel_at_period_end):
            return sub
        sub.switch_to = plan
        sub.cancel_at_period_end = sub.cancel_at_period_end and plan is None
        sub.save(update_fields=["switch_to", "cancel_at_period_end"])
        audit_log_write(tenant=sub.tenant, actor=actor, action="payments.subscription_switch_chosen", target=sub,
                        data={"plan": plan.slug if plan else None})
    return sub


def _switch(sub: Subscription, *, currency: str) -> None:
    """The period is over: the subscription goes on on the plan the learner chose (``subscription_switch``)."""
    old, new = sub.plan, sub.switch_to
    sub.plan, sub.price, sub.interval, sub.currency, sub.switch_to = new, new.price, new.interval, currency, None
    sub.save(update_fields=["plan", "price", "interval", "currency", "switch_to"])
    audit_log_write(tenant=sub.tenant, actor=None, action="payments.subscription_switched", target=sub,
                    data={"from": old.slug, "to": new.slug, "price": new.price, "currency": currency})


def renewal_pay(*, subscription: Subscription, user, request=None):
    """Where the learner pays a due renewal, at any time in the grace period: its open checkout, or a new payment
    attempt on the renewal order when the last one failed, was cancelled or expired."""
    from .services import payment_retry

    sub = Subscription.objects.select_related("renewal_order").get(pk=subscription.pk)
    if sub.status != Subscription.Status.PAST_DUE or sub.renewal_order is None:
        raise ApplicationError(_("No renewal is due."), code="renewal_not_due")
    return payment_retry(order=sub.renewal_order, user=user, request=request)


def _end(sub: Subscription, *, at: datetime, actor=None, reason: str) -> None:
    from .services import payment_expire

    sub.status, sub.ended_at = Subscription.Status.ENDED, at
    renewal = sub.renewal_order
    sub.renewal_order = None
    sub.save(update_fields=["status", "ended_at", "renewal_order"])
    Entitlement.objects.filter(pk=sub.entitlement_id, ends_at__gt=at).update(ends_at=at)
    if renewal is not None:
        # Closed at the provider first, like any checkout. One the provider is taking, or cannot be asked about
        # now, stays pending: its webhook renews the subscription, or the checkout sweep closes it later. One
        # whose success is being applied right now is locked by that webhook, which waits for this subscription:
        # it is skipped, not waited for (that would deadlock), and brings the subscription back once this commits.
        for payment in Payment.objects.select_for_update(skip_locked=True).filter(
                order=renewal, status=Payment.Status.PENDING):
            try:
                payment_expire(payment=payment, reason="subscription ended", actor=actor)
            except ApplicationError as exc:
                logger.warning("renewal checkout %s not closed: %s", payment.pk, exc.message)
    audit_log_write(tenant=sub.tenant, actor=actor, action="payments.subscription_ended", target=sub,
                    data={"reason": reason})


def subscriptions_end(*, user, reason: str, actor=None) -> int:
    """End the person's subscriptions now (their account is erased, say), closing open renewal checkouts."""
    subs = list(Subscription.objects.select_for_update(of=("self",)).select_related("renewal_order").filter(user=user)
                .exclude(status=Subscription.Status.ENDED))
    for sub in subs:
        _end(sub, at=timezone.now(), actor=actor, reason=reason)
    return len(subs)


def _paid_by(order: Order):
    """The subscriptions (locked) an order paid a period of: the one it started, or the one it renewed."""
    return Subscription.objects.select_for_update().filter(
        Q(entitlement__order=order) | Q(pk__in=order.lines.filter(subscription__isnull=False).values("subscription")))


def subscription_end_for_refund(*, order: Order, actor=None) -> None:
    """A fully refunded order that paid for a subscription's current period (its first order or a renewal) ends the
    subscription now. A refunded earlier period takes nothing away: that period is over, and the current one was
    paid for by another order."""
    for sub in _paid_by(order).exclude(status=Subscription.Status.ENDED):
        latest = (Order.objects.filter(Q(pk=sub.entitlement.order_id) | Q(lines__subscription=sub),
                                       paid_at__isnull=False).order_by("-paid_at", "-pk").first())
        if latest is not None and latest.pk == order.pk:
            _end(sub, at=timezone.now(), actor=actor, reason="refunded")


def subscription_restore_for_failed_refund(*, order: Order, since: datetime, actor=None) -> None:
    """A full refund that ended a subscription (``subscription_end_for_refund``, at or after ``since``) failed at the
    provider: the learner was not paid back, so the period they paid for runs on. Unless it is over by now, or the
    learner has subscribed again meanwhile (one live subscription each): then it stays ended, as the team is told."""
    for sub in _paid_by(order).filter(status=Subscription.Status.ENDED, ended_at__gte=since,
                                      current_period_end__gt=timezone.now()):
        if Subscription.objects.filter(user=sub.user_id).exclude(status=Subscription.Status.ENDED).exists():
            continue
        sub.status, sub.ended_at = Subscription.Status.ACTIVE, None
        sub.save(update_fields=["status", "ended_at"])
        Entitlement.objects.filter(pk=sub.entitlement_id).update(ends_at=sub.current_period_end, revoked_at=None)
        audit_log_write(tenant=sub.tenant, actor=actor, action="payments.subscription_restored", target=sub,
                        data={"order": order.number, "until": sub.current_period_end.isoformat()})


def renewal_key(sub: Subscription) -> str:
    """The idempotency key of the renewal of ``sub``'s current period. Learners' checkouts send keys of their own in
    the same space; signed with the server's secret, this one cannot be sent first to squat on the renewal."""
    period = f"{sub.pk}-{sub.current_period_end:%Y%m%d%H%M%S}"
    return "renewal-" + salted_hmac("payments.renewal", period, algorithm="sha256").hexdigest()[:40]


def subscriptions_sweep(*, tenant, now: datetime | None = None) -> dict[str, int]:
    """Open renewals that are due, and end subscriptions that were cancelled or stayed unpaid past their grace.

    The grace period runs from when the renewal is opened (``renewal_grace_until``), not from the period's end: a
    sweep that runs late, or a plan with no grace days, still leaves the learner time to pay the renewal they are
    emailed about, and a renewal opened by this run always outlives ``now``, so the same run never ends it.
    A renewal charges the subscription's price in the subscription's currency, whatever the storefront sells in now.

    Safe to run as often as wanted: each subscription is locked and its state checked before anything changes;
    a renewal's idempotency key is the subscription and period (``renewal_key``), so a second sweep finds the same
    order.
    """
    from .services import line_shares, order_open, payment_settings
    from .tasks import renewal_email_send

    now = now or timezone.now()
    conf = payment_settings(tenant=tenant)
    counts = {"renewals_opened": 0, "ended": 0}
    # A shared plan's renewals are divided between what it covers at this sweep: read once per plan, not per renewal
    # (the covered items and their credits may be the whole catalog).
    plan_shares: dict[int, list | None] = {}
    due = Subscription.objects.filter(status=Subscription.Status.ACTIVE, current_period_end__lte=now)
    for sub_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            sub = (Subscription.objects.select_for_update(of=("self", "plan", "user"))
                   .select_related("plan", "user", "switch_to").get(pk=sub_id))
            if sub.status != Subscription.Status.ACTIVE or sub.current_period_end > now:
                continue
            if sub.switch_to_id is not None:
                _switch(sub, currency=tenant.currency)
            # A plan taken off sale takes no new subscribers; those it has keep renewing, as on Stripe or Teachable.
            if sub.cancel_at_period_end or sub.plan.price == 0:
                _end(sub, at=sub.current_period_end, reason="cancelled")
                counts["ended"] += 1
                continue
            if sub.plan_id not in plan_shares:
                plan_shares[sub.plan_id] = line_shares(plan=sub.plan)
            try:
                started = order_open(
                    tenant=tenant, user=sub.user, key=renewal_key(sub),
                    title=sub.plan.name, price=sub.price, currency=sub.currency, plan=sub.plan, subscription=sub,
                    source="renewal", shares=plan_shares[sub.plan_id], **_renewal_attribution(sub, conf=conf))
            except ApplicationError as exc:
                # Access already stops at the period's end; the next run tries again, and the others go on.
                logger.warning("renewal of subscription %s not opened: %s", sub.pk, exc.message)
                continue
            sub.status = Subscription.Status.PAST_DUE
            sub.grace_until = renewal_grace_until(plan=sub.plan, opened_at=max(sub.current_period_end, now))
            sub.renewal_order = started.order
            sub.save(update_fields=["status", "grace_until", "renewal_order"])
            Entitlement.objects.filter(pk=sub.entitlement_id).update(ends_at=sub.grace_until)
            renewal_email_send.delay_on_commit(tenant_id=tenant.pk, subscription_id=sub.pk)
            counts["renewals_opened"] += 1
    overdue = Subscription.objects.filter(status=Subscription.Status.PAST_DUE, grace_until__lte=now)
    for sub_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            sub = Subscription.objects.select_for_update().get(pk=sub_id)
            if sub.status == Subscription.Status.PAST_DUE and sub.grace_until <= now:
                _end(sub, at=sub.grace_until, reason="renewal unpaid")
                counts["ended"] += 1
    return counts
