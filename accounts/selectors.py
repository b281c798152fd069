"""Reads about people and their roles."""

from __future__ import annotations

from allauth.account.models import EmailAddress

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


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The current tenant's invitation carrying ``token`` (tenant scope must be open)."""
    from .services import hash_token

    return Invitation.objects.filter(token_hash=hash_token(token)).first()


def tenants_of_user(*, user: User) -> list[Tenant]:
    """Storefronts the person belongs to (Tenant is global; the join does not read another tenant's rows)."""
    return list(Tenant.objects.filter(accounts_membership_set__user=user).order_by("pk"))
