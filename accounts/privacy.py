"""A person's data: download it (JSON) or erase it.

Each app registers what it holds about a person on a storefront: an exporter returning JSON-ready data and an
eraser that deletes or pseudonymises it. Both run inside that storefront's tenant scope, once per storefront holding
anything of the person's (``selectors.tenants_holding_user_data``: a membership, any row whose foreign key to the
user names them, such as an audit entry they made, or an invitation to one of their addresses), not only where they
are still a member. Financial records (orders, ledger postings) are kept as the law requires; their erasers only cut
the link to the person's identity where the law allows. Audit entries and the admin's history stay, unlinked from
the person and without their addresses.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError
from marketplace.models import AuditLog, Tenant
from marketplace.services import audit_log_write
from marketplace.tenancy import each_tenant

from .models import Invitation, Membership, Role, User
from .selectors import _person_references, tenants_holding_user_data, user_email_addresses

Exporter = Callable[[User, Tenant], Any]
Eraser = Callable[[User, Tenant], None]
# The person's rows that name them only through another row (a payment through its order), so that what the team
# recorded about those rows is in their export too. Rows with a ``user`` column naming them are found unregistered.
RowsOf = Callable[[User, Tenant], Iterable[models.QuerySet]]
_exporters: dict[str, Exporter] = {}
_erasers: dict[str, Eraser] = {}
_rows: dict[str, RowsOf] = {}


def register(name: str, *, exporter: Exporter | None = None, eraser: Eraser | None = None,
             rows: RowsOf | None = None) -> None:
    if exporter is not None:
        _exporters[name] = exporter
    if eraser is not None:
        _erasers[name] = eraser
    if rows is not None:
        _rows[name] = rows


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


def _targets(queryset: models.QuerySet) -> Q:
    """Audit entries whose target is one of ``queryset``'s rows (an entry names its target by label and id text)."""
    ids = queryset.order_by().annotate(target_text=Cast("pk", models.CharField())).values("target_text")
    return Q(target_type=queryset.model._meta.label_lower, target_id__in=ids)


def _export_recorded_about(user: User, tenant: Tenant) -> list[dict]:
    """What the team (or the system) recorded about the person: entries about one of their rows (their membership,
    orders, access, promoter profile, invitations...) or naming their account in their data. Their own entries are
    their activity; which colleague wrote one is the team's business, not part of the export."""
    about = Q(data__user=user.pk)
    for model, column in _person_references():
        if column == "user":
            about |= _targets(model._default_manager.filter(user=user))
    about |= _targets(Invitation.objects.filter(email__in=user_email_addresses(user=user)))
    for rows in _rows.values():
        for queryset in rows(user, tenant):
            about |= _targets(queryset)
    return [
        {"at": a.created_at.isoformat(), "action": a.action, "target": f"{a.target_type}:{a.target_id}",
         "data": a.data}
        for a in AuditLog.objects.filter(about).exclude(actor=user).order_by("created_at", "pk")
    ]


def _erase_activity(user: User, tenant: Tenant) -> None:
    AuditLog.objects.filter(actor=user).update(actor=None)


def _erase_admin_history(*, user: User, names: set[str], emails: set[str], memberships: list[int],
                         pseudonym_email: str) -> None:
    """Take the person out of Django's admin history (``django_admin_log``), which every admin index lists under
    "Recent actions"; the entries stay, as the team's record of who changed what and when.

    An entry keeps the object's text from when it was logged (``object_repr``): an invitation's address, or for
    the person's account and memberships their display name or address. Entries about their account or one of
    their memberships get the pseudonymised address in place of the name they begin with (the whole text, if they
    were called something else then); any entry naming one of their verified addresses (an invitation, a
    promoter's ledger account) gets the placeholder an erased invitation carries. The history is global, not a
    storefront's, and the address search reads all of it: fine for a request made once per account.
    """
    types = ContentType.objects.get_for_models(User, Membership)
    user_type, membership_type = types[User], types[Membership]
    own = {(user_type.pk, str(user.pk)), *((membership_type.pk, str(pk)) for pk in memberships)}
    about = Q(content_type=user_type, object_id=str(user.pk)) | Q(
        content_type=membership_type, object_id__in=[str(pk) for pk in memberships])
    for email in emails:
        about |= Q(object_repr__icontains=email)
    by_length = sorted(names, key=len, reverse=True)
    address = re.compile("|".join(re.escape(email) for email in sorted(emails, key=len, reverse=True)), re.IGNORECASE)
    for entry in LogEntry.objects.filter(about):
        text = entry.object_repr
        if (entry.content_type_id, entry.object_id) in own:
            name = next((n for n in by_length if text.lower().startswith(n.lower())), None)
            text = pseudonym_email + text[len(name):] if name is not None else pseudonym_email
        if emails:
            text = address.sub(ERASED_EMAIL, text)
        entry.object_repr = text[:LogEntry._meta.get_field("object_repr").max_length]
        entry.save(update_fields=["object_repr"])


def register_builtin() -> None:
    register("membership", exporter=_export_membership)
    register("invitations", exporter=_export_invitations, eraser=_erase_invitations)
    register("activity", exporter=_export_activity, eraser=_erase_activity)
    register("recorded_about_you", exporter=_export_recorded_about)


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
            "language": user.language,
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
    storefront that is open, which would otherwise be left without anyone to run it; a storefront the operator has
    closed runs nothing, and the operator chooses who runs it if it opens again.
    """
    tenants = tenants_holding_user_data(user=user)
    for tenant in each_tenant(tenants):
        if tenant.is_active and Membership.objects.filter(user=user, role=Role.OWNER).exists() and \
                Membership.objects.filter(role=Role.OWNER).count() == 1:
            raise ApplicationError(
                _("You are the only owner of %(storefront)s: make someone else an owner before deleting your "
                  "account.") % {"storefront": tenant.name},
                code="sole_owner", extra={"storefront": tenant.slug})
    pseudonym = f"erased-{uuid.uuid4().hex[:16]}"
    pseudonym_email = f"{pseudonym}@erased.invalid"
    emails = user_email_addresses(user=user)
    names = {user.email, user.display_name, *emails} - {""}  # what the admin's history calls them by
    memberships = []
    for tenant in each_tenant(tenants):
        for eraser in _erasers.values():
            eraser(user, tenant)
        memberships += Membership.objects.filter(user=user).values_list("pk", flat=True)
        Membership.objects.filter(user=user).delete()
        audit_log_write(tenant=tenant, actor=None, action="user.erased", data={"pseudonym": pseudonym})
    _erase_admin_history(user=user, names=names, emails=emails, memberships=memberships,
                         pseudonym_email=pseudonym_email)
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    user.email = pseudonym_email
    user.display_name = user.first_name = user.last_name = user.language = ""
    user.is_active = False
    user.erased_at = timezone.now()
    user.set_unusable_password()
    user.save(update_fields=["email", "display_name", "first_name", "last_name", "language", "is_active",
                             "erased_at", "password"])
