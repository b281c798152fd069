"""Who may open what: the one decision every page, media request and API call goes through.

``can_access(user, item)`` is true when the item is free, when one of the learner's entitlements covers it (a
purchase of the item or of a bundle holding it, a subscription, a grant, a licence), or when the person works on it
(the storefront's owners and staff, once they have set up the TOTP the admin asks of them, and the item's own
creators). A free-preview lesson is open to everyone on a
published item. Unpublished items are open only to the team; an archived item stays open to those who had access
(for a free item, those who had started it).
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled

from accounts.models import Role
from accounts.selectors import membership_role
from marketplace.tenancy import current_tenant
from payments.selectors import entitlement_covers

from .models import ContentItem, ItemProgress, Lesson

TEAM_ROLES = frozenset({Role.OWNER, Role.STAFF})


def _role(user) -> str | None:
    tenant = current_tenant()
    if tenant is None or not getattr(user, "is_authenticated", False):
        return None
    return membership_role(user=user, tenant=tenant)


def is_team(user) -> bool:
    """Owners and staff see the whole catalog, paid or unpublished, but only with a second factor: a stolen password
    alone must not open everything the storefront sells (the admin asks the same of them)."""
    return _role(user) in TEAM_ROLES and is_mfa_enabled(user, [Authenticator.Type.TOTP])


def _credited(user, item: ContentItem) -> bool:
    return _role(user) == Role.CREATOR and item.item_creators.filter(creator__user=user).exists()


def can_access(user, item: ContentItem, lesson: Lesson | None = None) -> bool:
    """Whether ``user`` may open ``item`` (or, when given, that one ``lesson`` of it)."""
    if is_team(user) or _credited(user, item):
        return True
    if item.status == ContentItem.Status.PUBLISHED:
        if item.is_free or (lesson is not None and lesson.is_preview):
            return True
    elif item.status != ContentItem.Status.ARCHIVED:
        return False
    elif item.is_free and _started(user, item):
        return True  # a free item has no purchase to keep it open: those who began learning it keep it
    # A subscription covers what is on sale now; what was bought stays open after it is archived.
    return entitlement_covers(user=user, item=item, subscriptions=item.status != ContentItem.Status.ARCHIVED)


def _started(user, item: ContentItem) -> bool:
    return getattr(user, "is_authenticated", False) and ItemProgress.objects.filter(user=user, item=item).exists()
