"""Beat's entry points for the recommender and the per-storefront tasks they fan out to."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from marketplace.models import Tenant
from marketplace.tasks import for_each_storefront
from marketplace.tenancy import TenantTask, current_tenant


@shared_task(acks_late=True)
def recommender_fit(*, tenant_id: int, run_date: str) -> dict:
    """One storefront's nightly fit for ``run_date``. Not a TenantTask: the fit commits in phases of its own, and
    the date's unique run row makes a second delivery of this task (or a second beat) a no-op."""
    from datetime import date

    from .fitting import fit_run

    run = fit_run(tenant=Tenant.objects.get(pk=tenant_id), run_date=date.fromisoformat(run_date))
    return {"run": run.pk if run else None, "winner": run.winner if run else None}


@shared_task
def recommender_fit_all() -> int:
    """Nightly: one fit per active storefront, all for the same date (the date beat fired, not when each runs)."""
    return for_each_storefront(recommender_fit, run_date=timezone.localdate().isoformat())


@shared_task(base=TenantTask)
def events_compact(*, tenant_id: int) -> int:
    from .services import events_compact as compact

    return compact()


@shared_task
def events_compact_all() -> int:
    return for_each_storefront(events_compact)


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def digest_send(*, tenant_id: int, user_id: int) -> bool:
    """One learner's digest, queued by the beat; the learner may be gone by now (``digest_send`` checks)."""
    from accounts.models import User

    from .digest import digest_send as send

    user = User.objects.filter(pk=user_id).first()
    return user is not None and send(tenant=current_tenant(), user=user)


@shared_task(base=TenantTask)
def digests_send(*, tenant_id: int) -> int:
    """The storefront's learners whose digest is due, one task each."""
    from .digest import learners_due

    due = learners_due()
    for user_id in due:
        digest_send.delay_on_commit(tenant_id=tenant_id, user_id=user_id)
    return len(due)


@shared_task
def digests_send_all() -> int:
    return for_each_storefront(digests_send)
