"""A person's data: download it (JSON) or erase it.

Each app registers what it holds about a person on a storefront: an exporter returning JSON-ready data and an
eraser that deletes or pseudonymises it. Both run inside that storefront's tenant scope, once per storefront holding
anything of the person's (``selectors.tenants_holding_user_data``: a membership, any row with a ``user`` column, or
an invitation to one of their addresses), not only where they are still a member. Financial records (orders,
ledger postings) are kept as the law requires; their erasers only cut the link to the person's identity where the
law allows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError
from marketplace.models import AuditLog, Tenant
from marketplace.services import audit_log_write
from marketplace.tenancy import each_tenant

from .models import Invitation, Membership, Role, User
from .selectors import tenants_holding_user_data, user_email_addresses

Exporter = Callable[[User, Tenant], Any]
Eraser = Callable[[User, Tenant], None]
_exporters: dict[str, Exporter] = {}
_erasers: dict[str, Eraser] = {}


def register(name: str, *, exporter: Exporter | None = None, eraser: Eraser | None = None) -> None:
    if exporter is not None:
        _exporters[name] = exporter
    if eraser is not None:
        _erasers[name] = eraser


# What an erased person's address becomes where the row itself must stay (invitations, audit entries).
ERASED_EMAIL = "erased@erased.invalid"
_AUDIT_EMAIL_KEYS = ("email", "owner_email")  # data keys of "invitation.created" and "tenant.onboarded"


def _export_membership(user: User, tenant: Tenant) -> dict | None:
    m = Membership.objects.filter(user=user).first()  # None where the team removed them but kept their data
    return {"role": m.role, "joined_at": m.created_at.isoformat()} if m else None


def _export_invitations(user: User, tenant: Tenant) -> list[dict]:
    return [
        {"role": i.role, "sent_at": i.created_at.isoformat(),
         "accepted_at": i.accepted_at.isoformat() if i.accepted_at else None}
        for i in Invitation.objects.filter(email__in=user_email_addresses(user=user))
    ]


def _erase_invitations(user: User, tenant: Tenant) -> None:
    """Take the person's addresses out of invitations and of the audit entries that name them; keep both rows.

    The team keeps its record of who was invited as what and when. A pending invitation also expires: its link
    would otherwise open an account under the placeholder address.
    """
    emails = user_email_addresses(user=user)
    invitations = Invitation.objects.filter(email__in=emails)
    invitations.filter(accepted_at__isnull=True).update(expires_at=timezone.now())
    invitations.update(email=ERASED_EMAIL)
    naming = Q()
    for email in emails:
        for key in _AUDIT_EMAIL_KEYS:
            naming |= Q(**{f"data__{key}__iexact": email})
    for entry in AuditLog.objects.filter(naming):
        entry.data = {key: ERASED_EMAIL if key in _AUDIT_EMAIL_KEYS and str(value).lower() in emails else value
                      for key, value in entry.data.items()}
        entry.save(update_fields=["data"])


def _export_activity(user: User, tenant: Tenant) -> list[dict]:
    return [
        {"at": a.created_at.isoformat(), "action": a.action, "target": f"{a.target_type}:{a.target_id}"}
        for a in AuditLog.objects.filter(actor=user).order_by("created_at")
    ]


def _erase_activity(user: User, tenant: Tenant) -> None:
    AuditLog.objects.filter(actor=user).update(actor=None)


def register_builtin() -> None:
    register("membership", exporter=_export_membership)
    register("invitations", exporter=_export_invitations, eraser=_erase_invitations)
    register("activity", exporter=_export_activity, eraser=_erase_activity)


def user_data_export(*, user: User) -> dict:
    """Everything Zhiku holds about ``user``, across every storefront holding anything of theirs."""
    storefronts = []
    for tenant in each_tenant(tenants_holding_user_data(user=user)):
        entry = {"storefront": tenant.slug, "name": tenant.name}
        entry.update({name: exporter(user, tenant) for name, exporter in _exporters.items()})
        storefronts.append(entry)
    return {
        "format": "zhiku.user-export/1",
        "generated_at": timezone.now().isoformat(),
        "profile": {
            "email": user.email,
            "display_name": user.display_name,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
        },
        "email_addresses": [
            {"email": e.email, "verified": e.verified, "primary": e.primary}
            for e in EmailAddress.objects.filter(user=user)
        ],
        "mfa": sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True)),
        "storefronts": storefronts,
    }


@transaction.atomic
def user_erase(*, user: User) -> None:
    """Erase a person's account: personal data removed or pseudonymised, financial records kept.

    The user row stays (orders and ledger entries point at it) but no longer identifies anyone and can never log
    in again; every session dies with the password hash. Refused while the person is the only owner of a
    storefront, which would otherwise be left without anyone to run it.
    """
    tenants = tenants_holding_user_data(user=user)
    for tenant in each_tenant(tenants):
        if Membership.objects.filter(user=user, role=Role.OWNER).exists() and \
                Membership.objects.filter(role=Role.OWNER).count() == 1:
            raise ApplicationError(
                _("You are the only owner of %(storefront)s: make someone else an owner before deleting your "
                  "account.") % {"storefront": tenant.name},
                code="sole_owner", extra={"storefront": tenant.slug})
    pseudonym = f"erased-{uuid.uuid4().hex[:16]}"
    for tenant in each_tenant(tenants):
        for eraser in _erasers.values():
            eraser(user, tenant)
        Membership.objects.filter(user=user).delete()
        audit_log_write(tenant=tenant, actor=None, action="user.erased", data={"pseudonym": pseudonym})
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    user.email = f"{pseudonym}@erased.invalid"
    user.display_name = user.first_name = user.last_name = ""
    user.is_active = False
    user.erased_at = timezone.now()
    user.set_unusable_password()
    user.save(update_fields=["email", "display_name", "first_name", "last_name", "is_active", "erased_at",
                             "password"])
