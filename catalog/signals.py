"""What storefront pages show besides items, bundles and reviews (whose services bump the catalog generation): the
storefront's own branding, its learning paths and the names reviewers go by. Any saved change to them, from the
admin or elsewhere, starts a new generation once committed, so that visitors' cached pages do not keep the old name
or a path taken down."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from marketplace.models import Tenant

from .models import LearningPath, PathStep
from .services import catalog_changed


def _tenant_saved(sender, instance: Tenant, **kwargs) -> None:
    catalog_changed(instance.pk)


def _path_changed(sender, instance: LearningPath | PathStep, **kwargs) -> None:
    catalog_changed(instance.tenant_id)


def _person_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    """A person's display name is shown with their reviews, on every storefront they reviewed on."""
    if created or (update_fields is not None and "display_name" not in update_fields):
        return
    from accounts.selectors import tenants_holding_user_data

    for tenant in tenants_holding_user_data(user=instance):
        catalog_changed(tenant.pk)


def connect() -> None:
    post_save.connect(_tenant_saved, sender=Tenant, dispatch_uid="catalog.tenant_saved")
    post_save.connect(_person_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="catalog.person_saved")
    for model in (LearningPath, PathStep):
        post_save.connect(_path_changed, sender=model, dispatch_uid=f"catalog.{model.__name__}_saved")
        post_delete.connect(_path_changed, sender=model, dispatch_uid=f"catalog.{model.__name__}_deleted")
