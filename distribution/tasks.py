"""Distribution's Celery tasks: each takes JSON ids and calls one service."""

from __future__ import annotations

from collections import Counter

from celery import shared_task
from django.utils import timezone, translation

from marketplace.celery import app
from marketplace.models import Tenant
from marketplace.tasks import for_each_storefront
from marketplace.tenancy import TenantTask, tenant_phase


def tasks_run_in_process() -> bool:
    return bool(app.conf.task_always_eager)


@shared_task(acks_late=True)
def deliveries_push(*, tenant_id: int, delivery_ids: list[int]) -> dict[str, int]:
    """Push a batch of one channel's deliveries. Not a ``TenantTask``: the platform calls run between two short
    transactions (see ``distribution.pipeline``). A transient failure comes back here on its own with a countdown
    where its wait is short enough for the broker (``pipeline.countdown_limit``: such a row carries a lease); if that
    message is lost, or the wait is longer, the sweeper finds the row when it is due."""
    from .models import Delivery
    from .pipeline import deliveries_run

    tenant = Tenant.objects.prefetch_related("domains").get(pk=tenant_id)  # the links in every post need its host
    with translation.override(tenant.default_language):  # the delivery log is read by the storefront's team
        statuses = deliveries_run(tenant=tenant, delivery_ids=delivery_ids)
    again = [pk for pk, status in statuses.items() if status in (Delivery.Status.RETRYING, Delivery.Status.CONFIRMING)]
    if again and not tasks_run_in_process():
        with tenant_phase(tenant):
            due = list(Delivery.objects.filter(pk__in=again, lease_until__isnull=False).values_list("pk", "due_at"))
        now = timezone.now()
        for pk, due_at in due:
            deliveries_push.apply_async(kwargs={"tenant_id": tenant_id, "delivery_ids": [pk]},
                                        countdown=max(0.0, (due_at - now).total_seconds()))
    return dict(Counter(statuses.values()))


@shared_task(base=TenantTask)
def deliveries_dispatch_task(*, tenant_id: int) -> int:
    from marketplace.tenancy import current_tenant

    from .services import deliveries_dispatch

    return deliveries_dispatch(tenant=current_tenant())


@shared_task
def deliveries_dispatch_all() -> int:
    """Beat, every minute: due scheduled pushes, retries, and deliveries whose worker died."""
    return for_each_storefront(deliveries_dispatch_task)


@shared_task
def allocation_recompute(*, tenant_id: int) -> int:
    """Not a ``TenantTask``: the platforms' statistics are fetched between short transactions, not inside one."""
    from .allocation import allocation_recompute as recompute
    from .allocation import channel_stats_fetch

    tenant = Tenant.objects.get(pk=tenant_id)
    channel_stats_fetch(tenant=tenant)
    with tenant_phase(tenant):
        return len(recompute(tenant=tenant))


@shared_task
def allocation_recompute_all() -> int:
    """Beat, daily: fetch the platforms' numbers for yesterday and recompute each storefront's allocation."""
    return for_each_storefront(allocation_recompute)
