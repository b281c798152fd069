"""Reads about people and their roles."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import models
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError, NotFound
from marketplace.models import AuditLog, Tenant
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


def email_language(*, user: User | None, tenant: Tenant | None, reading: str | None = None) -> str:
    """The language of mail to ``user`` (None: an address without an account) from ``tenant`` (None: the platform).

    The language they chose (``User.language``) while it is one we still speak; else, for mail answering a request
    made on a page (a new account's confirmation), ``reading``: that page's language; else the storefront's default,
    or the platform's on its own host. What the storefront records for its team stays in the team's language.
    """
    supported = dict(settings.LANGUAGES)
    chosen = getattr(user, "language", "")
    if chosen in supported:
        return chosen
    if reading in supported:
        return reading
    return tenant.default_language if tenant is not None else settings.LANGUAGE_CODE


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


def email_owner(*, email: str) -> User | None:
    """The account an address belongs to (any case), or None if it is nobody's.

    The account that verified it, else the account it is the main address of: a verified secondary address is as
    much its holder's as their main one (allauth lets one account verify an address, and signs them in by it), and
    an address merely typed into a new account does not take it from the person who proved it is theirs.
    """
    address = EmailAddress.objects.filter(email__iexact=email, verified=True).select_related("user").first()
    if address is not None:
        return address.user
    return User.objects.filter(email__iexact=email).first()


def _person_references() -> list[tuple[type[models.Model], str]]:
    """Every tenant-owned model and foreign key to the user model on it: ``user``, but also ``actor``,
    ``created_by``, ``published_by``, ``invited_by``... (found by walking the models, so a later app's table or
    column is covered without registering it)."""
    return [
        (model, field.name)
        for model in tenant_owned_models()
        for field in model._meta.concrete_fields
        if field.is_relation and (field.many_to_one or field.one_to_one)
        and field.related_model._meta.label == settings.AUTH_USER_MODEL
    ]


def tenants_holding_user_data(*, user: User) -> list[Tenant]:
    """Every storefront holding something of the person's, for their data export and account erasure.

    Not only where they are a member: a team can remove a membership and keep the person's reviews, progress,
    orders and events, their audit entries and the items they wrote or approved, and a storefront can hold an
    invitation to one of their addresses that they never accepted. So: storefronts with a row of any tenant-owned
    model whose foreign key to the user model names them, plus those with an invitation to one of the person's
    verified addresses, and those whose audit log names them in an entry's data (a review of theirs the team deleted).
    All in one UNION statement of indexed lookups (a join from Tenant, or where the model hides its reverse relation,
    as the audit log does, its ``tenant_id`` column), but the last, which export and erasure are rare enough to
    afford. Inactive storefronts are included: their data is still there.
    """
    emails = user_email_addresses(user=user)
    with platform_scope():  # row-level security would otherwise show only the storefront serving the request
        found = []
        for model, column in _person_references():
            tenant = model._meta.get_field("tenant")
            if tenant.remote_field.hidden:
                found.append(model.objects.filter(**{column: user}, tenant__isnull=False).order_by()
                             .values_list("tenant_id"))
            else:
                found.append(Tenant.objects.filter(**{f"{tenant.related_query_name()}__{column}": user}).order_by()
                             .values_list("pk"))
        found.append(Tenant.objects.filter(accounts_invitation_set__email__in=emails).order_by().values_list("pk"))
        found.append(AuditLog.objects.filter(data__user=user.pk, tenant__isnull=False).order_by()
                     .values_list("tenant_id"))
        ids = {pk for (pk,) in found[0].union(*found[1:])}
    return list(Tenant.objects.filter(pk__in=ids).order_by("pk"))
