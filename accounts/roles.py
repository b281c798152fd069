"""What each storefront role may do in the admin, as Django permissions.

Owners and staff manage every tenant-owned model of their tenant; only owners manage the team (memberships and
invitations) and the storefront's branding. Creators get what later apps grant them in ``CREATOR_PERMISSIONS``.
"""

from __future__ import annotations

from functools import cache

from django.apps import apps

from .models import Role

ADMIN_ROLES = frozenset({Role.OWNER, Role.STAFF, Role.CREATOR})
MFA_REQUIRED_ROLES = frozenset({Role.OWNER, Role.STAFF})
OWNER_ONLY_MODELS = frozenset({"accounts.membership", "accounts.invitation"})
# "app_label.codename" strings that creators hold on their tenant (catalog adds its own).
CREATOR_PERMISSIONS: set[str] = set()
# Global models an owner may view and change, restricted to their own row by the admin.
OWNER_GLOBAL_PERMISSIONS = frozenset({"marketplace.view_tenant", "marketplace.change_tenant"})
READ_ONLY_FOR_STAFF = frozenset({"marketplace.auditlog"})


def _model_of(perm: str):
    app_label, _, codename = perm.partition(".")
    action, _, model_name = codename.partition("_")
    try:
        return action, apps.get_model(app_label, model_name)
    except LookupError:
        return action, None


@cache
def _tenant_owned_labels() -> frozenset[str]:
    # The model registry is fixed once Django has started; the admin asks this for every permission it shows.
    from marketplace.tenancy import tenant_owned_models

    return frozenset(model._meta.label_lower for model in tenant_owned_models())


def role_allows(role: str | None, perm: str) -> bool:
    if role is None or role == Role.LEARNER:
        return False
    if role == Role.CREATOR:
        return perm in CREATOR_PERMISSIONS
    if role == Role.OWNER and perm in OWNER_GLOBAL_PERMISSIONS:
        return True
    action, model = _model_of(perm)
    if model is None or model._meta.label_lower not in _tenant_owned_labels():
        return False
    label = model._meta.label_lower
    if label in READ_ONLY_FOR_STAFF:
        return action == "view"
    if label in OWNER_ONLY_MODELS and role != Role.OWNER:
        return action == "view"
    return True
