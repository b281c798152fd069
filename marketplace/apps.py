from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.core import checks

        from . import tenancy

        checks.register(tenancy.check_scoped_managers, "zhiku")

        post_migrate.connect(tenancy.install_rls, sender=self, dispatch_uid="zhiku-install-rls")
        connection_created.connect(tenancy.set_rls_role, dispatch_uid="zhiku-set-rls-role")
