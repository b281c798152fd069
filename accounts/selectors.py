"""Reads about people and their roles."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError, NotFound
from marketplace.models import Tenant
from marketplace.tenancy import platform_scope, tenant_owned_models

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


def user_email_addresses(*, user: User) -> set[str]:
    """The addresses the person has proved are theirs, lower-cased (as invitations store them).

    Verified ones only: anyone can type another person's address into a new account, and must not reach (read or
    erase) what the storefronts hold under that address.
    """
    return {email.lower() for email in EmailAddress.objects.filter(user=user, verified=True)
            .values_list("email", flat=True)}


def _person_row_relations() -> list[str]:
    """Tenant -> rows of a person: the reverse name of every tenant-owned model with a ``user`` column."""
    relations = []
    for model in tenant_owned_models():
        try:
            field = model._meta.get_field("user")
        except FieldDoesNotExist:
            continue
        tenant = model._meta.get_field("tenant")
        if field.many_to_one and field.related_model._meta.label == settings.AUTH_USER_MODEL \
                and not tenant.remote_field.hidden:
            relations.append(f"{tenant.related_query_name()}__user")
    return relations


def tenants_holding_user_data(*, user: User) -> list[Tenant]:
    """Every storefront holding something of the person's, for their data export and account erasure.

    Not only where they are a member: a team can remove a membership and keep the person's reviews, progress,
    orders and events, and a storefront can hold an invitation to one of their addresses that they never accepted.
    So: storefronts with a row of any tenant-owned model that has a ``user`` column (found by walking the models,
    so a later app's table is covered without registering it), plus those with an invitation to one of the person's
    verified addresses. Each is one indexed join from Tenant, all in one UNION statement; Tenant is global, so this
    reads no other tenant's rows through the ORM. Inactive storefronts are included: their data is still there.
    """
    emails = user_email_addresses(user=user)
    found = [Tenant.objects.filter(**{relation: user}).order_by().values_list("pk")
             for relation in _person_row_relations()]
    found.append(Tenant.objects.filter(accounts_invitation_set__email__in=emails).order_by().values_list("pk"))
    with platform_scope():  # row-level security would otherwise show only the storefront serving the request
        ids = [pk for (pk,) in found[0].union(*found[1:])]
    return list(Tenant.objects.filter(pk__in=ids).order_by("pk"))
