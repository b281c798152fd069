"""Writes on the platform's own tables: onboarding tenants and the audit trail."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.db.models.functions import Mod
from django.utils.translation import gettext as _
from django.utils.translation import ngettext_lazy

from .audit import ACTIONS
from .errors import ApplicationError
from .models import AuditLog, Domain, Tenant
from .money import charge_step, format_money


def audit_log_write(*, tenant: Tenant | None, actor, action: str, target: models.Model | None = None,
                    data: dict[str, Any] | None = None) -> AuditLog:
    """Record who did what; call inside the transaction of the change it describes. ``action`` is one of
    ``marketplace.audit.ACTIONS``, so that the log can say it in words."""
    if action not in ACTIONS:
        raise ValueError(f"{action!r} is not an audit action; add it to marketplace.audit.ACTIONS")
    return AuditLog.objects.create(
        tenant=tenant,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=data or {},
    )


def _validated(instance: models.Model) -> models.Model:
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise ApplicationError("Some fields are invalid.", code="validation_error",
                               extra={"fields": exc.message_dict}) from exc
    return instance


# The time zone a new storefront is proposed by its language; other languages are spoken in many zones.
LANGUAGE_TIME_ZONES = {"zh-hans": "Asia/Shanghai"}


@transaction.atomic
def tenant_onboard(*, name: str, slug: str, host: str, owner_email: str, actor, primary_color: str = "#2563eb",
                   default_language: str = "zh-hans", currency: str = "CNY", platform_fee_bp: int | None = None,
                   logo: UploadedFile | None = None, time_zone: str = "") -> Tenant:
    """Create a tenant with its primary domain and email its owner an invitation. All or nothing. With no
    ``time_zone``, the one its language proposes."""
    from accounts.models import Role
    from accounts.services import invitation_create

    tenant = _validated(Tenant(name=name, slug=slug, primary_color=primary_color,
                               default_language=default_language, currency=currency,
                               time_zone=time_zone or LANGUAGE_TIME_ZONES.get(default_language, "UTC"),
                               **({} if platform_fee_bp is None else {"platform_fee_bp": platform_fee_bp})))
    if logo is not None:
        tenant.logo = logo
    tenant.save()
    domain = _validated(Domain(tenant=tenant, host=host.lower().strip(), is_primary=True))
    domain.save()
    invitation_create(tenant=tenant, email=owner_email, role=Role.OWNER, invited_by=actor)
    audit_log_write(tenant=tenant, actor=actor, action="tenant.onboarded", target=tenant,
                    data={"host": domain.host, "owner_email": owner_email})
    return tenant


def currency_change_check(*, tenant: Tenant, currency: str) -> None:
    """Refuse moving ``tenant`` to ``currency``: prices are minor units of the storefront's currency and keep their
    numbers, so a storefront that has sold keeps its currency (its orders, ledger and payouts are in it), and one
    that has not may change only when every price and fixed coupon can still be charged (``money.CHARGE_STEPS``)."""
    from catalog.models import Bundle, ContentItem
    from payments.models import Coupon, Order, SubscriptionPlan

    if currency == tenant.currency:
        return
    if Order.objects.filter(tenant=tenant).exists():
        raise ValidationError(_("This storefront has orders in %(currency)s; its currency can no longer change. "
                                "Prices are not converted."),
                              code="currency_sold", params={"currency": tenant.currency})
    step = charge_step(currency)
    if step == 1:
        return
    off_step = [
        (ContentItem.objects.all(), "price", ngettext_lazy("%(count)d item price", "%(count)d item prices", "count")),
        (Bundle.objects.all(), "price", ngettext_lazy("%(count)d bundle price", "%(count)d bundle prices", "count")),
        (SubscriptionPlan.objects.all(), "price",
         ngettext_lazy("%(count)d plan price", "%(count)d plan prices", "count")),
        (Coupon.objects.filter(kind=Coupon.Kind.FIXED), "value",
         ngettext_lazy("%(count)d fixed coupon", "%(count)d fixed coupons", "count")),
    ]
    found = []
    for rows, amount, words in off_step:
        count = rows.filter(tenant=tenant).alias(rest=Mod(amount, step)).exclude(rest=0).count()
        if count:
            found.append(words % {"count": count})
    if found:
        raise ValidationError(
            _("%(currency)s is charged in steps of %(step)s, and %(prices)s here would not be: correct them first. "
              "Prices are not converted."), code="off_charge_step",
            params={"currency": currency, "step": format_money(step, currency), "prices": ", ".join(found)})


@transaction.atomic
def domain_add(*, tenant: Tenant, host: str, make_primary: bool = False, actor=None) -> Domain:
    """Attach another host to a tenant; making it primary demotes the previous primary in the same step."""
    if make_primary:
        Domain.objects.filter(tenant=tenant, is_primary=True).update(is_primary=False)
    domain = _validated(Domain(tenant=tenant, host=host.lower().strip(), is_primary=make_primary))
    domain.save()
    audit_log_write(tenant=tenant, actor=actor, action="domain.added", target=domain,
                    data={"host": domain.host, "primary": make_primary})
    return domain
