"""The nightly recommender job at scale, on PostgreSQL: time and peak memory per stage at 1/4, 1/2 and full size.

    python bench/recsys_scale.py [--sizes 0.25,0.5,1] [--reseed]
    ./zhiku bench recsys_scale [same options]

Full size is one synthetic storefront of 100,000 learners x 10,000 items x 2,000,000 behaviour events, with skewed
item popularity (Zipf) and learner activity (log-normal), tastes clustered by category, and events spread over 120
days. Each size is its own storefront in the database ``zhiku_bench_recsys`` (postgres://postgres@127.0.0.1:5432;
BENCH_DATABASE_URL to use another), seeded once with COPY and reused afterwards (``--reseed`` rebuilds).

For each size the real nightly job (``recommender.fitting.fit_run``, the code the Celery beat task runs) is started
in a fresh process, so that its peak memory is its own: it reads the events, builds the matrix, fits and evaluates
every candidate model on the time-based holdout, refits the winner, writes the top-20 for every learner and 20
similar items per item where serving reads them. The job records each stage's time and the process's peak
resident memory in its ``FitRun``; this script prints them. Goal: at most 90 s and 2 GiB for the full size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_pg import database_name, ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/zhiku_bench_recsys"
FULL = {"learners": 100_000, "items": 10_000, "events": 2_000_000}
CATEGORIES = 40
GOAL_SECONDS, GOAL_MB = 90.0, 2048
KINDS = ["view"] * 55 + ["preview"] * 15 + ["purchase"] * 10 + ["progress"] * 10 + ["complete"] * 5 + ["rate"] * 3 \
    + ["share"] * 2


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def slug_for(size: float) -> str:
    return f"recsys-{int(size * 100):03d}"


def seeded(slug: str) -> bool:
    from django_scopes import scopes_disabled

    from marketplace.models import Tenant
    from recommender.models import Event

    with scopes_disabled():
        tenant = Tenant.objects.filter(slug=slug).first()
        return tenant is not None and Event.objects.filter(tenant=tenant).exists()


def seed(size: float) -> None:
    """One storefront at ``size`` of full scale, written with COPY (users, items, categories, events)."""
    import numpy as np
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone
    from django_scopes import scopes_disabled

    from accounts.models import Membership, User
    from catalog.models import Category, ContentItem
    from marketplace.models import Domain, Tenant

    slug = slug_for(size)
    learners, items, events = (int(FULL[k] * size) for k in ("learners", "items", "events"))
    rng = np.random.default_rng(int(size * 1000))
    started = time.perf_counter()
    now = timezone.now()
    with scopes_disabled(), transaction.atomic():
        tenant = Tenant.objects.create(slug=slug, name=f"Recommender bench {size:g}", currency="CNY")
        Domain.objects.create(tenant=tenant, host=f"{slug}.localhost", is_primary=True)
        categories = Category.objects.bulk_create([Category(tenant=tenant, name=f"Subject {c}", slug=f"s{c}")
                                                   for c in range(CATEGORIES)])
        item_category = rng.integers(0, CATEGORIES, size=items)
        levels = np.array(["beginner", "intermediate", "advanced"])[rng.integers(0, 3, size=items)]
        words = ["python", "数据", "design", "设计", "finance", "金融", "history", "历史", "music", "音乐"]
        objs = ContentItem.objects.bulk_create([
            ContentItem(tenant=tenant, kind="article", status=ContentItem.Status.PUBLISHED,
                        title=f"{words[int(item_category[i]) % len(words)]} {i} 课程", slug=f"item-{i}",
                        description=f"Subject {int(item_category[i])} {words[(i * 7) % len(words)]}",
                        level=str(levels[i]), price=int(rng.choice([0, 990, 1990, 4900, 9900])), version=1,
                        published_at=now) for i in range(items)], batch_size=2000)
        through = ContentItem.categories.through
        through.objects.bulk_create([through(contentitem_id=o.pk, category_id=categories[int(item_category[i])].pk)
                                     for i, o in enumerate(objs)], batch_size=5000)
        item_ids = np.array([o.pk for o in objs], dtype=np.int64)

        password = make_password(None)
        buffer = io.StringIO()
        for n in range(learners):
            buffer.write(f"{password}\tf\tf\tt\t{now.isoformat()}\t\t\tlearner{n}@{slug}.bench\t\n")
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {User._meta.db_table} (password, is_superuser, is_staff, is_active, date_joined, first_name, "
                f"last_name, email, display_name) FROM STDIN", buffer)
        user_ids = np.array(User.objects.filter(email__endswith=f"@{slug}.bench").order_by("pk")
                            .values_list("pk", flat=True), dtype=np.int64)
        Membership.objects.bulk_create([Membership(tenant=tenant, user_id=int(u), role="learner") for u in user_ids],
                                       batch_size=5000)

        # Skew: learner activity log-normal, item popularity Zipf within each learner's favourite categories.
        activity = rng.lognormal(0, 1.0, size=learners)
        per_user = np.maximum(1, np.round(activity / activity.sum() * events)).astype(np.int64)
        per_user[-1] += events - per_user.sum()
        per_user = np.maximum(per_user, 1)
        users = np.repeat(np.arange(learners), per_user)[:events]
        favourite = rng.integers(0, CATEGORIES, size=learners)
        in_category = [np.flatnonzero(item_category == c) for c in range(CATEGORIES)]
        zipf_rank = rng.zipf(1.3, size=len(users)) - 1
        on_taste = rng.random(len(users)) < 0.8
        chosen = np.empty(len(users), dtype=np.int64)
        cats = favourite[users]
        for c in range(CATEGORIES):
            mask = on_taste & (cats == c)
            pool = in_category[c]
            chosen[mask] = pool[np.minimum(zipf_rank[mask], len(pool) - 1)]
        off = ~on_taste
        chosen[off] = np.minimum(zipf_rank[off], items - 1)
        kinds = np.array(KINDS)[rng.integers(0, len(KINDS), size=len(users))]
        seconds_ago = rng.uniform(0, 120 * 86400, size=len(users))
        stamp = now.timestamp()
        buffer = io.StringIO()
        chunk = 200_000
        with connection.cursor() as cursor:
            for start in range(0, len(users), chunk):
                buffer.seek(0)
                buffer.truncate()
                ids = rng.integers(0, 2**63 - 1, size=min(chunk, len(users) - start))
                for j, k in enumerate(range(start, min(start + chunk, len(users)))):
                    value = "3" if kinds[k] == "rate" else "\\N"
                    at = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(stamp - seconds_ago[k]))
                    buffer.write(f"{tenant.pk}\t{ids[j]:032x}\t{user_ids[users[k]]}\t{item_ids[chosen[k]]}\t"
                                 f"{kinds[k]}\tstorefront\t{value}\t{{}}\t{at}\n")
                buffer.seek(0)
                cursor.cursor.copy_expert(
                    "COPY recommender_event (tenant_id, event_id, user_id, item_id, kind, source, value, context, "
                    "occurred_at) FROM STDIN", buffer)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE recommender_event")
    print(f"  seeded {slug}: {learners:,} learners, {items:,} items, {len(users):,} events "
          f"in {time.perf_counter() - started:.0f} s")


def fit_in_this_process(slug: str) -> None:
    """The child: run the real nightly job once (forced, so re-runs of the benchmark fit again) and print JSON."""
    from django.utils import timezone

    from marketplace.models import Tenant
    from recommender.fitting import fit_run

    tenant = Tenant.objects.get(slug=slug)
    started = time.perf_counter()
    run = fit_run(tenant=tenant, run_date=timezone.localdate(), force=True)
    total = time.perf_counter() - started
    import resource

    print(json.dumps({"slug": slug, "total_s": round(total, 2),
                      "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "stages": run.stages, "results": run.results, "winner": run.winner, "served": run.served,
                      "learners": run.learners, "items": run.items, "interactions": run.interactions}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.25,0.5,1")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--fit", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    if args.fit:
        setup_django(url)
        fit_in_this_process(args.fit)
        return
    name = database_name(url)
    ensure_database(url, name, drop=args.reseed)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    sizes = [float(s) for s in args.sizes.split(",")]
    for size in sizes:
        if not seeded(slug_for(size)):
            seed(size)
    reports = []
    for size in sizes:
        print(f"\nfitting {slug_for(size)} ({size:g} of full size) in a fresh process ...", flush=True)
        child = subprocess.run(  # noqa: S603  (this script, with a slug it made)
            [sys.executable, __file__, "--fit", slug_for(size)], capture_output=True, text=True,
            env={**os.environ, "BENCH_DATABASE_URL": url})
        if child.returncode != 0:
            print(child.stdout, child.stderr)
            raise SystemExit(f"the fit of {slug_for(size)} failed")
        report = json.loads(child.stdout.strip().splitlines()[-1])
        report["size"] = size
        reports.append(report)
        print(f"  {report['learners']:,} learners x {report['items']:,} items, {report['interactions']:,} "
              f"interactions: {report['total_s']:.1f} s, peak {report['peak_mb']:,} MB; best {report['winner']} "
              f"({'served' if report['served'] else 'not served'})")
        for stage, figures in report["stages"].items():
            extra = ", ".join(f"{k} {v}" for k, v in figures.items() if k not in ("seconds", "peak_mb"))
            print(f"    {stage:<9} {figures['seconds']:>7.2f} s   peak so far {figures['peak_mb']:>6,} MB"
                  + (f"   ({extra})" if extra else ""))
        for row in report["results"]:
            print(f"    holdout {row['model']:<11} NDCG@10 {row['ndcg@10']:.4f}  Recall@20 {row['recall@20']:.4f}  "
                  f"coverage@10 {row['coverage@10']:.3f}  fit {row['fit_s']:.1f} s")

    print("\nGrowth (time and peak memory of the whole job):")
    for report in reports:
        print(f"  {report['size']:>5g} x   {report['total_s']:>7.1f} s   {report['peak_mb']:>6,} MB")
    full = next((r for r in reports if r["size"] == 1.0), None)
    if full is not None:
        ok = full["total_s"] <= GOAL_SECONDS and full["peak_mb"] <= GOAL_MB
        print(f"\nGoal at full size: <= {GOAL_SECONDS:.0f} s and <= {GOAL_MB} MB: "
              f"{full['total_s']:.1f} s, {full['peak_mb']:,} MB -> {'met' if ok else 'NOT met'}")
    print(json.dumps([{k: r[k] for k in ("size", "total_s", "peak_mb", "winner")} for r in reports]))


if __name__ == "__main__":
    main()
