"""Writes on entitlements. Checkout, subscriptions and refunds call these; the team can grant access by hand."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write

from .models import Entitlement


def entitlement_grant(*, tenant, user, actor, item=None, bundle=None, whole_catalog: bool = False,
                      source: str = Entitlement.Source.GRANT, reference: str = "",
                      starts_at: datetime | None = None, ends_at: datetime | None = None) -> Entitlement:
    if sum(bool(x) for x in (item, bundle, whole_catalog)) != 1:
        raise ApplicationError(_("Grant access to one item, one bundle, or the whole catalog."),
                               code="entitlement_target")
    starts_at = starts_at or timezone.now()
    if ends_at is not None and ends_at <= starts_at:
        raise ApplicationError(_("Access must end after it starts."), code="entitlement_period")
    with transaction.atomic():
        entitlement = Entitlement.objects.create(
            tenant=tenant, user=user, item=item, bundle=bundle, whole_catalog=whole_catalog, source=source,
            reference=reference, starts_at=starts_at, ends_at=ends_at)
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
