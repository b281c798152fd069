"""What payments hold about a person. Orders and the ledger are financial records the law makes us keep, so erasure
leaves them (the account itself is pseudonymised by accounts.privacy); they are part of the export. Visits through
a promoter's link stay as commission evidence, cut from the person, and a promoter's ledger accounts lose the email
address they were named after. A promoter's profile is suspended: their links, still posted around the web, earn
nothing more. The payment provider's events about their payments stay as the record of what the provider reported,
without the buyer's contact details."""

import re

from django.db.models import Q

from accounts import privacy
from accounts.selectors import user_email_addresses
from marketplace.services import audit_log_write

from .models import Entitlement, LedgerAccount, Order, Payment, Promoter, ReferralTouch, Subscription, WebhookEvent
from .subscriptions import subscriptions_end

# Where a provider's objects name the buyer: Stripe's checkout session (``customer_email``, ``customer_details``,
# shipping), a charge or payment intent (billing details, receipt address, shipping) and a dispute's evidence.
PROVIDER_PERSONAL_KEYS = frozenset({
    "customer_email", "customer_details", "customer_email_address", "customer_name", "customer_purchase_ip",
    "billing_details", "billing_address", "receipt_email", "shipping", "shipping_details", "shipping_address",
    "collected_information",
})


def export(user, tenant) -> dict:
    return {
        "orders": [
            {"number": o.number, "status": o.status, "currency": o.currency, "total": o.total, "tax": o.tax,
             "refunded": o.refunded, "created_at": o.created_at.isoformat(),
             "lines": [line.title for line in o.lines.all()]}
            for o in Order.objects.filter(user=user).prefetch_related("lines")
        ],
        "access": [
            {"source": e.source, "reference": e.reference, "item": e.item.title if e.item else None,
             "bundle": e.bundle.title if e.bundle else None, "whole_catalog": e.whole_catalog,
             "ends_at": e.ends_at.isoformat() if e.ends_at else None}
            for e in Entitlement.objects.filter(user=user).select_related("item", "bundle")
        ],
        "subscriptions": [
            {"plan": s.plan.name, "status": s.status, "until": s.current_period_end.isoformat(),
             "switches_to": s.switch_to.name if s.switch_to else None}
            for s in Subscription.objects.filter(user=user).select_related("plan", "switch_to")
        ],
        "promoter": [{"code": p.code, "status": p.status} for p in Promoter.objects.filter(user=user)],
        "referral_visits": [
            {"promoter_code": t.promoter.code, "source": t.source, "at": t.created_at.isoformat()}
            for t in ReferralTouch.objects.filter(user=user).select_related("promoter")
        ],
    }


def _scrubbed(value, addresses: re.Pattern | None):
    """``value`` (a provider event's JSON) without the buyer's contact details: the keys naming them emptied, and
    the person's addresses wherever else they appear."""
    if isinstance(value, dict):
        return {key: None if key in PROVIDER_PERSONAL_KEYS and item is not None else _scrubbed(item, addresses)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, addresses) for item in value]
    if isinstance(value, str) and addresses is not None:
        return addresses.sub(privacy.ERASED_EMAIL, value)
    return value


def _erase_provider_events(user) -> None:
    """The provider's events about the person's payments (their checkout sessions, and the refunds and disputes of
    their charges) keep what happened, not who paid."""
    payments = list(Payment.objects.filter(order__user=user).values_list("pk", "provider_ref", "provider_charge_ref"))
    if not payments:
        return
    sessions = [ref for _pk, ref, _charge in payments if ref]
    charges = [charge for _pk, _ref, charge in payments if charge]
    ours = [str(pk) for pk, _ref, _charge in payments]
    about = (Q(payload__data__object__metadata__payment__in=ours) | Q(payload__data__payment__in=sessions)
             | Q(payload__data__object__id__in=sessions))
    if charges:
        about |= (Q(payload__data__object__payment_intent__in=charges)
                  | Q(payload__data__object__payment_intent__id__in=charges))
    emails = sorted({user.email.lower(), *user_email_addresses(user=user)} - {""}, key=len, reverse=True)
    addresses = re.compile("|".join(map(re.escape, emails)), re.IGNORECASE) if emails else None
    for event in WebhookEvent.objects.filter(about):
        payload = _scrubbed(event.payload, addresses)
        if payload != event.payload:
            event.payload = payload
            event.save(update_fields=["payload"])


def erase(user, tenant) -> None:
    _erase_provider_events(user)
    # A touch is the evidence of a commission: the row stays, cut from the person and their browser's visitor id.
    ReferralTouch.objects.filter(user=user).update(user=None, visitor="")
    # Nobody is left to pay or reach: their links and codes earn nothing from now on (and the team sees why).
    for promoter in Promoter.objects.filter(user=user, status__in=[Promoter.Status.APPLIED,
                                                                   Promoter.Status.APPROVED]):
        promoter.status = Promoter.Status.SUSPENDED
        promoter.save(update_fields=["status"])
        audit_log_write(tenant=tenant, actor=None, action="payments.promoter_suspended", target=promoter,
                        data={"reason": "account_erased"})
    # Nobody is left to learn or to pay a renewal: subscriptions end now, their open renewal checkouts closed.
    subscriptions_end(user=user, reason="account_erased")
    # A promoter's ledger accounts were named after their email address; the name is the one thing of an account
    # that may change, so they go by their promoter code from now on.
    for account in LedgerAccount.objects.filter(promoter__user=user).select_related("promoter"):
        account.name = f"{account.promoter.code} ({account.code.rpartition(':')[2]})"
        account.save(update_fields=["name"])


def rows(user, tenant):
    """The person's payments: their audit entries (a payment failed, cancelled) are about them too."""
    return [Payment.objects.filter(order__user=user)]


privacy.register("payments", exporter=export, eraser=erase, rows=rows)
