"""What payments hold about a person. Orders and the ledger are financial records the law makes us keep, so erasure
leaves them (the account itself is pseudonymised by accounts.privacy); they are part of the export. Visits through
a promoter's link stay as commission evidence, cut from the person, and a promoter's ledger accounts lose the email
address they were named after."""

from accounts import privacy

from .models import Entitlement, LedgerAccount, Order, Promoter, ReferralTouch, Subscription


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
            {"plan": s.plan.name, "status": s.status, "until": s.current_period_end.isoformat()}
            for s in Subscription.objects.filter(user=user).select_related("plan")
        ],
        "promoter": [{"code": p.code, "status": p.status} for p in Promoter.objects.filter(user=user)],
        "referral_visits": [
            {"promoter_code": t.promoter.code, "source": t.source, "at": t.created_at.isoformat()}
            for t in ReferralTouch.objects.filter(user=user).select_related("promoter")
        ],
    }


def erase(user, tenant) -> None:
    # A touch is the evidence of a commission: the row stays, cut from the person and their browser's visitor id.
    ReferralTouch.objects.filter(user=user).update(user=None, visitor="")
    # A promoter's ledger accounts were named after their email address; the name is the one thing of an account
    # that may change, so they go by their promoter code from now on.
    for account in LedgerAccount.objects.filter(promoter__user=user).select_related("promoter"):
        account.name = f"{account.promoter.code} ({account.code.rpartition(':')[2]})"
        account.save(update_fields=["name"])


privacy.register("payments", exporter=export, eraser=erase)
