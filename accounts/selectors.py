"""Reads about people and their roles."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError, NotFound
from marketplace.models import Tenant

from .models import Invitation, Membership, User


def membership_role(*, user: User, tenant: Tenant) -> str | None:
    """The user's role on ``tenant`` (cached on the user object for the request), or None."""
    if not user.is_authenticated:
        return None
    cache = user.__dict__.setdefault("_zhiku_roles", {})
    if tenant.pk not in cache:
        cache[tenant.pk] = (
            Membership.objects.filter(tenant=tenant, user=user).values_list("role", flat=True).first()
        )
    return cache[tenant.pk]


def user_can_buy(*, user: User) -> bool:
    """Buying needs a verified email address."""
    return EmailAddress.objects.filter(user=user, verified=True).exists()


def invitation_get_usable(*, token: str, for_update: bool = False) -> Invitation:
    """The current tenant's pending invitation carrying ``token``, or an ApplicationError saying why not.

    ``for_update`` locks the row (call inside a transaction), so two clicks on one link accept it once.
    """
    from .services import hash_token

    invitations = Invitation.objects.filter(token_hash=hash_token(token))
    invitation = (invitations.select_for_update() if for_update else invitations).first()
    if invitation is None:
        raise NotFound(_("This invitation link is not valid. Ask for a new invitation."), code="invitation_invalid")
    if invitation.is_accepted:
        raise ApplicationError(_("This invitation has already been used. Sign in instead."),
                               code="invitation_used", status=410)
    if invitation.is_expired:
        raise ApplicationError(
            _("This invitation expired on %(date)s UTC. Ask for a new invitation.")
            % {"date": f"{invitation.expires_at:%Y-%m-%d %H:%M}"}, code="invitation_expired", status=410)
    return invitation


def tenants_of_user(*, user: User) -> list[Tenant]:
    """Storefronts the person belongs to (Tenant is global; the join does not read another tenant's rows)."""
    return list(Tenant.objects.filter(accounts_membership_set__user=user).order_by("pk"))
