"""Distribution's Celery tasks: each takes JSON ids and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from marketplace.celery import app
from marketplace.models import Tenant
from marketplace.tasks import for_each_storefront
from marketplace.tenancy import TenantTask


def tasks_run_in_process() -> bool:
    return bool(app.conf.task_always_eager)


_tenants: dict[int, Tenant] = {}


def _tenant(tenant_id: int) -> Tenant:
    # The push task is the hot path: a storefront's row barely changes, so each worker process keeps it.
    tenant = _tenants.get(tenant_id)
    if tenant is None:
        tenant = _tenants[tenant_id] = Tenant.objects.get(pk=tenant_id)
    return tenant


@shared_task(acks_late=True)
def delivery_push(*, tenant_id: int, delivery_id: int) -> str:
    """Push one delivery. Not a ``TenantTask``: the platform call runs between two short transactions (see
    ``distribution.pipeline``). A transient failure comes back here with a countdown; if that message is lost the
    sweeper finds the row again."""
    from .models import Delivery
    from .pipeline import delivery_run

    tenant = _tenant(tenant_id)
    status = delivery_run(tenant=tenant, delivery_id=delivery_id)
    if status in (Delivery.Status.RETRYING, Delivery.Status.CONFIRMING) and not tasks_run_in_process():
        from marketplace.tenancy import tenant_phase

        with tenant_phase(tenant):
            due_at = Delivery.objects.filter(pk=delivery_id).values_list("due_at", flat=True).first()
        if due_at is not None:
            delivery_push.apply_async(kwargs={"tenant_id": tenant_id, "delivery_id": delivery_id},
                                      countdown=max(0.0, (due_at - timezone.now()).total_seconds()))
    return status


@shared_task(base=TenantTask)
def deliveries_dispatch_task(*, tenant_id: int) -> int:
    from marketplace.tenancy import current_tenant

    from .services import deliveries_dispatch

    return deliveries_dispatch(tenant=current_tenant())


@shared_task
def deliveries_dispatch_all() -> int:
    """Beat, every minute: due scheduled pushes, retries, and deliveries whose worker died."""
    return for_each_storefront(deliveries_dispatch_task)


@shared_task(base=TenantTask)
def allocation_recompute(*, tenant_id: int) -> int:
    from marketplace.tenancy import current_tenant

    from .allocation import allocation_recompute as recompute
    from .allocation import channel_stats_fetch

    tenant = current_tenant()
    channel_stats_fetch(tenant=tenant)
    return len(recompute(tenant=tenant))


@shared_task
def allocation_recompute_all() -> int:
    """Beat, daily: fetch the platforms' numbers for yesterday and recompute each storefront's allocation."""
    return for_each_storefront(allocation_recompute)
