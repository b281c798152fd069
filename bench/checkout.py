"""Paid orders per second end to end on PostgreSQL, side by side with pgbench's TPC-B-like script on the same server.

    python bench/checkout.py [--seconds N] [--workers N] [--tenants K] [--rounds N] [--replay-orders N] [--reseed]
    ./zhiku bench checkout [same options]

What it does, in order:

1. Creates its own PostgreSQL database (``zhiku_bench_checkout`` on postgres://postgres@127.0.0.1:5432; set
   BENCH_DATABASE_URL to use another), migrates it, and seeds the storefront "checkout" (plus "checkout-2" ...
   "checkout-K" with ``--tenants K``): 50 paid items, each credited to one or two creators so that every sale has
   creator shares, a 6 % tax included in prices, and learners with a verified email address, topped up so that
   every run has fresh (learner, item) pairs (a learner may buy an item only once). An already seeded database is
   reused; ``--reseed`` drops and rebuilds it, as does a schema that the current migrations cannot reach or a
   ledger left by earlier runs that the current ``ledger_verify`` rejects (code changed since it was written).
2. Buys: each paid order is ``checkout_start`` (order, line, pending sandbox payment) in one tenant transaction,
   then ``webhook_receive`` of the sandbox's signed ``payment.succeeded`` event in a second one (payment and order
   paid, entitlement, split into tax, platform, creator and storefront parts, hash-chained ledger entry, audit
   rows), and the receipt email, which Celery runs in-process after the commit (no REDIS_URL; the locmem email
   backend). Each order is a fresh (learner, item) pair. Configurations: ``--workers`` processes on one storefront,
   each with its own connection, as a web server's worker processes (gunicorn's sync workers) would run them; one
   process, for comparison; and with ``--tenants K`` > 1, the workers spread over K storefronts, whose ledgers (one
   LedgerHead row lock each) do not contend with each other. Each buys for ``--seconds`` in all, in slices taking
   turns with the other configurations and with pgbench (4.).
3. Checks that nothing was lost: every order of the run is paid with exactly one succeeded payment, one
   entitlement, one sale journal entry with creator parts and one webhook event; every entry's postings sum to
   zero; ``ledger_verify`` holds the whole chain; the clearing account holds exactly the paid orders' totals.
4. Runs pgbench on the same PostgreSQL server: ``pgbench -i -s 10`` into ``zhiku_bench_pgbench`` before the
   buying, then the built-in TPC-B-like script (``-M prepared``) with as many clients as the configuration has
   worker processes, in slices alternating with the buying slices (``--rounds``, default 3, of ``--seconds`` /
   rounds each), so that drift in the speed of a shared machine reaches both figures alike. It prints paid orders
   per second against pgbench's transactions per second. The goal is at least 10 % of pgbench's figure, with
   nothing lost; it is judged on the ``--workers`` configuration (over K storefronts when ``--tenants K`` > 1).

5. Measures the database's share: ``--replay-orders`` (default 300) more paid orders are bought in this process
   with every statement captured as sent (literals in place, BEGIN, SAVEPOINT and COMMIT included), then replayed
   verbatim by plain psycopg2 clients, one client and then ``--workers`` clients, each on its own copy of the
   database taken just before those orders, so that every id comes out the same and no two clients share a row or
   a lock: first a statement per round trip, as the ORM sends them, then each transaction's statements in one
   message, as a stored procedure would need no more round trips. This is how fast PostgreSQL runs exactly this
   SQL when no Python builds it, against pgbench's figures from 4.; the one client's waits are broken down by
   statement kind. Every copy must end with as many paid orders as the benchmark database.

While buying, a sampler reads pg_stat_activity every 20 ms and reports where the workers' database sessions are:
running a statement, waiting for a lock (the ledger head), waiting on I/O (commits flushing WAL), or idle while
Python works (inside or between transactions). The buyer processes' CPU time is printed too, in all and per paid
order, with how busy the whole machine was: PostgreSQL, the buyers and pgbench share its CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
import urllib.parse
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_pg import (  # noqa: E402
    BenchError,
    clone_database,
    database_name,
    drop_database,
    ensure_database,
    pg_connect,
    pg_params,
    server_cursor,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/zhiku_bench_checkout"
PGBENCH_DATABASE = "zhiku_bench_pgbench"
PGBENCH_SCALE = 10
SETTINGS_MODULE = "bench.bench_settings"

TENANT_SLUG = "checkout"
ITEMS = 50
FRESH_LEARNERS = 2000  # per storefront, topped up before every run: 100,000 fresh (learner, item) pairs
PRICES = [990, 1990, 2990, 4900, 9900, 19900]
TAX_RATE_BP = 600
CREATOR_NAMES = ["Li Wei", "Wang Fang", "Zhang Min", "Chen Jing", "Anna Smith", "Ben Garcia", "王芳", "李伟",
                 "Carla Müller", "David Tanaka", "张敏", "刘洋"]
GOAL = 0.10
SAMPLE_EVERY = 0.02



def _cell(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (Chinese characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def tenant_slugs(count: int) -> list[str]:
    return [TENANT_SLUG] + [f"{TENANT_SLUG}-{n}" for n in range(2, count + 1)]


# --- the databases -------------------------------------------------------------------------------------------------









def setup_django(database_url: str) -> None:
    """The local settings with DEBUG off (bench.bench_settings) on the benchmark database.

    No REDIS_URL: Celery runs tasks in-process, so the receipt email of every paid order is rendered and "sent"
    (locmem backend) after its commit, inside the measured time, instead of piling up in a queue nobody reads.
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = ""
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# --- seeding -------------------------------------------------------------------------------------------------------

def tenant_seeded(slug: str) -> bool | None:
    """True when the storefront is complete, False when it is there but incomplete, None when it is missing."""
    from django_scopes import scopes_disabled

    from catalog.models import ContentItem, ItemCreator
    from marketplace.models import Tenant

    with scopes_disabled():
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            return None
        items = ContentItem.objects.filter(tenant=tenant, status=ContentItem.Status.PUBLISHED, price__gt=0)
        if items.count() != ITEMS or ItemCreator.objects.filter(tenant=tenant).count() < ITEMS:
            return False
    from marketplace.tenancy import activate
    from payments.ledger import ledger_verify

    with activate(tenant):
        result = ledger_verify(tenant=tenant)
    if not result.ok:  # e.g. entries hashed by an earlier version of payments/ledger.py
        print(f"  {slug}: the ledger left by earlier runs does not verify with the current code (entry "
              f"{result.broken_at}: {result.problem})")
        return False
    return True


def seed_tenant(slug: str) -> None:
    """A storefront with ``ITEMS`` published paid items, every one credited to one or two creators."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone
    from django_scopes import scopes_disabled

    from catalog.models import ContentItem, Creator, ItemCreator
    from marketplace.models import Domain, Tenant
    from payments.models import PaymentSettings, SplitRule

    now = timezone.now()
    with scopes_disabled(), transaction.atomic():
        number = "" if slug == TENANT_SLUG else " " + slug.rsplit("-", 1)[1]
        tenant = Tenant.objects.create(slug=slug, name=f"Checkout Bench 结账{number}", default_language="zh-hans",
                                       currency="CNY")
        Domain.objects.create(tenant=tenant, host=f"{slug}.localhost", is_primary=True)
        PaymentSettings.objects.create(tenant=tenant, tax_rate_bp=TAX_RATE_BP, prices_include_tax=True)
        SplitRule.objects.create(tenant=tenant, version=1, platform_fee_bp=settings.PLATFORM_FEE_BP)
        creators = Creator.objects.bulk_create(
            [Creator(tenant=tenant, name=n, slug=f"creator-{i}", headline="Teacher") for i, n in
             enumerate(CREATOR_NAMES)])
        items = ContentItem.objects.bulk_create([
            ContentItem(tenant=tenant, kind="course" if i % 3 else "article", status=ContentItem.Status.PUBLISHED,
                        title=f"Paid course {i + 1} 付费课程", slug=f"paid-course-{i + 1}", language="zh-hans",
                        price=PRICES[i % len(PRICES)], version=1, published_at=now,
                        search_text=f"paid course {i + 1} 付费课程")
            for i in range(ITEMS)])
        credits = []
        for i, item in enumerate(items):
            first = creators[i % len(creators)]
            if i % 2:  # two creators sharing 50 % of the net after the platform fee, the storefront keeping the rest
                second = creators[(i + 5) % len(creators)]
                credits += [ItemCreator(tenant=tenant, item=item, creator=first, share_bp=3000, position=0),
                            ItemCreator(tenant=tenant, item=item, creator=second, share_bp=2000, position=1)]
            else:
                credits.append(ItemCreator(tenant=tenant, item=item, creator=first, share_bp=5000, position=0))
        ItemCreator.objects.bulk_create(credits)


def fresh_learners(tenant) -> list:
    """The storefront's bench learners who have no order there yet, oldest first."""
    from django_scopes import scopes_disabled

    from accounts.models import User
    from payments.models import Order

    with scopes_disabled():
        used = Order.objects.filter(tenant=tenant).values("user_id")
        return list(User.objects.filter(email__endswith=f"@{tenant.slug}.bench.example",
                                        memberships__tenant=tenant).exclude(pk__in=used).order_by("pk"))


def top_up_learners(tenant, wanted: int) -> tuple[list, int]:
    """At least ``wanted`` fresh learners (users with a verified email and a membership); returns them and how many
    were created now."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django_scopes import scopes_disabled

    from accounts.models import Membership, Role, User

    learners = fresh_learners(tenant)
    missing = wanted - len(learners)
    if missing <= 0:
        return learners, 0
    domain = f"{tenant.slug}.bench.example"
    unusable = make_password(None)  # no sign-in needed; and hashing thousands of real passwords would be slow
    with scopes_disabled(), transaction.atomic():
        start = User.objects.filter(email__endswith=f"@{domain}").count()
        users = User.objects.bulk_create(
            [User(email=f"learner{start + n}@{domain}", password=unusable) for n in range(missing)],
            batch_size=2000)
        EmailAddress.objects.bulk_create(
            [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in users], batch_size=2000)
        Membership.objects.bulk_create([Membership(tenant=tenant, user=u, role=Role.LEARNER) for u in users],
                                       batch_size=2000)
    return fresh_learners(tenant), missing


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- buying --------------------------------------------------------------------------------------------------------

@dataclass
class Shop:
    tenant: object
    items: list
    learners: list
    next_pair: int = 0

    @property
    def pairs(self) -> int:
        return len(self.items) * len(self.learners)


class Pairs:
    """One worker's fresh (tenant, learner, item) triples: round-robin over the shops, and in each shop every
    ``stride``-th pair from the shop's next unused one, starting at ``offset``, so that workers never share a pair."""

    def __init__(self, shops: list[Shop], *, offset: int = 0, stride: int = 1):
        self.shops, self.offset, self.stride = shops, offset, stride
        self.turn = offset
        self.taken = [0] * len(shops)

    def next(self):
        for _ in range(len(self.shops)):
            index = self.turn % len(self.shops)
            shop = self.shops[index]
            self.turn += 1
            k = shop.next_pair + self.offset + self.taken[index] * self.stride
            if k < shop.pairs:
                self.taken[index] += 1
                learner_index = k // len(shop.items)
                item = shop.items[(k + learner_index) % len(shop.items)]
                return shop.tenant, shop.learners[learner_index], item
        return None


def pairs_used(shops: list[Shop], taken: list[list[int]], stride: int) -> None:
    """Move each shop's next unused pair past every pair the workers of a pass took (``taken[worker][shop]``)."""
    for index, shop in enumerate(shops):
        most = max((counts[index] for counts in taken), default=0)
        shop.next_pair = min(shop.pairs, shop.next_pair + most * stride)


@dataclass
class Failure:
    count: int = 0
    where: str = ""
    trace: str = ""


@dataclass
class Pass:
    label: str
    workers: int
    tenants: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    checkout_latencies: list[float] = field(default_factory=list)
    webhook_latencies: list[float] = field(default_factory=list)
    order_ids: dict[int, list[int]] = field(default_factory=dict)  # tenant id -> orders whose checkout returned
    errors: dict[str, Failure] = field(default_factory=dict)
    exhausted: bool = False
    cpu_seconds: float = 0.0
    busy_ticks: int = 0
    all_ticks: int = 0
    sessions: Counter = field(default_factory=Counter)

    def add(self, other: Pass) -> None:
        """Another slice of the same configuration."""
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.checkout_latencies += other.checkout_latencies
        self.webhook_latencies += other.webhook_latencies
        for tenant_id, ids in other.order_ids.items():
            self.order_ids.setdefault(tenant_id, []).extend(ids)
        for key, failure in other.errors.items():
            mine = self.errors.setdefault(key, Failure(where=failure.where, trace=failure.trace))
            mine.count += failure.count
        self.exhausted |= other.exhausted
        self.cpu_seconds += other.cpu_seconds
        self.busy_ticks += other.busy_ticks
        self.all_ticks += other.all_ticks
        self.sessions.update(other.sessions)

    @property
    def machine_busy(self) -> float | None:
        return self.busy_ticks / self.all_ticks if self.all_ticks else None

    @property
    def paid(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.paid / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(f.count for f in self.errors.values())

    @staticmethod
    def percentile(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000


def error_key(exc: BaseException) -> tuple[str, Failure]:
    """How an error is counted (its type, code and message) and where it was raised."""
    code = getattr(exc, "code", "")
    key = f"{type(exc).__module__}.{type(exc).__name__}" + (f" [{code}]" if code else "") + f": {exc}"[:300]
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(ROOT) in f.filename and ".venv" not in f.filename
            and not f.filename.endswith("bench/checkout.py")]
    last = (ours or frames or [None])[-1]
    where = f"{Path(last.filename).relative_to(ROOT) if str(ROOT) in last.filename else last.filename}:" \
            f"{last.lineno} in {last.name}" if last else "?"
    return key, Failure(where=where, trace="".join(traceback.format_exception(exc)))


def checkout(tenant, learner, item):
    """A learner's checkout of one item with the sandbox provider, in the storefront's scope: the order and its
    pending payment (``CheckoutStarted``)."""
    from marketplace.tenancy import activate
    from payments.services import checkout_start

    with activate(tenant):
        return checkout_start(tenant=tenant, user=learner, idempotency_key=uuid.uuid4().hex, item=item,
                              provider_name="sandbox")


def pay(tenant, started) -> None:
    """The sandbox's signed ``payment.succeeded`` webhook for a checkout, applied as a provider's is (the receipt
    follows at its commit)."""
    from marketplace.tenancy import activate
    from payments.services import sandbox_settle

    with activate(tenant):
        outcome = sandbox_settle(tenant=tenant, payment=started.payment, outcome="succeeded")
    if outcome != "applied":
        raise BenchError(f"webhook_receive answered {outcome!r} instead of 'applied'")


def buy(pairs: Pairs, start_at: float, stop_at: float, report) -> None:
    """One worker process: buy fresh pairs until ``stop_at``, each order checkout + signed webhook, then disconnect
    and put what it did on ``report`` (a queue to the parent process)."""
    from django.db import connections

    result = Pass("", 1, len(pairs.shops))

    def record(exc: BaseException) -> None:
        key, failure = error_key(exc)
        result.errors.setdefault(key, failure).count += 1

    cpu_begin = time.process_time()
    try:
        while time.perf_counter() < start_at:
            time.sleep(0.0005)
        cpu_begin = time.process_time()
        while time.perf_counter() < stop_at:
            pair = pairs.next()
            if pair is None:
                result.exhausted = True
                break
            tenant, learner, item = pair
            began = time.perf_counter()
            try:
                started = checkout(tenant, learner, item)
                result.order_ids.setdefault(tenant.pk, []).append(started.order.pk)
                checked_out = time.perf_counter()
                pay(tenant, started)
                done = time.perf_counter()
                result.latencies.append(done - began)
                result.checkout_latencies.append(checked_out - began)
                result.webhook_latencies.append(done - checked_out)
            except Exception as exc:  # counted by type and reported with where it was raised
                record(exc)
    except BaseException as exc:  # the worker itself broke: the parent reports it instead of waiting forever
        record(exc)
    finally:
        result.cpu_seconds = time.process_time() - cpu_begin
        connections.close_all()
        report.put((result, pairs.taken))


class SessionSampler(threading.Thread):
    """Where the benchmark database's client sessions are, sampled from pg_stat_activity every 20 ms."""

    def __init__(self, url: str, dbname: str):
        super().__init__(daemon=True)
        self.url, self.dbname = url, dbname
        self.counts: Counter = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        conn = pg_connect(self.url, "postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                while not self.done.is_set():
                    cursor.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = %s "
                        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()", [self.dbname])
                    for state, wait_type, wait_event in cursor.fetchall():
                        self.counts[_session_kind(state, wait_type, wait_event)] += 1
                    time.sleep(SAMPLE_EVERY)
        finally:
            conn.close()

    def stop(self) -> Counter:
        self.done.set()
        self.join()
        return self.counts


def _session_kind(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    if state == "active":
        if wait_type is None:
            return "running SQL"
        if wait_type == "Lock":
            return f"waiting for a lock ({wait_event})"
        if wait_type in ("IO", "LWLock", "IPC"):
            return f"waiting on {wait_type} ({wait_event})"
        return f"active, {wait_type} ({wait_event})"
    if state == "idle in transaction":
        return "idle in transaction (Python working, or waiting for a CPU)"
    if state == "idle":
        return "idle (Python between transactions)"
    return state or "?"


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine from /proc/stat, or None where there is none."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def machine_busy_now(seconds: float = 1.0) -> float | None:
    """How busy the machine's CPUs are over ``seconds`` while this benchmark does nothing (other processes)."""
    begin = _machine_ticks()
    time.sleep(seconds)
    end = _machine_ticks()
    if not begin or not end or end[1] == begin[1]:
        return None
    return (end[0] - begin[0]) / (end[1] - begin[1])


def run_pass(label: str, shops: list[Shop], *, workers: int, seconds: float, database_url: str) -> Pass:
    """``workers`` processes buying at once for ``seconds``, as a web server's worker processes would."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # a connection must not cross a fork; and it would show as an idle session in the sample
    result = Pass(label, workers, len(shops))
    context = multiprocessing.get_context("fork")
    report = context.Queue()
    sampler = SessionSampler(database_url, database_name(database_url))
    start_at = time.perf_counter() + 0.3
    stop_at = start_at + seconds
    processes = [context.Process(target=buy, name=f"buyer-{n}",
                                 args=(Pairs(shops, offset=n, stride=workers), start_at, stop_at, report))
                 for n in range(workers)]
    for process in processes:
        process.start()
    sampler.start()
    while time.perf_counter() < start_at:
        time.sleep(0.0005)
    ticks_begin = _machine_ticks()
    taken = []
    for _ in processes:  # read before joining: a child with a large report only exits once it is read
        part, counts = report.get()
        taken.append(counts)
        result.add(part)
    # Orders in flight at stop_at finish after it: they count, so the period counts until the last one ends.
    result.seconds = time.perf_counter() - start_at
    for process in processes:
        process.join()
    ticks_end = _machine_ticks()
    if ticks_begin and ticks_end:
        result.busy_ticks, result.all_ticks = ticks_end[0] - ticks_begin[0], ticks_end[1] - ticks_begin[1]
    result.sessions = sampler.stop()
    pairs_used(shops, taken, workers)
    return result


def first_order_queries(shop: Shop) -> tuple[int, int]:
    """Two paid orders before the measured passes: the SQL statements of the second one's checkout transaction and
    of its webhook transaction with the receipt, BEGIN/COMMIT included."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tenant, item = shop.tenant, shop.items[0]
    counts = []
    # The same item for two learners: the first order creates the ledger accounts it books to, the second one's
    # counts are those of every later sale.
    for learner in shop.learners[:2]:
        with CaptureQueriesContext(connection) as checkout_queries:
            started = checkout(tenant, learner, item)
        with CaptureQueriesContext(connection) as webhook_queries:
            pay(tenant, started)
        counts = [len(checkout_queries.captured_queries), len(webhook_queries.captured_queries)]
    shop.learners = shop.learners[2:]  # the warm-up learners have bought: the passes use fresh ones
    return counts[0], counts[1]


# --- the database's share: the same SQL without Python ----------------------------------------------------------

@dataclass
class Replay:
    """Clients sending the captured statements of the same orders, each to its own copy of the database."""

    clients: int
    orders: int
    batched: bool  # one message per transaction instead of one per statement
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    waits: Counter = field(default_factory=Counter)  # statement kind -> seconds until its answer, over all clients
    paid_after: list[int] = field(default_factory=list)  # paid orders in each copy afterwards

    @property
    def rate(self) -> float:
        return self.clients * self.orders / self.seconds if self.seconds else 0.0


def capture_orders(shop: Shop, count: int) -> list[str]:
    """Buy ``count`` fresh orders in this process as a worker does, and return every statement they sent, in order
    and as sent: literals in place, BEGIN, SAVEPOINT and COMMIT included, and the receipt's reads."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pairs = Pairs([shop])
    statements: list[str] = []
    for _ in range(count):
        pair = pairs.next()
        if pair is None:
            raise BenchError("no fresh (learner, item) pair left for the orders whose SQL is replayed")
        tenant, learner, item = pair
        connection.queries_log.clear()  # the log holds 9,000 statements: read one order's at a time
        with CaptureQueriesContext(connection) as queries:
            pay(tenant, checkout(tenant, learner, item))
        statements += [q["sql"] for q in queries.captured_queries]
    pairs_used([shop], [pairs.taken], 1)
    return statements


def statement_kind(sql: str) -> str:
    """What a statement does, for the breakdown: "SELECT payments_payment", "INSERT payments_posting", "COMMIT"."""
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'\b(?:FROM|INTO|UPDATE)\s+"(\w+)"', sql)
    if table and verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        return f"{verb} {table.group(1)}"
    return re.match(r"\w+(?: [a-z_]+| SAVEPOINT)?", sql).group(0)


def by_transaction(statements: list[str]) -> list[str]:
    """The statements joined into one message per transaction, up to and including its COMMIT (or ROLLBACK), as a
    stored procedure or a batching driver would send them: the same SQL in fewer round trips."""
    messages, pending = [], []
    for sql in statements:
        pending.append(sql)
        if sql in ("COMMIT", "ROLLBACK"):
            messages.append(";\n".join(pending))
            pending = []
    return messages + ([";\n".join(pending)] if pending else [])


def paid_orders(cursor) -> int:
    """Paid orders in the database ``cursor`` is on, every storefront's."""
    cursor.execute("SELECT count(*) FROM payments_order WHERE status = 'paid'")
    return cursor.fetchone()[0]


def replay_client(url: str, dbname: str, messages: list[str], kinds: list[str], start_at: float, report) -> None:
    """One client: send ``messages`` one by one as they are, in autocommit (their BEGIN and COMMIT among them),
    and put (seconds, CPU seconds, seconds waited by kind of message, paid orders afterwards) on ``report``."""
    try:
        conn = pg_connect(url, dbname)
        conn.autocommit = True
        waits: Counter = Counter()
        clock = time.perf_counter
        with conn.cursor() as cursor:
            while clock() < start_at:
                time.sleep(0.0005)
            began, cpu = clock(), time.process_time()
            for message, kind in zip(messages, kinds, strict=True):
                sent = clock()
                cursor.execute(message)
                waits[kind] += clock() - sent
            seconds, cpu = clock() - began, time.process_time() - cpu
            paid = paid_orders(cursor)
        conn.close()
        report.put((seconds, cpu, waits, paid))
    except BaseException as exc:  # the parent reports it instead of waiting forever
        key, failure = error_key(exc)
        report.put(f"{key}\n  raised at {failure.where}")


def sql_floor(shop: Shop, *, clients: int, orders: int, database_url: str) -> tuple[list[Replay], int, float]:
    """How fast PostgreSQL runs a paid order's SQL when no Python builds it: ``orders`` paid orders are bought in
    this process with their statements captured, then replayed verbatim by one client and by ``clients`` clients,
    each on its own copy of the database taken before those orders (so every id comes out the same, and no two
    clients share a row or a lock); first a statement per round trip, as the ORM sends them, then a transaction per
    round trip (``by_transaction``). Returns the replays, the source's paid orders afterwards (each copy must end
    with as many) and the statements per order."""
    import multiprocessing

    from django.db import connections

    name = database_name(database_url)
    copies = [f"{name}_replay_{n}" for n in range(2 * (clients + 1))]
    connections.close_all()  # PostgreSQL copies a database only while nobody is connected to it
    for copy in copies:
        clone_database(database_url, name, copy)
    try:
        statements = capture_orders(shop, orders)
        connections.close_all()
        with contextlib.closing(pg_connect(database_url, name)) as conn, conn.cursor() as cursor:
            paid = paid_orders(cursor)
        transactions = by_transaction(statements)
        modes = {False: (statements, [statement_kind(sql) for sql in statements]),
                 True: (transactions, ["transaction"] * len(transactions))}
        context = multiprocessing.get_context("fork")
        replays = []
        unused = iter(copies)
        for batched, clients_now in ((False, 1), (False, clients), (True, 1), (True, clients)):
            group = [next(unused) for _ in range(clients_now)]
            messages, kinds = modes[batched]
            result = Replay(len(group), orders, batched)
            report = context.Queue()
            start_at = time.perf_counter() + 0.3
            processes = [context.Process(target=replay_client, name=f"replay-{copy}",
                                         args=(database_url, copy, messages, kinds, start_at, report))
                         for copy in group]
            for process in processes:
                process.start()
            answers = [report.get() for _ in processes]
            for process in processes:
                process.join()
            for answer in answers:
                if isinstance(answer, str):
                    raise BenchError(f"replaying the captured SQL failed: {answer}")
                seconds, cpu, waits, paid_after = answer
                result.seconds = max(result.seconds, seconds)  # they start together: the last one to finish
                result.cpu_seconds += cpu
                result.waits.update(waits)
                result.paid_after.append(paid_after)
            replays.append(result)
    finally:
        for copy in copies:
            drop_database(database_url, copy)
    return replays, paid, len(statements) / orders


# --- checking that nothing was lost --------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def verify(shops: list[Shop], passes: list[Pass], since) -> list[Check]:
    """Every order of the run complete and booked once, the ledger whole, the clearing account equal to the sales."""
    from django.db.models import Count, F, Q, Sum

    from marketplace.tenancy import activate
    from payments.ledger import ledger_verify
    from payments.models import Entitlement, JournalEntry, LedgerAccount, Order, Payment, Posting, WebhookEvent

    returned = sum(len(ids) for p in passes for ids in p.order_ids.values())
    paid_counted = sum(p.paid for p in passes)
    totals = Counter()
    details: dict[str, list[str]] = {}
    for shop in shops:
        tenant = shop.tenant
        with activate(tenant):
            orders = Order.objects.filter(created_at__gte=since)
            ids = set(orders.values_list("pk", flat=True))
            n = len(ids)
            totals["orders"] += n
            totals["returned missing"] += len({i for p in passes for i in p.order_ids.get(tenant.pk, [])} - ids)
            totals["unpaid"] += orders.exclude(status=Order.Status.PAID, paid_at__isnull=False).count()
            totals["bad payments"] += orders.annotate(
                succeeded=Count("payments", filter=Q(payments__status=Payment.Status.SUCCEEDED)),
                every=Count("payments")).exclude(succeeded=1, every=1).count()
            totals["bad entitlements"] += orders.annotate(
                n=Count("entitlements", filter=Q(entitlements__source=Entitlement.Source.PURCHASE,
                                                 entitlements__revoked_at__isnull=True))).exclude(n=1).count()
            entitled_pairs = Entitlement.objects.filter(order__in=orders, user_id=F("order__user_id"),
                                                        item_id=F("order__lines__item_id")).count()
            totals["entitlement mismatches"] += n - entitled_pairs
            totals["bad sale entries"] += orders.annotate(
                n=Count("journal_entries", filter=Q(journal_entries__kind=JournalEntry.Kind.SALE))).exclude(
                n=1).count()
            sales = JournalEntry.objects.filter(order__in=orders, kind=JournalEntry.Kind.SALE)
            totals["sales without creator parts"] += sales.exclude(
                postings__account__kind=LedgerAccount.Kind.CREATOR).count()
            totals["webhook events"] += WebhookEvent.objects.filter(received_at__gte=since).count()
            totals["unbalanced entries"] += Posting.objects.values("entry").annotate(s=Sum("amount")).exclude(
                s=0).count()
            postings_sum = Posting.objects.aggregate(s=Sum("amount"))["s"] or 0
            totals["postings sum"] += postings_sum
            result = ledger_verify(tenant=tenant)
            totals["ledger entries"] += result.entries
            if not result.ok:
                details.setdefault("ledger", []).append(f"{tenant.slug}: broken at {result.broken_at}: "
                                                        f"{result.problem}")
            clearing = Posting.objects.filter(account__kind=LedgerAccount.Kind.CLEARING).aggregate(
                s=Sum("amount"))["s"] or 0
            sold = Order.objects.filter(paid_at__isnull=False).aggregate(s=Sum("total"))["s"] or 0
            totals["clearing"] += clearing
            totals["sold"] += sold
            if clearing != sold:
                details.setdefault("clearing", []).append(f"{tenant.slug}: clearing {clearing} != paid {sold}")
    warmups = len(shops) * 2
    extra = totals["orders"] - returned - warmups
    checks = [
        Check("every checkout that returned an order left it in the database (and no other order appeared)",
              totals["returned missing"] == 0 and extra == 0,
              f"{returned:,} returned by checkout_start + {warmups} warm-up; {totals['orders']:,} in the database; "
              f"{totals['returned missing']} missing"),
        Check("every order of the run is paid", totals["unpaid"] == 0,
              f"{totals['orders'] - totals['unpaid']:,} of {totals['orders']:,} paid; workers counted "
              f"{paid_counted:,} + {warmups} warm-up"),
        Check("exactly one payment per order, and it succeeded", totals["bad payments"] == 0,
              f"{totals['bad payments']} orders otherwise"),
        Check("one purchase entitlement per order, for its learner and item",
              totals["bad entitlements"] == 0 and totals["entitlement mismatches"] == 0,
              f"{totals['bad entitlements']} orders without exactly one; {totals['entitlement mismatches']} "
              f"for another learner or item"),
        Check("one sale journal entry per order, each with creator parts",
              totals["bad sale entries"] == 0 and totals["sales without creator parts"] == 0,
              f"{totals['bad sale entries']} orders without exactly one; {totals['sales without creator parts']} "
              f"without a creator posting"),
        Check("one applied webhook event per order", totals["webhook events"] == totals["orders"],
              f"{totals['webhook events']:,} events for {totals['orders']:,} orders"),
        Check("postings sum to zero, in every entry and overall",
              totals["unbalanced entries"] == 0 and totals["postings sum"] == 0,
              f"{totals['unbalanced entries']} unbalanced entries; overall sum {totals['postings sum']}"),
        Check("ledger_verify: every storefront's hash chain holds", "ledger" not in details,
              f"{totals['ledger entries']:,} entries checked" + "".join(f"; {d}" for d in details.get("ledger", []))),
        Check("clearing account balance = sum of paid orders' totals", "clearing" not in details,
              f"{totals['clearing'] / 100:,.2f} = {totals['sold'] / 100:,.2f} CNY"
              + "".join(f"; {d}" for d in details.get("clearing", []))),
    ]
    return checks


# --- pgbench -------------------------------------------------------------------------------------------------------

@dataclass
class PgbenchRun:
    clients: int
    tps: float
    latency_ms: float | None
    transactions: int | None
    failed: int | None


@dataclass
class PgbenchTotal:
    """pgbench slices with the same number of clients, each as long as the order slices it alternates with."""

    clients: int
    runs: list[PgbenchRun] = field(default_factory=list)

    @property
    def tps(self) -> float:
        return statistics.fmean(r.tps for r in self.runs)

    @property
    def transactions(self) -> int:
        return sum(r.transactions or 0 for r in self.runs)

    @property
    def failed(self) -> int | None:
        known = [r.failed for r in self.runs if r.failed is not None]
        return sum(known) if known else None

    @property
    def latency_ms(self) -> float | None:
        known = [r.latency_ms for r in self.runs if r.latency_ms is not None]
        return statistics.fmean(known) if known else None


def pgbench_env(url: str) -> tuple[list[str], dict]:
    params = pg_params(url)
    env = dict(os.environ)
    if params["password"]:
        env["PGPASSWORD"] = params["password"]
    return ["-h", params["host"], "-p", str(params["port"]), "-U", params["user"]], env


def pgbench_init(binary: str, url: str) -> float:
    import psycopg2

    ensure_database(url, PGBENCH_DATABASE, drop=True)
    conn_args, env = pgbench_env(url)
    started = time.perf_counter()
    command = [binary, "-i", "-q", "-s", str(PGBENCH_SCALE), *conn_args, PGBENCH_DATABASE]
    done = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        raise BenchError(f"pgbench -i failed ({done.returncode}):\n{done.stderr[-2000:]}")
    try:
        with server_cursor(url) as cursor:
            cursor.execute("CHECKPOINT")  # the load's dirty pages out of the way of what is measured next
    except psycopg2.Error as exc:  # CHECKPOINT needs a superuser or pg_checkpoint; the run goes on without it
        print(f"  (no CHECKPOINT after pgbench -i: {str(exc).strip()})")
    return time.perf_counter() - started


def pgbench_run(binary: str, url: str, *, clients: int, seconds: float) -> PgbenchRun:
    conn_args, env = pgbench_env(url)
    command = [binary, "-c", str(clients), "-j", str(min(2, clients)), "-T", str(max(1, round(seconds))),
               "-M", "prepared", *conn_args, PGBENCH_DATABASE]
    done = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    out = done.stdout

    def number(pattern: str) -> float | None:
        found = re.search(pattern, out, re.MULTILINE)
        return float(found.group(1)) if found else None

    tps = number(r"^tps = ([\d.]+) \(without initial connection time\)")
    if tps is None:
        raise BenchError(f"no 'tps = ... (without initial connection time)' in pgbench's output:\n{out}")
    processed = number(r"^number of transactions actually processed: (\d+)")
    failed = number(r"^number of failed transactions: (\d+)")
    return PgbenchRun(clients, tps, number(r"^latency average = ([\d.]+) ms"),
                      int(processed) if processed is not None else None, int(failed) if failed is not None else None)


# --- the run -------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15,
                        help="measured seconds of each configuration, and of pgbench beside it (default 15)")
    parser.add_argument("--workers", type=int, default=4,
                        help="buyer processes, each with its own connection, and pgbench clients (default 4)")
    parser.add_argument("--tenants", type=int, default=1,
                        help="also buy spread over K storefronts, each with its own ledger (default 1: only one)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="slices each configuration and its pgbench run alternate in (default 3)")
    parser.add_argument("--reseed", action="store_true", help="drop the benchmark database and seed it again")
    parser.add_argument("--replay-orders", type=int, default=300,
                        help="paid orders whose SQL is captured and replayed without Python (default 300; 0: none)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.tenants < 1 or args.rounds < 1 or args.seconds <= 0 or args.replay_orders < 0:
        parser.error("--workers, --tenants and --rounds must be at least 1, --seconds more than 0, "
                     "--replay-orders not negative")
    return args


def load_shops(slugs: list[str]) -> list[Shop]:
    from django_scopes import scopes_disabled

    from catalog.models import ContentItem
    from marketplace.models import Tenant

    shops = []
    for slug in slugs:
        tenant = Tenant.objects.get(slug=slug)
        learners, created = top_up_learners(tenant, FRESH_LEARNERS)
        with scopes_disabled():
            items = list(ContentItem.objects.filter(tenant=tenant, status=ContentItem.Status.PUBLISHED,
                                                    price__gt=0).order_by("pk"))
        if created:
            print(f"  {slug}: {created:,} learners added")
        shops.append(Shop(tenant, items, learners))
    return shops


def print_pass(result: Pass) -> None:
    p = result.percentile
    print(f"  {result.label}: {result.paid:,} paid orders in {result.seconds:.1f} s = {result.rate:.1f}/s; "
          f"latency p50 {p(result.latencies, 0.5):.1f} ms, p95 {p(result.latencies, 0.95):.1f} ms "
          f"(checkout p50 {p(result.checkout_latencies, 0.5):.1f}, webhook + receipt p50 "
          f"{p(result.webhook_latencies, 0.5):.1f}); errors {result.error_count}")
    busy = f", machine {result.machine_busy:.0%} busy" if result.machine_busy is not None else ""
    print(f"    CPU: the buyer processes {result.cpu_seconds / result.seconds:.0%} of one CPU together, "
          f"{result.cpu_seconds * 1000 / max(result.paid, 1):.1f} ms per paid order{busy} "
          f"({os.cpu_count()} CPUs shared with PostgreSQL)")
    samples = sum(result.sessions.values())
    if samples:
        shares = ", ".join(f"{kind} {n / samples:.0%}" for kind, n in result.sessions.most_common())
        print(f"    worker sessions in pg_stat_activity: {shares}")
    if result.exhausted:
        print("    ran out of fresh (learner, item) pairs before the end (more are added on the next run)")


def print_floor(shop: Shop, args: argparse.Namespace, database_url: str, pgbench: dict[str, PgbenchTotal]) -> bool:
    """The same SQL without Python (``sql_floor``), against the pgbench figures measured beside the buying. True
    when every copy of the database ended where the source did."""
    replays, paid, per_order = sql_floor(shop, clients=args.workers, orders=args.replay_orders,
                                         database_url=database_url)
    print()
    print(f"The database's share: the SQL of {args.replay_orders} more paid orders ({per_order:.1f} statements each, "
          f"receipt included), captured as sent and replayed verbatim by plain psycopg2 clients, each on its own copy "
          f"of the database taken before those orders (the same ids; no rows or locks shared):")
    beside = {1: "1 worker, 1 storefront", args.workers: f"{args.workers} workers, 1 storefront"}
    for replay in replays:
        run = pgbench.get(beside.get(replay.clients, ""))
        versus = f", {replay.rate / run.tps:.3f} of pgbench's {run.tps:,.1f} tps with as many clients" if run else ""
        how = "a transaction per round trip" if replay.batched else "a statement per round trip"
        print(f"  {_cell(how, 29)} {replay.clients} client{'s' if replay.clients > 1 else ' '}: "
              f"{replay.rate:7.1f} orders/s{versus}; client CPU "
              f"{replay.cpu_seconds * 1000 / (replay.clients * replay.orders):.1f} ms per order")
    single = replays[0]
    total = sum(single.waits.values())
    top = ", ".join(f"{kind} {seconds / total:.0%}" for kind, seconds in single.waits.most_common(8))
    print(f"  where one client sending a statement per round trip waits (PostgreSQL's work and the round trip), "
          f"{total * 1000 / single.orders:.1f} ms per order: {top}")
    same = all(n == paid for replay in replays for n in replay.paid_after)
    print(f"  {'PASS' if same else 'FAIL'}  every copy ends with the source's {paid:,} paid orders"
          + ("" if same else f": {[n for replay in replays for n in replay.paid_after]}"))
    return same


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    parts = urllib.parse.urlsplit(database_url)
    safe_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # no credentials in the output
    name = database_name(database_url)
    slugs = tenant_slugs(args.tenants)

    print(f"Database: {safe_url} ({'rebuilding' if args.reseed else 'reused when already seeded'})")
    created = ensure_database(database_url, name, drop=args.reseed)
    setup_django(database_url)
    from django.db import DatabaseError, connections

    try:
        migrate()
        states = {slug: tenant_seeded(slug) for slug in slugs}
    except DatabaseError as exc:  # migrations edited since this database was built (renamed, squashed, changed)
        print(f"  the database's schema does not follow the current migrations ({str(exc).strip()[:120]})")
        states = {slugs[0]: False}
    if any(state is False for state in states.values()):
        print("  the database holds an incomplete seed, an outdated schema or an outdated ledger: rebuilding it")
        connections.close_all()
        ensure_database(database_url, name, drop=True)
        migrate()
        states = dict.fromkeys(slugs)
    started = time.perf_counter()
    for slug, state in states.items():
        if state is None:
            seed_tenant(slug)
            print(f"  seeded {slug}: {ITEMS} paid items, {len(CREATOR_NAMES)} creators, tax {TAX_RATE_BP / 100:g} % "
                  "included")
    shops = load_shops(slugs)
    analyze()
    if created or any(state is None for state in states.values()):
        print(f"  seeding took {time.perf_counter() - started:.1f} s")
    print(f"  fresh learners: {', '.join(f'{s.tenant.slug} {len(s.learners):,}' for s in shops)} "
          f"(x {ITEMS} items = {sum(s.pairs for s in shops):,} fresh pairs)")

    binary = shutil.which("pgbench")
    if binary is None:
        print("\npgbench was not found on PATH (it comes with the PostgreSQL client tools, e.g. the "
              "postgresql-client package): the pgbench comparison is skipped.")
    else:
        took = pgbench_init(binary, database_url)
        print(f"pgbench: {PGBENCH_DATABASE} initialised at scale {PGBENCH_SCALE} in {took:.1f} s ({binary})")

    from django.utils import timezone

    since = timezone.now()
    checkout_sql, webhook_sql = first_order_queries(shops[0])
    for shop in shops[1:]:
        first_order_queries(shop)
    print()
    print(f"SQL statements per paid order (BEGIN/COMMIT included): checkout {checkout_sql}, webhook with entitlement, "
          f"splits, ledger and receipt {webhook_sql}")
    configs = [(f"{args.workers} workers, 1 storefront", shops[:1], args.workers),
               ("1 worker, 1 storefront", shops[:1], 1)]
    if args.tenants > 1:
        configs.append((f"{args.workers} workers, {args.tenants} storefronts", shops, args.workers))
    slice_seconds = max(1, round(args.seconds / args.rounds))
    busy = machine_busy_now()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {os.cpu_count()} CPUs shared by this process, PostgreSQL and pgbench; before the run "
          f"{f'{busy:.0%}' if busy is not None else '?'} busy with other processes (load average {load:.2f})")
    print(f"Each configuration buys in {args.rounds} slices of {slice_seconds} s, each followed by a pgbench slice "
          f"as long with as many clients (TPC-B-like, -M prepared, -j min(2, clients)), so both see the same machine")
    passes = {label: Pass(label, workers, len(subset)) for label, subset, workers in configs}
    pgbench: dict[str, PgbenchTotal] = {}  # configuration -> the pgbench slices alternating with its own
    for number in range(1, args.rounds + 1):
        for label, subset, workers in configs:
            part = run_pass(label, subset, workers=workers, seconds=slice_seconds, database_url=database_url)
            passes[label].add(part)
            line = f"  round {number}: {_cell(label, 26)} {part.rate:7.1f} paid orders/s, {part.error_count} errors"
            if binary is not None:
                run = pgbench_run(binary, database_url, clients=workers, seconds=slice_seconds)
                pgbench.setdefault(label, PgbenchTotal(workers)).runs.append(run)
                line += f" | pgbench {workers} client{'s' if workers > 1 else ''} {run.tps:9,.1f} tps"
            print(line)
    print()
    for result in passes.values():
        print_pass(result)
    for label, total in pgbench.items():
        failed = f", {total.failed} failed" if total.failed is not None else ""
        print(f"  pgbench beside {label}: {total.clients} client{'s' if total.clients > 1 else ''}, "
              f"{total.tps:,.1f} tps (latency average {total.latency_ms:.3f} ms, {total.transactions:,} "
              f"transactions{failed})")
    passes = list(passes.values())

    print()
    print("Nothing lost (orders of this run; ledger and clearing account over each storefront's whole history):")
    checks = verify(shops, passes, since)
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    nothing_lost = all(c.ok for c in checks)
    errors = sum(p.error_count for p in passes)
    if args.replay_orders:
        nothing_lost &= print_floor(shops[0], args, database_url, pgbench)

    print()
    print(f"Paid orders end to end (checkout + signed webhook: order, payment, entitlement, splits, ledger, receipt) "
          f"against pgbench TPC-B-like on the same server; goal: orders/s >= {GOAL:.0%} of pgbench tps with as many "
          "clients")
    head = (f"{'run':<28} {'orders':>7} {'orders/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'errors':>6} "
            f"{'pgbench tps':>12} {'ratio':>6}  {'goal':<5}")
    print(head)
    print("-" * len(head))
    goal_row = passes[2] if args.tenants > 1 else passes[0]
    goal_met = None
    for result in passes:
        run = pgbench.get(result.label)
        ratio = result.rate / run.tps if run else None
        verdict = "-" if ratio is None else ("PASS" if ratio >= GOAL else "BELOW")
        if result is goal_row:
            goal_met = None if ratio is None else ratio >= GOAL
        print(f"{_cell(result.label, 28)} {result.paid:>7,} {result.rate:>9.1f} "
              f"{result.percentile(result.latencies, 0.5):>7.1f} {result.percentile(result.latencies, 0.95):>7.1f} "
              f"{result.error_count:>6} {(f'{run.tps:,.1f}' if run else 'skipped'):>12} "
              f"{(f'{ratio:.3f}' if ratio is not None else '-'):>6}  {verdict:<5}")
    for result in passes:
        for key, failure in result.errors.items():
            print(f"\n{result.label}: {failure.count} x {key}\n  raised at {failure.where}\n"
                  + "\n".join("    " + line for line in failure.trace.rstrip().splitlines()[-25:]))
    print()
    if goal_met is None:
        print(f"Throughput goal (>= {GOAL:.0%} of pgbench, {goal_row.label}): not judged, pgbench did not run")
    else:
        print(f"Throughput goal (>= {GOAL:.0%} of pgbench, {goal_row.label}): {'met' if goal_met else 'NOT met'}")
    print(f"Nothing lost: {'yes' if nothing_lost else 'NO'}; orders that failed with an error: {errors}")
    return 0 if goal_met is not False and nothing_lost and not errors else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nbench/checkout.py: {exc}", file=sys.stderr)
        sys.exit(2)
