from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import pgettext_lazy


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    # A context of its own: the operator's user page has a "Platform" section of permissions (平台权限).
    verbose_name = pgettext_lazy("admin section", "Platform")

    def ready(self) -> None:
        from django.core import checks

        from . import tenancy

        checks.register(tenancy.check_scoped_managers, "zhiku")

        post_migrate.connect(tenancy.install_rls, sender=self, dispatch_uid="zhiku-install-rls")
        connection_created.connect(tenancy.set_rls_role, dispatch_uid="zhiku-set-rls-role")
