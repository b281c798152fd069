"""Writes on people: joining storefronts, invitations, and privacy requests."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError
from marketplace.models import Tenant
from marketplace.services import audit_log_write

from .models import Invitation, Membership, Role, User
from .privacy import ERASED_EMAIL

ROLE_RANK = {Role.LEARNER: 0, Role.CREATOR: 1, Role.STAFF: 2, Role.OWNER: 3}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def membership_grant(*, tenant: Tenant, user: User, role: str, actor: User | None) -> Membership:
    """Give ``user`` at least ``role`` on ``tenant``: create the membership, or raise a lower role (never lower)."""
    membership, created = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    if created:
        audit_log_write(tenant=tenant, actor=actor, action="membership.joined", target=membership,
                        data={"role": role})
    elif ROLE_RANK[Role(role)] > ROLE_RANK[Role(membership.role)]:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_join(*, tenant: Tenant, user: User) -> Membership:
    """Make ``user`` a learner of ``tenant`` unless they already hold a role there (safe to repeat)."""
    return membership_grant(tenant=tenant, user=user, role=Role.LEARNER, actor=user)


@transaction.atomic
def invitation_check(*, tenant: Tenant, email: str, role: str) -> None:
    """Refuse an invitation that would change nothing: the address's holder already has this role here, or an
    invitation to it for this role is still waiting (sending that one again gives a fresh link). An invitation to
    another role is a change of role, made when it is accepted."""
    from .selectors import email_owner

    email = email.strip().lower()
    holder = email_owner(email=email)
    if holder is not None and Membership.objects.filter(tenant=tenant, user=holder, role=role).exists():
        raise ApplicationError(_("%(email)s is already %(role)s on this storefront.")
                               % {"email": email, "role": Role(role).label.lower()}, code="already_member",
                               extra={"field": "email"})
    if Invitation.objects.filter(tenant=tenant, email=email, role=role, accepted_at__isnull=True,
                                 expires_at__gt=timezone.now()).exists():
        raise ApplicationError(_("An invitation to this address for this role is waiting to be accepted: select it "
                                 "in the list and send it again for a fresh link."), code="invitation_pending",
                               extra={"field": "email"})


def invitation_create(*, tenant: Tenant, email: str, role: str, invited_by: User | None) -> tuple[Invitation, str]:
    """Store an invitation and email its link after commit. Returns the invitation and the raw token."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(_("Enter a valid email address."), code="invalid_email",
                               extra={"fields": {"email": exc.messages}}) from exc
    if role not in Role.values or role == Role.LEARNER:
        raise ApplicationError(_("Invitations are for owners, staff and creators."), code="invalid_role")
    invitation_check(tenant=tenant, email=email, role=role)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant, email=email, role=role, token_hash=hash_token(token), invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_log_write(tenant=tenant, actor=invited_by, action="invitation.created", target=invitation,
                    data={"email": email, "role": role})
    from .tasks import invitation_email_send

    invitation_email_send.delay_on_commit(tenant_id=tenant.pk, invitation_id=invitation.pk, token=token)
    return invitation, token


@transaction.atomic
def invitation_accept(*, tenant: Tenant, token: str, user: User | None, password: str | None = None) -> Membership:
    """Turn an invitation into a membership, once.

    Locks the invitation row, so two concurrent clicks on the same link accept it once. ``user`` is the person
    signed in, who must hold the invited address (``selectors.email_owner``: their main address, or one they
    verified), or None for someone new, who then chooses ``password``. The address counts as verified because the
    link reached it.
    """
    from .selectors import email_owner, invitation_get_usable

    invitation = invitation_get_usable(token=token, for_update=True)
    owner = email_owner(email=invitation.email)
    if user is None:
        if owner is not None:
            raise ApplicationError(_("An account with this email address already exists: sign in to accept."),
                                   code="login_required", status=403)
        try:
            validate_password(password or "", user=User(email=invitation.email))
        except ValidationError as exc:
            raise ApplicationError(_("Choose a stronger password."), code="weak_password",
                                   extra={"fields": {"password1": exc.messages}}) from exc
        user = User.objects.create_user(email=invitation.email, password=password)
    elif owner is None or owner.pk != user.pk:
        raise ApplicationError(_("This invitation was sent to %(email)s; sign in with that address.")
                               % {"email": invitation.email}, code="invitation_email_mismatch", status=403)
    _email_verify(user=user, email=invitation.email)
    membership = membership_grant(tenant=tenant, user=user, role=invitation.role, actor=user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_log_write(tenant=tenant, actor=user, action="invitation.accepted", target=invitation,
                    data={"role": invitation.role})
    return membership


def _email_verify(*, user: User, email: str) -> None:
    """Record ``email`` as a verified address of ``user``. It becomes their primary address only when it is their
    main one (``User.email``, as allauth keeps the two in step) and no other address is primary: accepting an
    invitation sent to a secondary address leaves the person's choice of main address alone."""
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    other_primary = EmailAddress.objects.filter(user=user, primary=True)
    if address is not None:
        other_primary = other_primary.exclude(pk=address.pk)
    primary = email == user.email.lower() and not other_primary.exists()
    if address is None:
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=primary)
    elif not address.verified or (primary and not address.primary):
        address.verified, address.primary = True, address.primary or primary
        address.save(update_fields=["verified", "primary"])


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User) -> str:
    """Give a pending invitation a fresh token and expiry, and email it again; the old link stops working."""
    if invitation.is_accepted:
        raise ApplicationError(_("This invitation has already been accepted."), code="invitation_used")
    if invitation.email == ERASED_EMAIL:
        raise ApplicationError(_("The person invited has erased their data: invite them again by address."),
                               code="invitation_erased")
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.save(update_fields=["token_hash", "expires_at"])
    audit_log_write(tenant=invitation.tenant, actor=actor, action="invitation.resent", target=invitation)
    from .tasks import invitation_email_send

    invitation_email_send.delay_on_commit(tenant_id=invitation.tenant_id, invitation_id=invitation.pk, token=token)
    return token


def owners_kept_check(*, tenant: Tenant, losing: list[int], lock: bool = True) -> None:
    """Refuse a change that takes the owner role from memberships ``losing`` if no other owner would be left: a
    storefront without an owner has nobody who can manage its team. The owners' rows are locked (unless ``lock`` is
    false, for a check that changes nothing), so two owners demoting each other at once cannot both succeed."""
    owners = Membership.objects.filter(tenant=tenant, role=Role.OWNER)
    owners = set((owners.select_for_update() if lock else owners).values_list("pk", flat=True))
    if owners and not owners - set(losing):
        raise ApplicationError(_("A storefront needs an owner: make someone else an owner first."),
                               code="last_owner", extra={"field": "role"})


@transaction.atomic
def membership_remove(*, tenant: Tenant, memberships: list[Membership], actor: User | None) -> int:
    """Take people off the team (their account stays); never the last owner. Returns how many were removed."""
    owners_kept_check(tenant=tenant, losing=[m.pk for m in memberships if m.role == Role.OWNER])
    for membership in memberships:
        audit_log_write(tenant=tenant, actor=actor, action="membership.removed", target=membership,
                        data={"user": membership.user_id, "role": membership.role})
    return Membership.objects.filter(pk__in=[m.pk for m in memberships]).delete()[0]


@transaction.atomic
def membership_set_role(*, tenant: Tenant, user: User, role: str, actor: User | None) -> Membership:
    """Give ``user`` exactly ``role`` on ``tenant`` (creating the membership if needed); never demotes the last
    owner."""
    membership, created = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    if not created and membership.role != role:
        if membership.role == Role.OWNER:
            owners_kept_check(tenant=tenant, losing=[membership.pk])
        previous, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        audit_log_write(tenant=tenant, actor=actor, action="membership.role_changed", target=membership,
                        data={"from": previous, "to": role})
    return membership


def profile_update(*, user: User, display_name: str | None = None, language: str | None = None) -> None:
    """Change what the person chose about themselves; None leaves a field as it is. The values are the ones
    ``accounts.forms.ProfileForm`` accepts (a language from ``LANGUAGES``, or blank for each storefront's own)."""
    fields = []
    if display_name is not None and display_name != user.display_name:
        user.display_name = display_name
        fields.append("display_name")
    if language is not None and language != user.language:
        user.language = language
        fields.append("language")
    if fields:
        user.save(update_fields=fields)
