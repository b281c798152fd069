"""Push throughput: 10,000 deliveries to a local webhook receiver on 2 Celery workers, beside a no-op task.

    python bench/distribution.py [--pushes 10000] [--workers 2] [--concurrency 4]

Needs PostgreSQL and Redis (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/zhiku_bench_distribution;
BENCH_REDIS_URL, default redis://127.0.0.1:6379/5, a database of its own so that the broker's bookkeeping is only
this benchmark's). It migrates its database, makes a storefront with 100 published items and 100 webhook channels
(so 10,000 deliveries, each a distinct (item, channel) pair adapted and signed on its own), starts ``--workers``
Celery worker processes (thread pool, ``--concurrency`` each) on a queue of its own, and measures, in the same run and
on the same Redis:

1. **no-op**: 10,000 ``bench.noop`` tasks, from the first enqueue until the queue is drained and every message acked;
2. **push**: the dispatcher queues the 10,000 due deliveries; from then until every delivery is recorded as
   delivered. Each push claims its row, adapts the item, POSTs a signed Standard Webhooks request, and records the
   attempt and the outcome: two transactions and one HTTP request.

The receiver (a thread of this process) verifies every signature and deduplicates by message id; the benchmark
reports lost deliveries (not delivered, or never received) and duplicates (a message id accepted twice). The goal:
the push rate is at least half the no-op rate, with none lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pg import database_name, ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/zhiku_bench_distribution"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0x"  # noqa: S105  (the local receiver's test secret)


def setup(database_url: str, redis_url: str, queue: str) -> dict:
    env = {"DJANGO_SETTINGS_MODULE": "marketplace.settings.local", "DATABASE_URL": database_url,
           "REDIS_URL": redis_url, "CELERY_TASK_DEFAULT_QUEUE": queue, "DISTRIBUTION_ALLOWED_NETWORKS": "127.0.0.0/8",
           "DISTRIBUTION_LEASE_SECONDS": "600", "LOG_LEVEL": "WARNING", "DJANGO_DEBUG": "false"}
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return env


def seed(items: int, channels: int, receiver_url: str):
    from django.utils import timezone
    from django_scopes import scopes_disabled

    from catalog import services as catalog
    from catalog.models import ContentItem
    from distribution.credentials import encrypt
    from distribution.models import Channel, Delivery
    from marketplace.models import Domain, Tenant
    from marketplace.tenancy import tenant_phase

    slug = f"dist-{uuid.uuid4().hex[:6]}"
    tenant = Tenant.objects.create(slug=slug, name="Distribution bench")
    Domain.objects.create(tenant=tenant, host=f"{slug}.bench.test", is_primary=True)
    with tenant_phase(tenant):
        for i in range(items):
            item = ContentItem(tenant=tenant, kind="article", title=f"数据科学入门 {i}", slug=f"item-{i}",
                               description="从零开始学习**数据科学**。" * 5, body="正文。" * 200)
            catalog.item_refresh_derived(item=item, save=False)
            item.save()
            catalog.item_submit(item=item, actor=None)
            catalog.item_approve(item=item, actor=None)  # no channels yet: nothing planned
    with scopes_disabled():
        channels = Channel.objects.bulk_create([
            Channel(tenant=tenant, name=f"Receiver {i}", kind="webhook", endpoint_url=receiver_url,
                    credentials_encrypted=encrypt({"signing_secret": SECRET})) for i in range(channels)])
        # The deliveries a publication to these channels plans, written at once so that nothing is dispatched
        # before the timed run starts.
        now = timezone.now()
        Delivery.objects.bulk_create([
            Delivery(tenant=tenant, channel=channel, item=item, version=item.version, action="publish", due_at=now)
            for item in ContentItem.objects.filter(tenant=tenant) for channel in channels], batch_size=2000)
    return tenant


def start_workers(env: dict, queue: str, workers: int, concurrency: int) -> list[subprocess.Popen]:
    processes = []
    for i in range(workers):
        processes.append(subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "-P", "threads", "-c", str(concurrency),
             "-Q", queue, "-n", f"bench{i}-{uuid.uuid4().hex[:4]}@%h", "--include", "bench.bench_tasks",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return processes


def wait_ready(queue: str, processes, timeout: float = 120) -> None:
    """Warm-up: a few no-op tasks must come back before anything is timed."""
    from bench.bench_tasks import noop

    results = [noop.apply_async(queue=queue) for _ in range(len(processes) * 4)]
    deadline = time.monotonic() + timeout
    for result in results:
        result.get(timeout=max(1, deadline - time.monotonic()))


def redis_drained(client, queue: str) -> bool:
    return client.llen(queue) == 0 and client.hlen("unacked") == 0


def run_noop(n: int, queue: str, redis_url: str) -> float:
    import redis

    from bench.bench_tasks import noop

    client = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    for _ in range(n):
        noop.apply_async(queue=queue)
    while not redis_drained(client, queue):
        time.sleep(0.02)
    return n / (time.perf_counter() - started)


def run_push(tenant, ids_count: int) -> tuple[float, dict]:
    from django.db.models import Count
    from django_scopes import scopes_disabled

    from distribution.models import Delivery
    from distribution.services import deliveries_dispatch
    from marketplace.tenancy import tenant_phase

    started = time.perf_counter()
    queued = 0
    while True:  # the dispatcher queues up to DISPATCH_BATCH rows per call, as beat would call it again
        with tenant_phase(tenant):
            batch = deliveries_dispatch(tenant=tenant)  # enqueues on commit, at the end of this block
        if not batch:
            break
        queued += batch
    assert queued == ids_count, f"dispatched {queued} of {ids_count}"
    while True:
        with scopes_disabled():
            statuses = dict(Delivery.objects.filter(tenant=tenant).values_list("status").annotate(n=Count("id")))
        if statuses.get("delivered", 0) + statuses.get("parked", 0) >= ids_count:
            break
        time.sleep(0.05)
    return ids_count / (time.perf_counter() - started), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    ensure_database(database_url, database_name(database_url), drop=False)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = setup(database_url, redis_url, queue)

    sys.path.insert(0, str(ROOT / "tests" / ".."))
    from tests.support.webhook_receiver import WebhookReceiver

    items = 100
    channels = max(1, args.pushes // items)
    total = items * channels
    with WebhookReceiver(SECRET) as receiver:
        print(f"seeding {items} items x {channels} channels ...", flush=True)
        tenant = seed(items, channels, receiver.url)
        processes = start_workers(env, queue, args.workers, args.concurrency)
        try:
            wait_ready(queue, processes)
            noop_rate = run_noop(total, queue, redis_url)
            print(f"no-op: {noop_rate:,.0f} tasks/s", flush=True)
            push_rate, statuses = run_push(tenant, total)
            print(f"push:  {push_rate:,.0f} deliveries/s", flush=True)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
        from django_scopes import scopes_disabled

        from distribution.models import Delivery

        with scopes_disabled():
            expected = {d.webhook_id for d in Delivery.objects.filter(tenant=tenant).only("pk", "tenant_id")}
        lost = len(expected - set(receiver.received)) + (total - statuses.get("delivered", 0))
        duplicated = sum(1 for n in receiver.arrivals.values() if n > 1)
    print(json.dumps({"pushes": total, "workers": args.workers, "concurrency": args.concurrency,
                      "noop_per_s": round(noop_rate, 1), "push_per_s": round(push_rate, 1),
                      "ratio": round(push_rate / noop_rate, 3), "lost": lost, "duplicated": duplicated,
                      "goal_met": push_rate >= noop_rate / 2 and lost == 0 and duplicated == 0}))


if __name__ == "__main__":
    main()
