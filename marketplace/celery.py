"""The Celery app. Settings come from Django's (CELERY_* names); the beat schedule is defined here, in code."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")

app = Celery("zhiku")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _recycle_connections(sender=None, **kwargs):
    """A task in a worker is a request's lifecycle: connections past CONN_MAX_AGE, or broken, are closed around it
    (see CELERY_DB_REUSE_MAX in the settings); in-process tasks run inside their caller's connection."""
    if not getattr(sender.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()

app.conf.beat_schedule = {
    "clear-expired-sessions": {
        "task": "marketplace.tasks.sessions_clear_expired",
        "schedule": crontab(minute=17, hour=3),
    },
    "subscriptions-sweep": {  # renewals due, cancelled and unpaid subscriptions
        "task": "payments.tasks.subscriptions_sweep_all",
        "schedule": crontab(minute=5),
    },
    "expire-checkouts": {  # checkouts left unpaid past CHECKOUT_EXPIRES_MINUTES; their coupon uses are freed
        "task": "payments.tasks.checkouts_expire_all",
        "schedule": crontab(minute="*/10"),
    },
    "publish-ledger-heads": {  # signed chain heads, one per storefront and day
        "task": "payments.tasks.ledger_heads_publish_all",
        "schedule": crontab(minute=55, hour=23),
    },
    "release-held-shares": {  # creators' shares and commissions past the refund window become payable
        "task": "payments.tasks.shares_release_all",
        "schedule": crontab(minute=35),
    },
    "recommender-fit": {  # one fit per storefront and night
        "task": "recommender.tasks.recommender_fit_all",
        "schedule": crontab(minute=30, hour=2),
    },
    "recommender-events-retention": {  # raw events past the retention period folded into rollups
        "task": "recommender.tasks.events_compact_all",
        "schedule": crontab(minute=45, hour=4),
    },
    "recommender-digests": {  # due digests, outside quiet hours
        "task": "recommender.tasks.digests_send_all",
        "schedule": crontab(minute=10),
    },
    "distribution-dispatch": {  # scheduled pushes that fell due, retries, deliveries whose worker died
        "task": "distribution.tasks.deliveries_dispatch_all",
        "schedule": crontab(),
    },
    "distribution-allocation": {  # yesterday's platform numbers, then each storefront's traffic allocation
        "task": "distribution.tasks.allocation_recompute_all",
        "schedule": crontab(minute=20, hour=1),
    },
}
