from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task
def sessions_clear_expired() -> int:
    """Delete expired sessions (global table, so no tenant)."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


def for_each_storefront(task, **kwargs) -> int:
    """Fan a beat task out: one ``task`` per active storefront (called with ``tenant_id`` and ``kwargs``)."""
    from .models import Tenant

    ids = list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))
    for tenant_id in ids:
        task.delay(tenant_id=tenant_id, **kwargs)
    return len(ids)
