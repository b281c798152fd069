"""Distribution under real concurrent transactions and a database that drops for a moment (PostgreSQL): each thread
has its own connection."""

import threading
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from catalog import services as catalog
from catalog.models import ContentItem
from distribution import services
from distribution.models import Channel, Delivery, Publication
from distribution.pipeline import deliveries_run
from marketplace import tenancy
from tests.distribution.test_wechat import png, stored, wechat_channel
from tests.factories import TenantFactory, UserFactory, catalog_item
from tests.payments.test_races import in_thread, wait_until, waiting_for_a_lock
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.wechat_server import WeChatServer

pytestmark = pytest.mark.postgres
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class GatedReceiver(WebhookReceiver):
    """Holds a request (once armed) until ``gate`` is set; ``arrived`` says one is being held."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate: threading.Event | None = None
        self.arrived = threading.Event()

    def handle(self, headers, body):
        if self.gate is not None:
            self.arrived.set()
            assert self.gate.wait(30)
        return super().handle(headers, body)


@pytest.fixture
def pg_tenant(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    slug = f"d{uuid.uuid4().hex[:8]}"
    return TenantFactory(slug=slug, domain=f"{slug}.test")


def _channel(tenant, url, **fields):
    with scope(tenant=tenant):
        channel, _ = services.channel_save(
            channel=Channel(tenant=tenant, name=fields.pop("name", "Partner hook"), kind="webhook",
                            endpoint_url=url, **fields),
            credentials={"signing_secret": SECRET}, actor=None)
    return channel


def _set_kinds(channel, kinds):
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(content_kinds=kinds)


def _beats(tenant, most: int = 10) -> None:
    """Beat after beat (dispatch, in-process pushes), each finding every open delivery due, until none is open."""
    from distribution.tasks import deliveries_dispatch_task

    for _ in range(most):
        with scopes_disabled():
            waiting = Delivery.objects.filter(tenant=tenant, status__in=Delivery.OPEN)
            if not waiting.exists():
                return
            # time passes: polls and retries come due, a dead worker's lease runs out
            waiting.update(due_at=timezone.now() - timedelta(seconds=1),
                           lease_until=timezone.now() - timedelta(seconds=1))
        deliveries_dispatch_task.delay(tenant_id=tenant.pk)
    raise AssertionError("deliveries still open")


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


# --- planning while a worker records ------------------------------------------------------------------------------

def test_archiving_while_a_push_records_its_outcome_still_withdraws_the_item(pg_tenant):
    """A worker records a successful push (delivery delivered, publication live: one commit) while the item is
    archived. The archive must see the push on one side or the other, however the commit falls between its reads,
    and withdraw the item there.

    The publication row already exists (the item was withdrawn from this channel once, when it left the channel's
    kinds, and came back), so the worker's write is an UPDATE that takes no lock on the item the archive holds."""
    tenant = pg_tenant
    staff = UserFactory(email=f"editor@{tenant.slug}.test")
    with GatedReceiver(SECRET) as receiver:
        channel = _channel(tenant, receiver.url)
        item = catalog_item(tenant, title="Guide")  # v1, pushed in-process on commit
        _set_kinds(channel, ["course"])  # the channel stops taking articles: v2 withdraws it there
        with scope(tenant=tenant):
            ContentItem.objects.filter(pk=item.pk).update(subtitle="Second edition")
            catalog.item_publish_changes(item=item, actor=staff)
        _set_kinds(channel, [])  # and takes them again: v3 is published there anew
        with mock.patch("distribution.services.dispatch_after_commit"), scope(tenant=tenant):
            ContentItem.objects.filter(pk=item.pk).update(subtitle="Third edition")
            catalog.item_publish_changes(item=item, actor=staff)
        with scopes_disabled():
            assert dict(Publication.objects.filter(item=item).values_list("channel_id", "status")) == {
                channel.pk: "withdrawn"}
            [v3] = Delivery.objects.filter(item=item, version=3)
        assert v3.action == "publish" and v3.status == "queued"

        outcomes: dict = {}
        receiver.gate = threading.Event()
        worker = in_thread(outcomes, "worker", lambda: deliveries_run(tenant=tenant, delivery_ids=[v3.pk]))
        assert receiver.arrived.wait(30), "the worker never pushed"

        def archive():
            fired = False

            def after_reading_publications(execute, sql, params, many, context):
                nonlocal fired
                result = execute(sql, params, many, context)
                if not fired and sql.lstrip().startswith("SELECT") and 'FROM "distribution_publication"' in sql:
                    fired = True
                    receiver.gate.set()  # the platform answers; the worker records DELIVERED + LIVE and commits
                    worker.join(30)
                return result

            with tenancy.activate(tenant), connection.execute_wrapper(after_reading_publications):
                catalog.item_archive(item=ContentItem.objects.get(pk=item.pk), actor=staff)
            return fired

        archiver = in_thread(outcomes, "archive", archive)
        archiver.join(60)
        worker.join(60)
        assert outcomes["archive"] is True, outcomes
        assert outcomes["worker"] == {v3.pk: "delivered"}, outcomes
        with scope(tenant=tenant):  # what beat does next: run anything due
            services.deliveries_dispatch(tenant=tenant)
        with scopes_disabled():
            item.refresh_from_db()
            publication = Publication.objects.get(channel=channel, item=item)
            withdrawals = list(Delivery.objects.filter(item=item, action="withdraw", version=3))
        assert item.status == "archived"
        assert withdrawals, "archiving planned no withdrawal: the archived item stays live on the channel"
        assert publication.status == "withdrawn"


def test_planning_the_same_item_twice_at_once_is_serialised_by_the_item_lock(pg_tenant):
    """Publishing and archiving lock the item before ``deliveries_plan``, so two plans of one item never overlap:
    two edits of a published item saved at once make two versions, each planned once per channel."""
    tenant = pg_tenant
    staff = UserFactory(email=f"editor@{tenant.slug}.test")
    with WebhookReceiver(SECRET) as receiver:
        channels = [_channel(tenant, receiver.url, name=f"Hook {i}") for i in range(3)]
        item = catalog_item(tenant, title="Guide")
        barrier, outcomes = threading.Barrier(2, timeout=30), {}

        def save_edit(subtitle):
            with tenancy.activate(tenant), transaction.atomic():  # as the admin saves an edit and publishes it
                barrier.wait()
                ContentItem.objects.filter(pk=item.pk).update(subtitle=subtitle)
                return catalog.item_publish_changes(item=item, actor=staff).number

        threads = [in_thread(outcomes, name, lambda name=name: save_edit(f"Edited by {name}")) for name in ("a", "b")]
        for thread in threads:
            thread.join(60)
    assert sorted(outcomes.values()) == [2, 3], outcomes
    with scopes_disabled():
        rows = list(Delivery.objects.filter(item=item).values_list("channel_id", "version", "action"))
    assert len(rows) == len(set(rows)) == 9, rows  # v1 publish, v2 and v3 updates (or v3 over a skipped v2)
    assert {c.pk for c in channels} == {r[0] for r in rows}


# --- a database connection that drops while a worker pushes -------------------------------------------------------

class BlipAfterSubmit(WeChatServer):
    """Holds the first answer to ``freepublish/submit`` until ``answer`` is set (WeChat has accepted the article)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.submitted, self.answer = threading.Event(), threading.Event()

    def handle(self, record):
        reply = super().handle(record)
        if record.path == "/cgi-bin/freepublish/submit" and not self.submitted.is_set():
            self.submitted.set()
            assert self.answer.wait(30)
        return reply


def test_a_database_blip_after_wechat_accepted_the_article_records_it_once_the_database_is_back(pg_tenant,
                                                                                              settings):
    """The worker's PostgreSQL connection drops (a failover, a restart, a network blip) after WeChat accepted the
    article and before the worker recorded its ``publish_id``: the worker records it on a new connection, and the
    article is polled, not published a second time."""
    tenant = pg_tenant
    with BlipAfterSubmit() as wechat:
        settings.WECHAT_API_BASE = wechat.url
        wechat_channel(tenant, wechat)
        with mock.patch("distribution.services.dispatch_after_commit"):
            item = catalog_item(tenant, title="Capital in ten minutes", cover=stored(png()))
        with scopes_disabled():
            [delivery] = Delivery.objects.filter(item=item)

        outcomes, pid = {}, {}

        def worker():
            pid["worker"] = _backend_pid()
            return deliveries_run(tenant=tenant, delivery_ids=[delivery.pk])

        thread = in_thread(outcomes, "worker", worker)
        assert wechat.submitted.wait(30), "the worker never submitted the article"
        _terminate(pid["worker"])
        wechat.answer.set()
        thread.join(60)
        assert outcomes["worker"] == {delivery.pk: "confirming"}, outcomes
        with scopes_disabled():
            delivery.refresh_from_db()
        assert delivery.status == "confirming" and delivery.data["publish_id"]

        _beats(tenant)

        with scopes_disabled():
            delivery.refresh_from_db()
            publication = Publication.objects.get(item=item)
        assert delivery.status == "delivered" and publication.status == "live"
        assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1
        assert len(wechat.finish_jobs()) == 1


def test_a_database_down_longer_after_wechat_accepted_the_article_does_not_publish_it_twice(pg_tenant, settings):
    """The database stays unreachable after WeChat accepted the article, so the worker cannot record it at all: the
    row waits for its lease to run out and is sent again, and that retry finds the submission and polls it."""
    tenant = pg_tenant
    with BlipAfterSubmit() as wechat:
        settings.WECHAT_API_BASE = wechat.url
        wechat.answer.set()
        wechat_channel(tenant, wechat)
        with mock.patch("distribution.services.dispatch_after_commit"):
            item = catalog_item(tenant, title="Capital in ten minutes", cover=stored(png()))
        with scopes_disabled():
            [delivery] = Delivery.objects.filter(item=item)

        def unreachable_once_submitted(execute, sql, params, many, context):
            if wechat.submitted.is_set():
                raise OperationalError("could not connect to server: Connection refused")
            return execute(sql, params, many, context)

        with connection.execute_wrapper(unreachable_once_submitted), pytest.raises(OperationalError):
            deliveries_run(tenant=tenant, delivery_ids=[delivery.pk])
        connection.close()
        with scopes_disabled():
            delivery.refresh_from_db()
        assert delivery.status == "sending"  # nothing could be recorded

        _beats(tenant)  # the lease runs out, the dispatcher takes the row over, polls come due

        with scopes_disabled():
            delivery.refresh_from_db()
        assert delivery.status == "delivered"
        assert len(wechat.requests_to("/cgi-bin/freepublish/submit")) == 1, "the article was submitted twice"
        assert len(wechat.finish_jobs()) == 1, "two copies of the article are live on the official account"


def test_a_database_blip_mid_batch_keeps_what_was_pushed_before_it(pg_tenant, settings):
    """The connection drops while the worker extends its lease between two pushes of one batch: the first push's
    outcome is recorded (it is not sent again), and the second, not sent, waits for its retry."""
    tenant = pg_tenant
    # A lease just over one push's longest time: the worker extends it before the second push.
    from distribution import http

    settings.DISTRIBUTION_LEASE_SECONDS = http.CALL_SECONDS + 1
    with GatedReceiver(SECRET) as receiver:
        _channel(tenant, receiver.url)
        with mock.patch("distribution.services.dispatch_after_commit"):
            first = catalog_item(tenant, title="First")
            second = catalog_item(tenant, title="Second")
        with scopes_disabled():
            rows = {d.item_id: d for d in Delivery.objects.filter(tenant=tenant)}
        pushed, held = rows[first.pk], rows[second.pk]

        outcomes, pid = {}, {}
        receiver.gate = threading.Event()

        def worker():
            pid["worker"] = _backend_pid()
            return deliveries_run(tenant=tenant, delivery_ids=[pushed.pk, held.pk])

        thread = in_thread(outcomes, "worker", worker)
        assert receiver.arrived.wait(30)
        _terminate(pid["worker"])
        threading.Timer(1.5, receiver.gate.set).start()  # more than a second of the lease goes by
        thread.join(60)

    assert outcomes["worker"] == {pushed.pk: "delivered", held.pk: "retrying"}, outcomes
    assert list(receiver.received) == [pushed.webhook_id]
    with scopes_disabled():
        held.refresh_from_db()
    assert held.attempts == 0 and "database" in held.message  # not sent: its attempt is given back


class AnswerLostAfterCommit:
    """The worker's database connection as the network leaves it when it breaks just after the server committed:
    the first commit once ``armed`` is done, and the worker hears only that the connection is gone."""

    def __init__(self, raw):
        vars(self).update(_raw=raw, armed=threading.Event(), broke=False)

    def commit(self):
        self._raw.commit()
        if self.armed.is_set() and not self.broke:
            import psycopg2

            vars(self)["broke"] = True
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __setattr__(self, name, value):  # ``autocommit``, which Django sets around each transaction
        setattr(self._raw, name, value)


class ArmingReceiver(WebhookReceiver):
    """Arms ``line`` as a push arrives: the worker's next commit is the one recording it."""

    line: AnswerLostAfterCommit

    def handle(self, headers, body):
        self.line.armed.set()
        return super().handle(headers, body)


def test_a_recording_whose_commit_answer_is_lost_is_kept_as_recorded(pg_tenant):
    """The connection breaks as the worker's recording commits: the worker records again on a new connection, finds
    the outcome already there, and leaves it as it is (not rewritten as lost to another worker)."""
    tenant = pg_tenant
    with ArmingReceiver(SECRET) as receiver:
        _channel(tenant, receiver.url)
        with mock.patch("distribution.services.dispatch_after_commit"):
            item = catalog_item(tenant, title="Guide")
        with scopes_disabled():
            [delivery] = Delivery.objects.filter(item=item)
        connection.ensure_connection()
        receiver.line = connection.connection = AnswerLostAfterCommit(connection.connection)
        statuses = deliveries_run(tenant=tenant, delivery_ids=[delivery.pk])

    assert receiver.line.broke, "the connection never broke"
    assert statuses == {delivery.pk: "delivered"}
    with scopes_disabled():
        delivery.refresh_from_db()
        attempts = list(delivery.attempt_log.values_list("outcome", "error"))
        publication = Publication.objects.get(item=item)
    assert (delivery.status, publication.status) == ("delivered", "live")
    assert attempts == [("ok", "")]
    assert receiver.arrivals[delivery.webhook_id] == 1


# --- deleting a channel while a worker records --------------------------------------------------------------------

def test_deleting_a_channel_while_a_push_to_it_is_recorded_does_not_deadlock(pg_tenant):
    """Staff delete a channel while a worker is recording a push to it. The worker locks the delivery rows and then
    writes their attempts and publications; Django's cascade deletes attempts and publications before deliveries.
    The delete takes the deliveries first, so one waits for the other instead of a deadlock aborting one of them.

    The interleaving is forced by letting the platform answer just after the delete's first DELETE statement."""
    tenant = pg_tenant
    with GatedReceiver(SECRET) as receiver:
        channel = _channel(tenant, receiver.url)
        with mock.patch("distribution.services.dispatch_after_commit"):
            item = catalog_item(tenant, title="Guide")
        with scopes_disabled():
            [delivery] = Delivery.objects.filter(item=item)
        outcomes: dict = {}
        receiver.gate = threading.Event()
        worker = in_thread(outcomes, "worker", lambda: deliveries_run(tenant=tenant, delivery_ids=[delivery.pk]))
        assert receiver.arrived.wait(30)

        def delete():
            answered = False

            def let_the_platform_answer(execute, sql, params, many, context):
                nonlocal answered
                result = execute(sql, params, many, context)
                if not answered and sql.startswith("DELETE"):
                    answered = True
                    receiver.gate.set()  # the platform answers; the worker records its outcome
                    wait_until(lambda: not worker.is_alive() or waiting_for_a_lock(), timeout=10)
                return result

            with tenancy.activate(tenant), connection.execute_wrapper(let_the_platform_answer):
                services.channel_delete(channel=Channel.objects.get(pk=channel.pk), actor=None)
            return "deleted"

        deleter = in_thread(outcomes, "delete", delete)
        deleter.join(60)
        worker.join(60)
    assert outcomes["delete"] == "deleted", outcomes
    assert not isinstance(outcomes["worker"], Exception), outcomes
    with scopes_disabled():
        assert not Channel.objects.filter(pk=channel.pk).exists()
        assert not Publication.objects.filter(channel_id=channel.pk).exists()
        assert not Delivery.objects.filter(channel_id=channel.pk).exists()


# --- the allocation -----------------------------------------------------------------------------------------------

def test_two_beats_recomputing_the_allocation_at_once_both_succeed(pg_tenant):
    """Two beats (a second scheduler started by mistake, or a redeploy overlapping the old one) recompute one
    storefront's allocation at once: the second waits for the first and replaces the day's rows."""
    from distribution.models import Allocation
    from distribution.tasks import allocation_recompute

    tenant = pg_tenant
    with WebhookReceiver(SECRET) as receiver:
        for i in range(3):
            _channel(tenant, receiver.url, name=f"Hook {i}")
    with scope(tenant=tenant):
        services.distribution_settings(tenant=tenant)  # saved once before (any storefront that opened the page)
    outcomes, second = {}, threading.Event()

    def beat(first):
        def hold_after_insert(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            if first and sql.startswith('INSERT INTO "distribution_allocation"'):
                second.set()
                wait_until(waiting_for_a_lock, timeout=5)  # the other beat is at the same point, or done
            return result

        if not first:
            assert second.wait(30)  # the first beat has written today's rows and not committed yet
        with connection.execute_wrapper(hold_after_insert):
            return allocation_recompute(tenant_id=tenant.pk)

    threads = [in_thread(outcomes, "beat-1", lambda: beat(True)), in_thread(outcomes, "beat-2", lambda: beat(False))]
    for thread in threads:
        thread.join(60)
    assert outcomes == {"beat-1": 3, "beat-2": 3}, outcomes
    with scopes_disabled():
        assert Allocation.objects.filter(tenant=tenant).count() == 3


def test_the_platforms_statistics_are_asked_outside_any_database_transaction(pg_tenant, settings):
    """The daily recompute asks each platform for yesterday's numbers: a slow platform must not hold a transaction
    (and its locks) open meanwhile."""
    from distribution.tasks import allocation_recompute

    open_transactions = []

    class Watching(WeChatServer):
        def _datacube(self, record, metric, *, max_days):
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_stat_clear_snapshot()")
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND state LIKE 'idle in transaction%%'")
                    open_transactions.append(cursor.fetchone()[0])
            finally:
                connection.close()
            return super()._datacube(record, metric, max_days=max_days)

    tenant = pg_tenant
    with Watching() as wechat:
        settings.WECHAT_API_BASE = wechat.url
        channel = wechat_channel(tenant, wechat)
        catalog_item(tenant, title="Capital in ten minutes", cover=stored(png()))
        _beats(tenant)
        assert allocation_recompute(tenant_id=tenant.pk) == 1

    assert open_transactions == [0, 0]  # reads, then shares
    with scopes_disabled():
        assert channel.stats.count() == 1
