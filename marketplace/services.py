"""Writes on the platform's own tables: onboarding tenants and the audit trail."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction

from .errors import ApplicationError
from .models import AuditLog, Domain, Tenant


def audit_log_write(*, tenant: Tenant | None, actor, action: str, target: models.Model | None = None,
                    data: dict[str, Any] | None = None) -> AuditLog:
    """Record who did what; call inside the transaction of the change it describes."""
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


@transaction.atomic
def tenant_onboard(*, name: str, slug: str, host: str, owner_email: str, actor, primary_color: str = "#2563eb",
                   default_language: str = "zh-hans", currency: str = "CNY", platform_fee_bp: int | None = None,
                   logo: UploadedFile | None = None) -> Tenant:
    """Create a tenant with its primary domain and email its owner an invitation. All or nothing."""
    from accounts.models import Role
    from accounts.services import invitation_create

    tenant = _validated(Tenant(name=name, slug=slug, primary_color=primary_color,
                               default_language=default_language, currency=currency,
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
