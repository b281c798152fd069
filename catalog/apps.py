from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog")

    def ready(self):
        from accounts.roles import CREATOR_PERMISSIONS

        # Creators write their own items and their own creator profile (the admin narrows them to those); the rest
        # of the catalog they only read.
        CREATOR_PERMISSIONS.update({
            *(f"catalog.{action}_{model}" for action in ("view", "add", "change")
              for model in ("contentitem", "section", "lesson", "itemcreator")),
            "catalog.view_category", "catalog.view_tag", "catalog.view_creator", "catalog.change_creator",
        })
        from . import (
            privacy,  # noqa: F401  (registers the catalog's exporter and eraser)
            signals,
        )

        signals.connect()
