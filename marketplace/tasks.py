from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task
def sessions_clear_expired() -> int:
    """Delete expired sessions (global table, so no tenant)."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


def for_each_storefront(task, *, deactivated_too: bool = False, **kwargs) -> int:
    """Fan a beat task out: one ``task`` per active storefront (called with ``tenant_id`` and ``kwargs``).

    ``deactivated_too`` also runs it for deactivated storefronts: for the money they still hold (checkouts a learner
    may still pay, shares that become payable, the ledger's published head), which deactivation does not stop."""
    from .models import Tenant

    storefronts = Tenant.objects.all() if deactivated_too else Tenant.objects.filter(is_active=True)
    ids = list(storefronts.values_list("pk", flat=True))
    for tenant_id in ids:
        task.delay(tenant_id=tenant_id, **kwargs)
    return len(ids)
