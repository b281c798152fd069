"""Storefront throughput: home, listing and item pages on PostgreSQL with 10,000 items, against a bare Django view.

    python bench/storefront.py [--seconds N] [--warmup N] [--rounds N] [--concurrency N] [--workers N]
                               [--threads N] [--reseed]
    ./zhiku bench storefront [same options]

What it does, in order:

1. Creates its own PostgreSQL database (``zhiku_bench`` on postgres://postgres@127.0.0.1:5432; set
   BENCH_DATABASE_URL to use another), migrates it, and seeds two storefronts: "bench" (bench.localhost) with
   10,000 published items and "bench-small" (bench-small.localhost) with 10. An already seeded database is reused;
   ``--reseed`` drops and rebuilds it.
2. Counts the SQL queries of every page in-process (django.test.Client), uncached and cached, on both storefronts:
   a listing's count must not depend on how many items it shows.
3. Starts gunicorn on a free port of 127.0.0.1 with bench.bench_settings (the local settings, DEBUG off, plus the
   bare view ``/bench/bare/``) and Redis as the cache when it answers (BENCH_REDIS_URL, default
   redis://127.0.0.1:6379/0, keys under the prefix "zhiku-bench"), then drives each URL with keep-alive
   connections for a warm-up and a measured period, and prints requests per second, p50 and p95 latency and the
   ratio to the bare view's requests per second. The goal is a ratio of at least 0.5 on every page.

Each page is measured in slices alternating with slices of the bare view (``--rounds``), and its ratio is taken
against the bare view's figure from those same slices, so drift in the speed of a shared machine cancels out.
Query counts include the BEGIN and COMMIT of the transaction every storefront request runs in.

The load generator is one asyncio loop in this process; its CPU use is printed because on a small machine it
competes with the server (it costs more on faster pages, so it flatters the ratio slightly rather than hurting it).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.parse
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_pg import BenchError, database_name, ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/zhiku_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CACHE_KEY_PREFIX = "zhiku-bench"
SETTINGS_MODULE = "bench.bench_settings"

BIG = ("bench", "Bench Academy 基准学院", "bench.localhost", 10_000)
SMALL = ("bench-small", "Bench Small 小店", "bench-small.localhost", 10)
COURSE_SLUG = "python-data-analysis-course"
COURSE_TITLE = "Python 数据分析实战"
GOAL = 0.5

# (label, path, text the page must contain): the pages measured, in order, each alternating with the bare view.
BARE = ("bare view", "/bench/bare/", "ok")
PAGES = [
    ("home", "/", "item-card"),
    ("listing", "/browse/", "item-card"),
    ("listing p3 popular", "/browse/?sort=popular&page=3", "item-card"),
    ("search python", "/browse/?q=python", "item-card"),
    ("search 数据", "/browse/?q=" + urllib.parse.quote("数据"), "item-card"),
    ("item (course)", f"/item/{COURSE_SLUG}/", COURSE_TITLE),
]
# The same pages for a signed-in learner, who gets the cached public part of a page around a per-person part
# (session, access, progress) rather than the whole cached page. Shown beside the goal, not counted in it.
SIGNED_IN_PAGES = [
    ("listing, signed in", "/browse/", "item-card"),
    ("item, signed in", f"/item/{COURSE_SLUG}/", COURSE_TITLE),
]
LEARNER_EMAIL = "bench-learner@example.com"



# --- the database --------------------------------------------------------------------------------------------------







def setup_django(database_url: str) -> None:
    """Configure Django in this process like the server: same settings module and database, per-process cache.

    The in-process part only counts queries and times single renders, so it uses the local-memory cache, which it
    can clear without touching anybody else's Redis keys.
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = ""
    os.environ.pop("CELERY_BROKER_URL", None)
    # WhiteNoise warns that STATIC_ROOT was never collected; these pages' figures do not depend on it.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def seeded() -> bool:
    from django_scopes import scopes_disabled

    from catalog.models import ContentItem
    from marketplace.models import Tenant

    with scopes_disabled():
        for slug, _name, _host, count in (BIG, SMALL):
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                return False
            items = ContentItem.objects.filter(tenant=tenant, status=ContentItem.Status.PUBLISHED)
            if items.count() != count or not items.filter(slug=COURSE_SLUG).exists():
                return False
    return True


def database_is_empty() -> bool:
    from marketplace.models import Tenant

    return not Tenant.objects.exists()


# --- seeding -------------------------------------------------------------------------------------------------------

CATEGORIES = ["Python", "数据科学", "Machine Learning", "设计", "Business", "Marketing", "Photography", "音乐",
              "写作", "Finance", "Languages", "心理学"]
EN_PREFIXES = ["Practical", "Modern", "Hands-on", "The Complete", "Essential", "Applied", "Beginner's", "Advanced"]
EN_SUFFIXES = ["", " Bootcamp", " in 30 Days", " Masterclass", " for Beginners", ": A Field Guide", " Workshop"]
# (topic, index of its category in CATEGORIES)
EN_TOPICS = [("Python", 0), ("Python for Data Science", 0), ("Data Analysis", 1), ("Statistics", 1),
             ("Machine Learning", 2), ("Deep Learning", 2), ("UX Design", 3), ("Typography", 3),
             ("Startup Strategy", 4), ("Negotiation", 4), ("Content Marketing", 5), ("SEO", 5),
             ("Portrait Photography", 6), ("Lightroom", 6), ("Music Theory", 7), ("Songwriting", 7),
             ("Fiction Writing", 8), ("Copywriting", 8), ("Personal Finance", 9), ("Investing", 9),
             ("Spanish", 10), ("Business English", 10), ("Cognitive Psychology", 11), ("Habits", 11)]
CN_TOPICS = [("Python 编程", 0), ("数据分析", 1), ("数据科学", 1), ("大数据", 1), ("数据可视化", 1),
             ("机器学习", 2), ("产品设计", 3), ("品牌设计", 3), ("创业管理", 4), ("市场营销", 5),
             ("手机摄影", 6), ("乐理", 7), ("写作", 8), ("个人理财", 9), ("英语口语", 10), ("心理学", 11)]
CN_SUFFIXES = ["入门", "实战", "从零开始", "进阶指南", "三十讲", "精品课", "训练营"]
SURNAMES = ["Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Smith", "Garcia", "Müller", "Tanaka"]
GIVEN = ["Wei", "Fang", "Min", "Jing", "Lei", "Anna", "Ben", "Carla", "David", "Emi"]
CN_NAMES = ["王芳", "李伟", "张敏", "刘洋", "陈静", "杨磊", "赵丽", "黄强"]
KINDS = ["course"] * 7 + ["article"] * 4 + ["video"] * 3 + ["audio"] * 2 + ["ebook"] * 3 + ["live"]
PRICES = [0, 0, 990, 1990, 2990, 4900, 9900, 19900, 29900]
LEVELS = ["beginner", "beginner", "intermediate", "advanced"]
DESCRIPTIONS = [
    "Learn **{t}** step by step, with exercises after every chapter.\n\n- Short lessons\n- Real projects\n"
    "- A certificate at the end",
    "## What you will learn\n\n{t}: the ideas that matter and how to use them at work.\n\n> Practice beats theory.",
    "本课程系统讲解{t}的核心概念与方法。\n\n1. 基础知识\n2. 案例分析\n3. 实战练习",
    "A compact guide to *{t}*, written for busy people. Each part takes ten minutes.",
]


@dataclass
class Seeded:
    tenant_id: int
    items: int
    credits: int
    category_links: int
    lessons: int


def _title(rng: random.Random) -> tuple[str, str, int]:
    """(title, language, category index)"""
    if rng.random() < 0.4:
        topic, category = rng.choice(CN_TOPICS)
        return f"{topic}{rng.choice(CN_SUFFIXES)}", "zh-hans", category
    topic, category = rng.choice(EN_TOPICS)
    return f"{rng.choice(EN_PREFIXES)} {topic}{rng.choice(EN_SUFFIXES)}", "en", category


def seed_tenant(slug: str, name: str, host: str, count: int, rng: random.Random) -> Seeded:
    """One storefront with ``count`` published items, one of them the course whose page is measured."""
    from django.utils import timezone
    from django.utils.text import slugify

    from catalog.models import (
        Bundle,
        Category,
        ContentItem,
        Creator,
        ItemCreator,
        LearningPath,
        Lesson,
        PathStep,
        Section,
    )
    from catalog.text import plain_text, render_rich_text, search_document
    from marketplace.models import Domain, Tenant

    now = timezone.now()
    tenant = Tenant.objects.create(slug=slug, name=name, default_language="zh-hans", currency="CNY")
    Domain.objects.create(tenant=tenant, host=host, is_primary=True)
    categories = Category.objects.bulk_create(
        [Category(tenant=tenant, name=n, slug=slugify(n, allow_unicode=True), position=i)
         for i, n in enumerate(CATEGORIES)])
    creator_names = [f"{g} {s}" for s in SURNAMES for g in GIVEN[:4]] + CN_NAMES
    creators = Creator.objects.bulk_create(
        [Creator(tenant=tenant, name=n, slug=f"creator-{i}", headline="Teacher and practitioner")
         for i, n in enumerate(creator_names)])
    rendered = {}  # description template -> (markdown source, html, plain text), rendered once each

    items: list[ContentItem] = []
    item_categories: list[list[int]] = []
    item_creators: list[list[int]] = []
    for i in range(count):
        if i == 0:  # the course whose page is measured: Python and 数据科学, the same on both storefronts
            title, language, cats = COURSE_TITLE, "zh-hans", [0, 1]
        else:
            title, language, category = _title(rng)
            cats = [category] if rng.random() < 0.7 else list(dict.fromkeys([category,
                                                                             rng.randrange(len(CATEGORIES))]))
        people = [rng.randrange(len(creators))]
        if i == 0 or i % 4 == 0:
            people.append((people[0] + 1 + rng.randrange(len(creators) - 1)) % len(creators))
        template = DESCRIPTIONS[i % len(DESCRIPTIONS)]
        if template not in rendered:
            source = template.format(t="{t}")
            html = render_rich_text(source)
            rendered[template] = (source, html, plain_text(html))
        source, html, plain = rendered[template]
        topic = title.split(":")[0]
        subtitle = (f"{topic} — from the first steps to confident practice" if language == "en"
                    else f"{topic}：从入门到实践")
        rating_count = rng.choice([0, 0, rng.randint(1, 40), rng.randint(40, 900)])
        kind = "course" if i == 0 else rng.choice(KINDS)
        items.append(ContentItem(
            tenant=tenant, kind=kind, status=ContentItem.Status.PUBLISHED, title=title, subtitle=subtitle,
            slug=COURSE_SLUG if i == 0 else f"{slugify(title) or 'item'}-{i}",
            description=source.replace("{t}", topic), description_html=html.replace("{t}", topic),
            language=language, level=LEVELS[0] if i == 0 else rng.choice(LEVELS),
            duration_minutes=rng.choice([15, 30, 45, 90, 180, 600]),
            price=19900 if i == 0 else rng.choice(PRICES),
            is_featured=i < 10,
            body="" if kind == "course" else "Notes for the learner.",
            body_html="" if kind == "course" else "<p>Notes for the learner.</p>",
            starts_at=now + timedelta(days=rng.randint(1, 60)) if kind == "live" else None,
            version=1,
            published_at=now - timedelta(minutes=1 if i == 0 else rng.randint(60, 2 * 365 * 24 * 60)),
            search_text=search_document(title, subtitle, plain.replace("{t}", topic),
                                        *(CATEGORIES[c] for c in cats), *(creators[p].name for p in people)),
            rating_count=rating_count,
            rating_sum=round(rating_count * rng.uniform(3.2, 5.0)),
            learner_count=5000 if i == 0 else min(int(rng.paretovariate(1.1) * 20) - 20, 250_000),
        ))
        item_categories.append(cats)
        item_creators.append(people)

    items = ContentItem.objects.bulk_create(items, batch_size=1000)
    credits = []
    links = []
    through = ContentItem.categories.through
    for item, cats, people in zip(items, item_categories, item_creators, strict=True):
        shares = [10000] if len(people) == 1 else [6000, 4000]
        credits += [ItemCreator(tenant=tenant, item=item, creator=creators[p], share_bp=s, position=n)
                    for n, (p, s) in enumerate(zip(people, shares, strict=True))]
        links += [through(contentitem_id=item.pk, category_id=categories[c].pk) for c in cats]
    ItemCreator.objects.bulk_create(credits, batch_size=2000)
    through.objects.bulk_create(links, batch_size=5000)

    course = items[0]
    sections = Section.objects.bulk_create(
        [Section(tenant=tenant, item=course, title=f"第 {s + 1} 章 · Part {s + 1}", position=s) for s in range(5)])
    lesson_kinds = ["video", "text", "video", "audio", "file", "video"]
    lessons = Lesson.objects.bulk_create([
        Lesson(tenant=tenant, item=course, section=section, title=f"Lesson {s + 1}.{n + 1}", kind=lesson_kinds[n],
               body="Read this.", body_html="<p>Read this.</p>", duration_seconds=300 + 60 * n,
               is_preview=s == 0 and n < 2, position=n)
        for s, section in enumerate(sections) for n in range(6)])

    bundle = Bundle.objects.create(tenant=tenant, title="Data starter bundle", slug="data-starter", price=29900,
                                   is_published=True)
    bundle.items.set(items[:4])
    path = LearningPath.objects.create(tenant=tenant, title="From zero to data analyst", slug="data-analyst",
                                       is_published=True)
    PathStep.objects.bulk_create([PathStep(tenant=tenant, path=path, item=item, position=n)
                                  for n, item in enumerate(items[:3])])
    return Seeded(tenant.pk, len(items), len(credits), len(links), len(lessons))


def seed() -> None:
    from django.db import transaction
    from django_scopes import scopes_disabled

    rng = random.Random(20240917)
    for slug, name, host, count in (BIG, SMALL):
        started = time.perf_counter()
        with scopes_disabled(), transaction.atomic():
            result = seed_tenant(slug, name, host, count, rng)
        print(f"  seeded {slug} ({host}): {result.items} items, {result.credits} creator credits, "
              f"{result.category_links} category links, {result.lessons} lessons "
              f"in {time.perf_counter() - started:.1f} s")
    with transaction.atomic():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _cell(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (Chinese characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


# --- query counts, in-process --------------------------------------------------------------------------------------

@dataclass
class Counts:
    uncached: int
    cached: int
    uncached_ms: float
    cached_ms: float
    sql: list[str] = field(default_factory=list)


def _get(client, path: str, host: str):
    response = client.get(path, HTTP_HOST=host)
    if response.status_code != 200:
        raise BenchError(f"GET {host}{path} answered {response.status_code} in-process")
    return response


def count_queries(path: str, host: str) -> Counts:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    _get(client, path, host)  # first-request effects (content types, translations) out of the way
    cache.clear()
    # The captured list is read at once: the next request's request_started signal empties the query log.
    with CaptureQueriesContext(connection) as context:
        _get(client, path, host)
    uncached = [q["sql"] for q in context.captured_queries]
    with CaptureQueriesContext(connection) as context:
        _get(client, path, host)
    cached = [q["sql"] for q in context.captured_queries]
    timings_uncached, timings_cached = [], []
    for _ in range(5):
        cache.clear()
        started = time.perf_counter()
        _get(client, path, host)
        timings_uncached.append(time.perf_counter() - started)
    for _ in range(20):
        started = time.perf_counter()
        _get(client, path, host)
        timings_cached.append(time.perf_counter() - started)
    return Counts(len(uncached), len(cached), statistics.median(timings_uncached) * 1000,
                  statistics.median(timings_cached) * 1000, uncached)


def query_report() -> bool:
    """Print the query counts of every page on both storefronts; False when a listing's count depends on size."""
    rows = []
    ok = True
    for label, path, _marker in [BARE, *PAGES]:
        big, small = count_queries(path, BIG[2]), count_queries(path, SMALL[2])
        same = big.uncached == small.uncached and big.cached == small.cached
        if not same and label != "item (course)":
            ok = False
        rows.append((label, path, big, small, same))

    print()
    print("SQL statements per request (in-process, anonymous visitor, BEGIN/COMMIT included; 'uncached' = fragment "
          "cache cleared first)")
    head = (f"{'page':<20} {'10,000 items':>14} {'10 items':>10} {'10,000 cached':>14} {'10 cached':>10}  "
            f"{'same?':<6} {'render ms uncached / cached (10,000)':>37}")
    print(head)
    print("-" * len(head))
    for label, _path, big, small, same in rows:
        print(f"{_cell(label, 20)} {big.uncached:>14} {small.uncached:>10} {big.cached:>14} {small.cached:>10}  "
              f"{'yes' if same else 'NO':<6} {big.uncached_ms:>27.1f} / {big.cached_ms:.1f}")
    for label, _path, big, small, same in rows:
        if not same:
            print(f"\n{label}: the query counts differ; the 10,000-item storefront's queries were:")
            for sql in big.sql:
                print("   ", sql[:200])
            print(f"  and the 10-item storefront's: {len(small.sql)} queries")
    return ok


# --- the server ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_reachable(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:  # any failure means "no Redis": the server falls back to per-process memory
        return False


def clear_bench_cache(url: str) -> int:
    """Delete this benchmark's keys (prefix zhiku-bench) from Redis, leaving everybody else's alone."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{CACHE_KEY_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    return len(keys)


class Server:
    """gunicorn serving the project with bench.bench_settings on 127.0.0.1:<port>."""

    def __init__(self, *, database_url: str, redis_url: str, workers: int, threads: int):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="zhiku-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS_MODULE, DATABASE_URL=database_url,
                   REDIS_URL=redis_url, CACHE_KEY_PREFIX=CACHE_KEY_PREFIX, PYTHONPATH=str(ROOT),
                   LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"))
        env.pop("CELERY_BROKER_URL", None)
        command = [sys.executable, "-m", "gunicorn", "marketplace.wsgi:application",
                   "--chdir", str(ROOT), "--bind", f"127.0.0.1:{self.port}",
                   "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
                   "--keep-alive", "30", "--graceful-timeout", "5", "--log-level", "warning"]
        # The command is built from this script's constants and integers, not from outside input.
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)  # noqa: S603

    def wait_ready(self, timeout: float = 60) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", BARE[1], headers={"Host": BIG[2]})
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def fetch(port: int, path: str, host: str, cookie: str = "") -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host, **({"Cookie": cookie} if cookie else {})})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


# --- the load generator --------------------------------------------------------------------------------------------

@dataclass
class Result:
    """Requests completed in the measured periods of one URL, possibly several periods added together."""

    label: str
    path: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add(self, other: Result) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.client_cpu_seconds += other.client_cpu_seconds
        self.wall_seconds += other.wall_seconds

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def client_cpu(self) -> float:
        return self.client_cpu_seconds / self.wall_seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip()
    close = headers.get(b"connection", b"").lower() == b"close"
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(c[:-2] for c in chunks)
    else:
        body, close = await reader.read(), True
    return status, body, close


async def _drive(port: int, request: bytes, concurrency: int, start: float, stop: float,
                 latencies: list[float]) -> None:
    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop:
                    return
                writer.write(request)
                status, body, close = await _read_response(reader)
                done = time.perf_counter()
                if status != 200:
                    raise BenchError(f"{request.split(b' ')[1].decode()} answered {status}: {body[:300]!r}")
                if start <= done < stop:
                    latencies.append(done - sent)
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


def learner_session_cookie() -> str:
    """A signed-in learner of the big storefront, as the Cookie header a browser would send."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_scopes import scopes_disabled

    from accounts.models import Membership, User
    from marketplace.models import Tenant

    user, _ = User.objects.get_or_create(email=LEARNER_EMAIL)
    with scopes_disabled():
        Membership.objects.get_or_create(tenant=Tenant.objects.get(slug=BIG[0]), user=user,
                                         defaults={"role": "learner"})
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def measure(port: int, label: str, path: str, host: str, *, concurrency: int, warmup: float,
            seconds: float, cookie: str = "") -> Result:
    """Drive ``path`` for ``warmup`` + ``seconds``; the requests that complete in the last ``seconds`` count."""
    cookie_line = f"Cookie: {cookie}\r\n" if cookie else ""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: zhiku-bench\r\nAccept: text/html\r\n"
               f"{cookie_line}Accept-Encoding: identity\r\n\r\n").encode()
    latencies: list[float] = []
    begin = time.perf_counter()
    cpu_begin = time.process_time()
    asyncio.run(_drive(port, request, concurrency, begin + warmup, begin + warmup + seconds, latencies))
    wall = time.perf_counter() - begin
    if seconds and not latencies:
        raise BenchError(f"{path}: no request completed in the measured period")
    return Result(label, path, seconds, latencies, time.process_time() - cpu_begin, wall)


@dataclass
class Pair:
    page: Result
    bare: Result  # the bare view, measured in the slices between the page's

    @property
    def ratio(self) -> float:
        return self.page.rps / self.bare.rps


def measure_pair(port: int, label: str, path: str, host: str, *, concurrency: int, warmup: float, seconds: float,
                 rounds: int, cookie: str = "") -> Pair:
    """The page and the bare view in alternating slices, so that both see the same machine.

    The machine is shared (other processes, the database, the cache, this load generator), and its speed drifts;
    alternating short slices of the two URLs puts the same drift into both figures, which the ratio then cancels.
    """
    measure(port, label, path, host, concurrency=concurrency, warmup=warmup, seconds=0, cookie=cookie)
    pair = Pair(Result(label, path), Result(BARE[0], BARE[1]))
    for _ in range(rounds):
        pair.bare.add(measure(port, BARE[0], BARE[1], host, concurrency=concurrency, warmup=0.2,
                              seconds=seconds / rounds))
        pair.page.add(measure(port, label, path, host, concurrency=concurrency, warmup=0.2,
                              seconds=seconds / rounds, cookie=cookie))
    return pair


# --- the run -------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8,
                        help="measured seconds per page, and as many of the bare view (default 8)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per URL (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternations of each page with the bare view within --seconds (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (default 2)")
    parser.add_argument("--reseed", action="store_true", help="drop the benchmark database and seed it again")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    parts = urllib.parse.urlsplit(database_url)
    safe_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # no credentials in the output

    print(f"Database: {safe_url} ({'rebuilding' if args.reseed else 'reused when already seeded'})")
    created = ensure_database(database_url, database_name(database_url), drop=args.reseed)
    setup_django(database_url)
    migrate()
    if not seeded():
        if not created and not database_is_empty():
            print("  the database holds something else than a complete seed: rebuilding it")
            from django.db import connections

            connections.close_all()
            ensure_database(database_url, database_name(database_url), drop=True)
            migrate()
        started = time.perf_counter()
        seed()
        print(f"  seeding took {time.perf_counter() - started:.1f} s")
    else:
        print("  already seeded: 10,000 + 10 items (--reseed rebuilds)")

    counts_ok = query_report()
    cookie = learner_session_cookie()

    from django.db import connections

    connections.close_all()
    use_redis = redis_reachable(redis_url)
    if use_redis:
        removed = clear_bench_cache(redis_url)
        cache_note = f"Redis at {redis_url} (key prefix {CACHE_KEY_PREFIX}; {removed} stale keys removed)"
    else:
        cache_note = "per-process memory (Redis did not answer at " + redis_url + ")"
    print()
    print(f"Server: gunicorn, {args.workers} workers x {args.threads} threads (gthread, keep-alive), "
          f"DEBUG off; cache: {cache_note}")
    print(f"Load: {args.concurrency} keep-alive connections, Host {BIG[2]}; per page {args.warmup:g} s warm-up, "
          f"then {args.seconds:g} s measured in {args.rounds} slices alternating with as much of the bare view; "
          f"{os.cpu_count()} CPUs shared by server, database, cache and client")

    server = Server(database_url=database_url, redis_url=redis_url if use_redis else "",
                    workers=args.workers, threads=args.threads)
    pairs: list[Pair] = []
    try:
        server.wait_ready()
        for _label, path, marker in [BARE, *PAGES]:
            status, body = fetch(server.port, path, BIG[2])
            if status != 200 or marker not in body:
                raise BenchError(f"GET {path} answered {status} without {marker!r}:\n{body[:800]}")
        measure(server.port, *BARE[:2], BIG[2], concurrency=args.concurrency, warmup=args.warmup, seconds=0)
        for label, path, _marker in PAGES:
            pair = measure_pair(server.port, label, path, BIG[2], concurrency=args.concurrency,
                                warmup=args.warmup, seconds=args.seconds, rounds=args.rounds)
            pairs.append(pair)
            print(f"  {_cell(label, 20)} {pair.page.rps:8.1f} req/s (bare view meanwhile {pair.bare.rps:7.1f})  "
                  f"ratio {pair.ratio:.2f}")
        signed_in: list[Pair] = []
        for label, path, marker in SIGNED_IN_PAGES:
            status, body = fetch(server.port, path, BIG[2], cookie)
            if status != 200 or marker not in body or LEARNER_EMAIL not in body:
                raise BenchError(f"GET {path} as the learner answered {status} without {marker!r} and their email")
            pair = measure_pair(server.port, label, path, BIG[2], concurrency=args.concurrency,
                                warmup=args.warmup, seconds=args.seconds, rounds=args.rounds, cookie=cookie)
            signed_in.append(pair)
            print(f"  {_cell(label, 20)} {pair.page.rps:8.1f} req/s (bare view meanwhile {pair.bare.rps:7.1f})  "
                  f"ratio {pair.ratio:.2f}")
    except BenchError:
        print("\nServer log (tail):\n" + server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
        if use_redis:
            clear_bench_cache(redis_url)
        Path(server.log.name).unlink(missing_ok=True)

    bare = Result(BARE[0], BARE[1])
    for pair in pairs:
        bare.add(pair.bare)
    print()
    print(f"Storefront throughput, {BIG[3]:,} published items on PostgreSQL; ratio = the page's req/s / the bare "
          f"view's req/s in the slices alternating with it; goal >= {GOAL}")
    head = (f"{'page':<20} {'URL':<36} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'bare req/s':>10} {'ratio':>6}  "
            f"{'goal':<5} {'client CPU':>10}")
    print(head)
    print("-" * len(head))
    print(f"{bare.label:<20} {bare.path:<36} {bare.rps:7.1f} {bare.percentile(0.5):7.1f} "
          f"{bare.percentile(0.95):7.1f} {bare.rps:10.1f} {1:6.2f}  {'-':<5} {bare.client_cpu:10.0%}")
    all_pass = True
    for pair in pairs:
        page = pair.page
        verdict = "PASS" if pair.ratio >= GOAL else "BELOW"
        all_pass &= pair.ratio >= GOAL
        print(f"{_cell(page.label, 20)} {_cell(urllib.parse.unquote(page.path), 36)} {page.rps:7.1f} "
              f"{page.percentile(0.5):7.1f} {page.percentile(0.95):7.1f} {pair.bare.rps:10.1f} {pair.ratio:6.2f}  "
              f"{verdict:<5} {page.client_cpu:10.0%}")
    for pair in signed_in:
        page = pair.page
        print(f"{_cell(page.label, 20)} {_cell(urllib.parse.unquote(page.path), 36)} {page.rps:7.1f} "
              f"{page.percentile(0.5):7.1f} {page.percentile(0.95):7.1f} {pair.bare.rps:10.1f} {pair.ratio:6.2f}  "
              f"{'info':<5} {page.client_cpu:10.0%}")
    print()
    print(f"Throughput goal (>= {GOAL} of the bare view on every page): {'met' if all_pass else 'NOT met'}")
    print(f"Query counts independent of the number of items shown: {'yes' if counts_ok else 'NO'}")
    return 0 if all_pass and counts_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nbench/storefront.py: {exc}", file=sys.stderr)
        sys.exit(2)
