"""The nightly fit on a real Celery worker: two beats' tasks for one date make one run."""

import time

import pytest
from django_scopes import scopes_disabled

from recommender.models import FitRun, Recommendation
from recommender.tasks import recommender_fit
from tests.factories import TenantFactory, member
from tests.marketplace.test_worker import worker  # noqa: F401  (the fixture)
from tests.recommender.test_fitting import RUN_DATE, _behave, _items

pytestmark = pytest.mark.worker


def test_two_deliveries_of_the_nightly_task_fit_once(worker):  # noqa: F811
    queue, _outbox, process = worker
    tenant = TenantFactory(slug="delta", name="Delta School", domain="delta.test")
    data, art = _items(tenant, "Data", 6), _items(tenant, "Art", 6)
    _behave(tenant, [member(tenant) for _ in range(15)], data, seen=4)
    _behave(tenant, [member(tenant) for _ in range(15)], art, seen=4)
    for _ in range(2):  # a second beat, or the broker re-delivering the task
        recommender_fit.apply_async(kwargs={"tenant_id": tenant.pk, "run_date": RUN_DATE.isoformat()}, queue=queue)
    deadline = time.monotonic() + 120
    with scopes_disabled():
        runs = FitRun.objects.filter(tenant=tenant)
        while time.monotonic() < deadline and not runs.filter(status=FitRun.Status.SUCCEEDED).exists():
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.5)
        time.sleep(2)  # let the second delivery run too
        assert runs.count() == 1
        run = runs.get()
        assert run.status == FitRun.Status.SUCCEEDED and run.served, run.note
        assert Recommendation.objects.filter(run=run).count() == 30
