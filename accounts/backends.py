from django.contrib.auth.backends import BaseBackend

from marketplace.tenancy import current_tenant

from .roles import role_allows
from .selectors import membership_role


class TenantRoleBackend(BaseBackend):
    """Permissions from the person's role on the storefront being served (see accounts.roles)."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        tenant = current_tenant()
        if tenant is None or not user_obj.is_active:
            return False
        return role_allows(membership_role(user=user_obj, tenant=tenant), perm)

    def has_module_perms(self, user_obj, app_label) -> bool:
        from django.apps import apps

        return any(
            self.has_perm(user_obj, f"{app_label}.{action}_{model._meta.model_name}")
            for model in apps.get_app_config(app_label).get_models()
            for action in ("view", "change")
        )
