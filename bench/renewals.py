"""Benchmark the renewal sweep: a storefront whose plan is shared with creators renews its due subscriptions.

    python bench/renewals.py [--items N] [--renewals N]
    ./zhiku bench renewals [same options]

Run from the project root. It uses the configured database (DATABASE_URL, or the local default) and a throwaway
storefront ``bench-renew-<random>``: ``--items`` (default 3,000) published paid items, each credited to one of 50
creators, and a whole-catalog plan shared with creators (``SubscriptionPlan.creators_share``), so that every renewal
is divided between every item in the catalog; ``--renewals`` (default 200) learners whose monthly subscription is due.
Then it times one ``subscriptions_sweep``: each renewal is an order with its line (the creators' pieces of the whole
catalog), a pending sandbox payment and an audit row, in a transaction of its own. The shared plan's covered items and
credits are read once per sweep, so the time per renewal does not grow with the catalog. The storefront, its rows and
its learners are deleted afterwards; no payment is taken, so the ledger is not touched.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")  # the renewal emails

import django  # noqa: E402

django.setup()
logging.getLogger("celery").setLevel(logging.WARNING)  # a line per renewal email otherwise

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from catalog.models import ContentItem, Creator, ItemCreator, ItemVersion  # noqa: E402
from marketplace.models import AuditLog, Tenant  # noqa: E402
from marketplace.tenancy import each_tenant  # noqa: E402
from payments.models import (  # noqa: E402
    Entitlement,
    Order,
    OrderLine,
    Payment,
    PaymentSettings,
    SplitRule,
    Subscription,
    SubscriptionPlan,
)
from payments.subscriptions import subscriptions_sweep  # noqa: E402


def seed(tenant: Tenant, *, items: int, renewals: int) -> None:
    now = timezone.now()
    creators = Creator.objects.bulk_create([Creator(tenant=tenant, name=f"Creator {n}", slug=f"creator-{n}")
                                            for n in range(50)])
    rows = ContentItem.objects.bulk_create([ContentItem(
        tenant=tenant, kind="article", title=f"Item {n}", slug=f"item-{n}", price=990 + n % 40 * 100,
        status=ContentItem.Status.PUBLISHED, version=1, published_at=now, language="zh-hans") for n in range(items)])
    ItemCreator.objects.bulk_create([ItemCreator(tenant=tenant, item=row, creator=creators[n % 50], share_bp=5000)
                                     for n, row in enumerate(rows)])
    ItemVersion.objects.bulk_create([ItemVersion(
        tenant=tenant, item=row, number=1, content_hash="0" * 64, snapshot={
            "title": row.title, "price": row.price,
            "creators": [{"creator": creators[n % 50].pk, "name": creators[n % 50].name, "share_bp": 5000}]})
        for n, row in enumerate(rows)])
    plan = SubscriptionPlan.objects.create(tenant=tenant, name="All access", slug="all", price=9900,
                                           creators_share=True)
    learners = User.objects.bulk_create([User(email=f"{tenant.slug}-{n}@bench.invalid") for n in range(renewals)])
    ends = now - timedelta(minutes=1)
    entitlements = Entitlement.objects.bulk_create([Entitlement(
        tenant=tenant, user=user, plan=plan, source=Entitlement.Source.SUBSCRIPTION,
        starts_at=ends - timedelta(days=30), ends_at=ends) for user in learners])
    Subscription.objects.bulk_create([Subscription(
        tenant=tenant, user=user, plan=plan, price=plan.price, currency=tenant.currency, interval="month",
        billing_day=ends.day, current_period_start=ends - timedelta(days=30), current_period_end=ends,
        entitlement=entitlement) for user, entitlement in zip(learners, entitlements, strict=True)])


def delete(tenant: Tenant) -> None:
    for _ in each_tenant([tenant]):
        users = list(Subscription.objects.values_list("user", flat=True))
        Payment.objects.all().delete()
        OrderLine.objects.all().delete()
        Subscription.objects.all().delete()
        Entitlement.objects.all().delete()
        Order.objects.all().delete()
        SubscriptionPlan.objects.all().delete()
        ContentItem.objects.all().delete()
        Creator.objects.all().delete()
        SplitRule.objects.all().delete()
        PaymentSettings.objects.all().delete()
        AuditLog.objects.filter(tenant=tenant).delete()
    User.objects.filter(pk__in=users).delete()
    tenant.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--renewals", type=int, default=200)
    options = parser.parse_args()
    slug = f"bench-renew-{secrets.token_hex(4)}"
    tenant = Tenant.objects.create(slug=slug, name=f"Benchmark {slug}", currency="CNY", default_language="zh-hans")
    try:
        for _ in each_tenant([tenant]):
            seed(tenant, items=options.items, renewals=options.renewals)
        for _ in each_tenant([tenant]):
            started = time.perf_counter()
            counts = subscriptions_sweep(tenant=tenant)
            elapsed = time.perf_counter() - started
            pieces = len(OrderLine.objects.filter(order__source="renewal").first().shares)
        print(f"database: {connection.vendor}; catalog: {options.items} paid items shared by the plan "
              f"({pieces} pieces on each renewal's line, items credited alike merged)")
        opened = counts["renewals_opened"]
        print(f"sweep: {opened} renewals opened in {elapsed:.2f} s "
              f"({opened / elapsed:.0f} renewals/s, {elapsed / opened * 1000:.1f} ms each)")
    finally:
        delete(tenant)
    print("throwaway storefront deleted")


if __name__ == "__main__":
    main()
