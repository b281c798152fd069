"""Reliability on real Celery workers and Redis: every delivery arrives exactly once at a receiver that fails at
random, and a worker killed with SIGKILL in the middle of a push loses nothing and duplicates nothing."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_scopes import scopes_disabled

from distribution.credentials import encrypt
from distribution.models import Channel, Delivery, DeliveryAttempt
from distribution.tasks import deliveries_dispatch_task
from marketplace.celery import app
from tests.factories import TenantFactory, catalog_item
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
N = 1000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
pytestmark = pytest.mark.worker


@pytest.fixture
def workers(transactional_db):
    """Start Celery workers on a queue of this test's own (every task they send goes there too)."""
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL): the workers share the test database")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="marketplace.settings.test", CELERY_TASK_ALWAYS_EAGER="false",
               CELERY_TASK_DEFAULT_QUEUE=queue, DISTRIBUTION_RETRY_BASE_SECONDS="0.05",
               DISTRIBUTION_RETRY_CAP_SECONDS="0.5", DISTRIBUTION_MAX_ATTEMPTS="25", DISTRIBUTION_LEASE_SECONDS="4",
               DISTRIBUTION_QUEUE_LEASE_SECONDS="30",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    started = []

    def start(*, pool: str = "threads", concurrency: int = 4):
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "-P", pool, "-c", str(concurrency),
             "-Q", queue, "-n", f"{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return process

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield queue, start
    app.conf.task_always_eager = previous
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def backlog(tenant, receiver_url: str, n: int) -> list[int]:
    """``n`` due deliveries of one published item to ``n`` webhook channels."""
    item = catalog_item(tenant, title="Broadcast")
    with scopes_disabled():
        channels = Channel.objects.bulk_create([
            Channel(tenant=tenant, name=f"Receiver {i}", kind="webhook", endpoint_url=receiver_url,
                    credentials_encrypted=encrypt({"signing_secret": SECRET})) for i in range(n)])
        rows = Delivery.objects.bulk_create([
            Delivery(tenant=tenant, channel=c, item=item, version=item.version, action="publish",
                     due_at=timezone.now()) for c in channels])
    return [d.pk for d in rows]


def run_until_settled(tenant, queue, ids, *, processes, timeout: float) -> dict[str, int]:
    """Play beat: ask for a dispatch every second until every delivery has settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, process.stdout.read()
        deliveries_dispatch_task.apply_async(kwargs={"tenant_id": tenant.pk}, queue=queue)
        time.sleep(1)
        with scopes_disabled():
            open_rows = Delivery.objects.filter(pk__in=ids).exclude(status__in=["delivered", "parked"]).count()
        if not open_rows:
            break
    with scopes_disabled():
        return dict(Delivery.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id")))


def test_a_thousand_deliveries_to_a_flaky_receiver_all_arrive_exactly_once(workers):
    queue, start = workers
    tenant = TenantFactory(slug="flaky", name="Flaky Receivers", domain="flaky.test")
    with WebhookReceiver(SECRET, failure_rate=0.3, seed=7) as receiver:
        ids = backlog(tenant, receiver.url, N)
        processes = [start(), start()]
        statuses = run_until_settled(tenant, queue, ids, processes=processes, timeout=240)
    assert statuses == {"delivered": N}
    with scopes_disabled():
        expected = {d.webhook_id for d in Delivery.objects.filter(pk__in=ids)}
        failed_tries = DeliveryAttempt.objects.filter(delivery_id__in=ids, outcome="transient").count()
        ok_tries = DeliveryAttempt.objects.filter(delivery_id__in=ids, outcome="ok").count()
    assert set(receiver.received) == expected
    assert set(receiver.arrivals.values()) == {1}  # each message accepted once: no duplicate delivery
    assert ok_tries == N
    # About 30 % of requests failed and were retried: the log shows every one of them.
    assert 0.2 < failed_tries / (failed_tries + ok_tries) < 0.4
    assert failed_tries == len(receiver.requests) - N


def test_a_worker_killed_mid_push_loses_and_duplicates_nothing(workers):
    queue, start = workers
    tenant = TenantFactory(slug="killed", name="Killed Worker", domain="killed.test")
    with WebhookReceiver(SECRET, delay=1.5) as receiver:
        ids = backlog(tenant, receiver.url, 12)
        victim = start(pool="solo", concurrency=1)
        deliveries_dispatch_task.apply_async(kwargs={"tenant_id": tenant.pk}, queue=queue)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(receiver.requests) < 2:
            assert victim.poll() is None, victim.stdout.read()
            time.sleep(0.05)
        assert receiver.requests, "the worker never pushed"
        os.kill(victim.pid, signal.SIGKILL)  # in the middle of a push: the receiver is holding its request
        victim.wait(timeout=10)
        with scopes_disabled():
            interrupted = list(Delivery.objects.filter(pk__in=ids, status="sending").values_list("pk", flat=True))
        assert interrupted, "no push was in flight when the worker died"
        statuses = run_until_settled(tenant, queue, ids, processes=[start()], timeout=120)
    assert statuses == {"delivered": 12}
    with scopes_disabled():
        expected = {d.webhook_id for d in Delivery.objects.filter(pk__in=ids)}
        log = list(DeliveryAttempt.objects.filter(delivery_id__in=interrupted).order_by("id")
                   .values_list("delivery_id", "outcome", "finished_at"))
    assert set(receiver.received) == expected
    # The receiver may have seen the interrupted push and its retry (same message id): it kept one.
    assert len(receiver.received) == 12
    for pk in interrupted:
        outcomes = [(outcome, finished is not None) for d, outcome, finished in log if d == pk]
        assert outcomes[0] == ("started", False) and outcomes[-1] == ("ok", True), outcomes
