"""The push pipeline end to end on the signed-webhook connector, against a real receiver on 127.0.0.1."""

import json
import re
import socket
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from catalog import services as catalog
from catalog.models import Category
from distribution import http, services
from distribution.credentials import decrypt
from distribution.models import Allocation, Channel, Delivery, DeliveryAttempt, Publication, PushSchedule
from distribution.pipeline import deliveries_run, delivery_run
from marketplace.errors import ApplicationError
from tests.factories import UserFactory, catalog_item
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_KEY, NEW_KEY = "U2t5ZmFsbGluZ0tleVJvdGF0aW9uMDAwMDAwMDAwMDA=", "XR1GSou5V8VYmWErtnPYpw1MHoEmRsdrlk8IwKA40ak="


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as r:
        yield r


@pytest.fixture
def staff(tenant_a):
    return UserFactory(email="editor@alpha.test")


def make_channel(tenant, url, **fields):
    with scope(tenant=tenant):
        channel, _ = services.channel_save(
            channel=Channel(tenant=tenant, name=fields.pop("name", "Partner hook"), kind=fields.pop("kind", "webhook"),
                            endpoint_url=url, **fields),
            credentials={"signing_secret": SECRET}, actor=None)
    return channel


def push(tenant, django_capture_on_commit_callbacks):
    """What beat and the workers do: dispatch the due deliveries and run them (tasks run in-process here)."""
    for _ in range(5):  # dispatching can queue follow-ups (a retry due now)
        with django_capture_on_commit_callbacks(execute=True), scope(tenant=tenant):
            if not services.deliveries_dispatch(tenant=tenant):
                return


def deliveries(tenant, **filters):
    with scopes_disabled():
        return list(Delivery.objects.filter(tenant=tenant, **filters).order_by("id"))


def test_publish_update_and_archive_reach_the_receiver_once_each(tenant_a, staff, receiver,
                                                                  django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Statistics for everyone", body="The **whole** article text.")
    push(tenant_a, django_capture_on_commit_callbacks)
    push(tenant_a, django_capture_on_commit_callbacks)  # a second beat sends nothing again
    [first] = deliveries(tenant_a)
    assert first.status == Delivery.Status.DELIVERED and first.action == "publish" and first.attempts == 1
    event = receiver.received[first.webhook_id]
    assert event["type"] == "content.published"
    assert event["data"]["title"] == "Statistics for everyone"
    assert f"zc={channel.code}" in event["data"]["link"]
    assert "whole" in event["data"]["html"]  # free: the full text travels
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert publication.status == "live" and publication.version == 1
    assert publication.external_id == f"rcv-{first.webhook_id}"

    with scope(tenant=tenant_a):
        services.deliveries_plan(item=item)  # planning the same version again adds nothing
        item.title = "Statistics for everyone, 2nd edition"
        item.save()
        catalog.item_publish_changes(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    rows = deliveries(tenant_a)
    assert [(d.version, d.action, d.status) for d in rows] == [
        (1, "publish", "delivered"), (2, "update", "delivered"), (2, "withdraw", "delivered")]
    assert [receiver.received[d.webhook_id]["type"] for d in rows] == [
        "content.published", "content.updated", "content.withdrawn"]
    assert sum(receiver.arrivals.values()) == 3
    publication.refresh_from_db()
    assert publication.status == "withdrawn"


def test_an_item_put_back_on_sale_is_published_again_where_archiving_withdrew_it(tenant_a, staff, receiver,
                                                                                   django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Seasonal guide")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        catalog.item_restore(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    rows = deliveries(tenant_a)
    assert [(d.version, d.action, d.status) for d in rows] == [
        (1, "publish", "delivered"), (1, "withdraw", "delivered"), (2, "publish", "delivered")]
    assert [receiver.received[d.webhook_id]["type"] for d in rows] == [
        "content.published", "content.withdrawn", "content.published"]
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert (publication.status, publication.version) == ("live", 2)
    with scope(tenant=tenant_a), pytest.raises(ApplicationError) as refused:
        catalog.item_restore(item=item, actor=staff)
    assert refused.value.code == "not_archived"


def test_a_paid_item_travels_as_its_description_and_a_paywall_link(tenant_a, receiver,
                                                                   django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Paid course", price=9900, description="What you will learn.",
                 body="SECRET CHAPTER: the paid body.")
    push(tenant_a, django_capture_on_commit_callbacks)
    [event] = receiver.received.values()
    data = event["data"]
    assert data["is_paid"] and "What you will learn." in data["html"]
    assert "SECRET CHAPTER" not in str(event)
    assert data["link"].replace("&", "&amp;") in data["html"]  # the paywall link


def test_channels_take_only_the_kinds_and_categories_they_ask_for(tenant_a, receiver,
                                                                  django_capture_on_commit_callbacks):
    with scopes_disabled():
        data = Category.objects.create(tenant=tenant_a, name="Data", slug="data")
    make_channel(tenant_a, receiver.url, name="Audio only", content_kinds=["audio"])
    by_category = make_channel(tenant_a, receiver.url, name="Data only")
    with scopes_disabled():
        by_category.categories.add(data)
    catalog_item(tenant_a, title="An article on art")
    assert deliveries(tenant_a) == []
    item = catalog_item(tenant_a, title="An article on data", published=False)
    with scopes_disabled():
        item.categories.add(data)
    with scope(tenant=tenant_a):
        staff = UserFactory(email="x@alpha.test")
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    assert [(d.channel_id, d.item_id) for d in deliveries(tenant_a)] == [(by_category.pk, item.pk)]


def test_an_item_moved_out_of_a_channels_categories_is_withdrawn_from_it(tenant_a, staff, receiver,
                                                                        django_capture_on_commit_callbacks):
    """A channel for the "Free" category shows a free article; the team makes it paid and takes it out of "Free".
    That channel does not carry such items: the article is withdrawn there (its whole free text must not stay up),
    while a channel that takes every item gets the new version."""
    with scopes_disabled():
        free = Category.objects.create(tenant=tenant_a, name="Free", slug="free")
    only_free = make_channel(tenant_a, receiver.url, name="Free only")
    everything = make_channel(tenant_a, receiver.url, name="Everything")
    with scopes_disabled():
        only_free.categories.add(free)
    item = catalog_item(tenant_a, title="Guide", body="THE WHOLE TEXT", published=False)
    with scope(tenant=tenant_a):
        item.categories.add(free)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        item.price = 4900
        item.save()
        item.categories.remove(free)
        catalog.item_publish_changes(item=item, actor=staff)
        services.deliveries_plan(item=item)  # planning the same version again adds nothing
    push(tenant_a, django_capture_on_commit_callbacks)
    rows = deliveries(tenant_a, channel=only_free)
    assert [(d.version, d.action, d.status) for d in rows] == [(1, "publish", "delivered"),
                                                             (2, "withdraw", "delivered")]
    assert [receiver.received[d.webhook_id]["type"] for d in rows] == ["content.published", "content.withdrawn"]
    assert [(d.version, d.action, d.status) for d in deliveries(tenant_a, channel=everything)] == [
        (1, "publish", "delivered"), (2, "update", "delivered")]
    with scopes_disabled():
        shown = dict(Publication.objects.filter(item=item).values_list("channel_id", "status"))
    assert shown == {only_free.pk: "withdrawn", everything.pk: "live"}


def test_a_push_in_flight_when_its_item_left_the_channel_is_not_retried_there(tenant_a, staff, receiver,
                                                                             django_capture_on_commit_callbacks):
    from distribution import pipeline
    from distribution.connectors.base import TransientError

    with scopes_disabled():
        free = Category.objects.create(tenant=tenant_a, name="Free", slug="free")
    channel = make_channel(tenant_a, receiver.url)
    with scopes_disabled():
        channel.categories.add(free)
    item = catalog_item(tenant_a, title="Guide", published=False)
    with scope(tenant=tenant_a):
        item.categories.add(free)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    [first] = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        batch = pipeline._claim(tenant_a, [first.pk], timezone.now())  # a worker is sending version 1
        item.refresh_from_db()
        item.categories.remove(free)
        catalog.item_publish_changes(item=item, actor=staff)
    batch.jobs[0].error = TransientError("No answer in time.", code="timeout")
    with scope(tenant=tenant_a):
        pipeline._settle(batch, timezone.now())
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Delivery.objects.filter(pk=first.pk).update(due_at=timezone.now())
    push(tenant_a, django_capture_on_commit_callbacks)
    first.refresh_from_db()
    assert (first.status, first.message) == ("skipped", "Superseded by version 2.")
    assert receiver.requests == []


def test_transient_failures_back_off_honouring_retry_after_then_park(tenant_a, receiver, settings,
                                                                    django_capture_on_commit_callbacks):
    settings.DISTRIBUTION_MAX_ATTEMPTS = 3
    make_channel(tenant_a, receiver.url)
    receiver.script = [(429, {"Retry-After": "7"})]
    catalog_item(tenant_a, title="Busy receiver")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert delivery.status == "retrying" and delivery.error_code == "http_429"
    assert delivery.due_at >= timezone.now() + timedelta(seconds=6)
    receiver.script = [(503, {}), (500, {})]
    for _ in range(2):
        with scopes_disabled():
            Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now(), lease_until=None)
        push(tenant_a, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == "parked" and delivery.attempts == 3
    assert "Gave up after 3 attempts" in delivery.message
    with scopes_disabled():
        log = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome", "response_code"))
    assert log == [("transient", 429), ("transient", 503), ("transient", 500)]
    assert receiver.received == {}

    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        services.delivery_retry(delivery=delivery, actor=None)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and list(receiver.received) == [delivery.webhook_id]


def test_a_retry_due_later_than_the_broker_holds_a_countdown_is_left_to_the_dispatcher(
        tenant_a, receiver, django_capture_on_commit_callbacks):
    """Redis hands a counted-down message that a worker holds past its visibility timeout to another worker, again
    and again: a retry due later than half of it is sent no countdown, and the dispatcher queues it when due."""
    from unittest import mock

    from distribution import tasks
    from marketplace.celery import app

    make_channel(tenant_a, receiver.url)
    with django_capture_on_commit_callbacks(execute=False):
        soon, later = catalog_item(tenant_a, title="Soon"), catalog_item(tenant_a, title="Later")
    rows = {d.item_id: d for d in deliveries(tenant_a)}
    previous, app.conf.task_always_eager = app.conf.task_always_eager, False  # a real broker: countdowns
    try:
        with mock.patch.object(tasks.deliveries_push, "apply_async") as sent:
            for item, wait in ((soon, "60"), (later, "7200")):
                receiver.script = [(429, {"Retry-After": wait})]
                tasks.deliveries_push(tenant_id=tenant_a.pk, delivery_ids=[rows[item.pk].pk])
    finally:
        app.conf.task_always_eager = previous
    [(_args, countdown)] = [(call.kwargs["kwargs"], call.kwargs["countdown"]) for call in sent.call_args_list]
    assert _args["delivery_ids"] == [rows[soon.pk].pk] and 59 <= countdown <= 60
    waiting = {d.item_id: d for d in deliveries(tenant_a)}
    assert waiting[later.pk].status == "retrying" and waiting[later.pk].lease_until is None
    assert waiting[soon.pk].lease_until > waiting[soon.pk].due_at  # its message is on its way

    with scopes_disabled():  # two hours later
        Delivery.objects.filter(pk=rows[later.pk].pk).update(due_at=timezone.now())
    push(tenant_a, django_capture_on_commit_callbacks)
    assert deliveries(tenant_a, item=later)[0].status == "delivered"


def test_a_rate_limited_platform_is_not_called_again_in_the_same_batch(tenant_a, receiver,
                                                                       django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    receiver.script = [(429, {"Retry-After": "60"})]
    with django_capture_on_commit_callbacks(execute=False):  # three publications, pushed together below
        for title in ("One", "Two", "Three"):
            catalog_item(tenant_a, title=title)
    push(tenant_a, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1  # the platform said wait: the other two were not sent
    rows = deliveries(tenant_a)
    assert {d.status for d in rows} == {"retrying"}
    assert all(d.due_at >= timezone.now() + timedelta(seconds=59) for d in rows)
    assert sorted(d.error_code for d in rows) == ["held", "held", "http_429"]
    with scopes_disabled():
        Delivery.objects.filter(tenant=tenant_a).update(due_at=timezone.now(), lease_until=None)
    push(tenant_a, django_capture_on_commit_callbacks)
    assert {d.status for d in deliveries(tenant_a)} == {"delivered"} and len(receiver.received) == 3


def test_deliveries_held_behind_a_rate_limit_keep_their_attempts_until_they_are_sent(
        tenant_a, receiver, settings, django_capture_on_commit_callbacks):
    settings.DISTRIBUTION_MAX_ATTEMPTS = 3
    make_channel(tenant_a, receiver.url)
    with django_capture_on_commit_callbacks(execute=False):  # three publications, pushed together below
        for title in ("One", "Two", "Three"):
            catalog_item(tenant_a, title=title)
    for _ in range(3):  # the platform rate-limits the first row three times; the other two are held each time
        receiver.script = [(429, {"Retry-After": "60"})]
        push(tenant_a, django_capture_on_commit_callbacks)
        with scopes_disabled():
            Delivery.objects.filter(tenant=tenant_a, status="retrying").update(due_at=timezone.now(),
                                                                               lease_until=None)
    tried, *held = deliveries(tenant_a)
    assert {r["id"] for r in receiver.requests} == {tried.webhook_id}
    assert (tried.status, tried.attempts) == ("parked", 3)
    assert [(d.status, d.attempts, d.error_code) for d in held] == [("retrying", 0, "held")] * 2
    with scopes_disabled():
        assert not DeliveryAttempt.objects.filter(delivery__in=held).exists()
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [(d.status, d.attempts) for d in deliveries(tenant_a)[1:]] == [("delivered", 1)] * 2


def test_a_delivery_held_back_unsent_still_counts_against_the_days_push_budget(
        tenant_a, receiver, django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    with scopes_disabled():
        Allocation.objects.create(tenant=tenant_a, channel=channel, day=timezone.localdate(), interest=0.5,
                                  exposure=10, share=1.0, budget=2)
    with django_capture_on_commit_callbacks(execute=False):  # three publications, two of them within the budget
        for title in ("One", "Two", "Three"):
            catalog_item(tenant_a, title=title)
    receiver.script = [(429, {"Retry-After": "60"})]  # the first is rate-limited, the second held back unsent
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Delivery.objects.filter(tenant=tenant_a, status="retrying").update(due_at=timezone.now(), lease_until=None)
    push(tenant_a, django_capture_on_commit_callbacks)
    assert len(receiver.received) == 2  # two first tries today, however the platform answered
    assert sorted(d.status for d in deliveries(tenant_a)) == ["delivered", "delivered", "retrying"]


def test_a_refused_request_parks_at_once(tenant_a, receiver, django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    receiver.script = [(422, {})]
    catalog_item(tenant_a, title="Refused")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("parked", 1, "http_422")


def test_wrong_credentials_park_with_the_receivers_answer(tenant_a, receiver, django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={"signing_secret": "whsec_d3Jvbmctc2VjcmV0"}, actor=None)
        assert services.channel_verify(channel=channel, actor=None).verified_at is None
    assert "401" in channel.verify_message
    catalog_item(tenant_a, title="Signed wrongly")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.error_code) == ("parked", "http_401")


def test_credentials_are_encrypted_and_shown_only_as_a_hint(tenant_a, receiver):
    channel = make_channel(tenant_a, receiver.url)
    assert SECRET not in channel.credentials_encrypted
    assert decrypt(channel.credentials_encrypted) == {"signing_secret": SECRET}
    assert channel.credentials_hint == f"signing_secret: ••••{SECRET[-4:]}"
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={"signing_secret": ""}, actor=None)  # blank keeps it
    assert decrypt(channel.credentials_encrypted) == {"signing_secret": SECRET}
    with scope(tenant=tenant_a):
        fresh, generated = services.channel_save(
            channel=Channel(tenant=tenant_a, name="New", kind="webhook", endpoint_url=receiver.url),
            credentials={}, actor=None)
    assert generated.startswith("whsec_") and decrypt(fresh.credentials_encrypted)["signing_secret"] == generated


@pytest.mark.parametrize("url", ["http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]:9/x",
                                 "http://192.168.0.10/"])
def test_a_channel_url_pointing_at_a_private_address_is_refused(tenant_a, settings, url):
    settings.DISTRIBUTION_ALLOWED_NETWORKS = []
    with scope(tenant=tenant_a), pytest.raises(ApplicationError) as refused:
        services.channel_save(channel=Channel(tenant=tenant_a, name="Sneaky", kind="webhook", endpoint_url=url),
                              credentials={}, actor=None)
    assert refused.value.code == "private_address" and refused.value.extra == {"field": "endpoint_url"}


def test_a_url_that_turns_private_after_saving_is_refused_at_send_time(tenant_a, receiver, settings,
                                                                       django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    settings.DISTRIBUTION_ALLOWED_NETWORKS = []  # 127.0.0.1 is loopback: no longer allowed
    catalog_item(tenant_a, title="Rebound")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.error_code) == ("parked", "private_address")
    assert receiver.requests == []


def test_a_name_that_resolves_to_a_private_address_only_when_connecting_is_refused_before_sending(
        tenant_a, settings, monkeypatch, django_capture_on_commit_callbacks):
    """DNS rebinding: the name answers a public address to the check before the call, and 127.0.0.1 (TTL 0) to the
    lookup that connects. The address the connection reached is checked too, so nothing reaches the service there."""
    settings.DISTRIBUTION_ALLOWED_NETWORKS = []
    real = socket.getaddrinfo

    def rebinding_dns(host, port, *args, **kwargs):
        if host == "hooks.rebind.example":
            asked_by_the_check = sys._getframe(1).f_code.co_name == "public_url_check"
            return real("93.184.216.34" if asked_by_the_check else "127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    with WebhookReceiver(SECRET) as internal:
        port = internal.url.rsplit(":", 1)[1].split("/")[0]
        make_channel(tenant_a, f"http://hooks.rebind.example:{port}/hooks")  # public when saved
        catalog_item(tenant_a, title="Rebound")
        push(tenant_a, django_capture_on_commit_callbacks)
        assert internal.requests == []
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.error_code) == ("parked", "private_address")
    assert "127.0.0.1" in delivery.message


def test_an_item_archived_before_its_push_ran_is_skipped_and_nothing_is_sent(tenant_a, staff, receiver):
    make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Short-lived")
    [delivery] = deliveries(tenant_a)
    with scopes_disabled():  # archived behind the pipeline's back, as a slow queue would see it
        type(item).objects.filter(pk=item.pk).update(status="archived")
    assert delivery_run(tenant=tenant_a, delivery_id=delivery.pk) == "skipped"
    delivery.refresh_from_db()
    assert "archived" in delivery.message and receiver.requests == []
    with scope(tenant=tenant_a):
        item.refresh_from_db()
        item.status = "published"
        item.save()
        catalog.item_archive(item=item, actor=staff)
    assert [d.action for d in deliveries(tenant_a)] == ["publish"]  # nothing live: nothing to withdraw


def test_archiving_after_a_push_timed_out_withdraws_what_the_receiver_may_have_kept(
        tenant_a, staff, monkeypatch, django_capture_on_commit_callbacks):
    """The receiver took the publication but answered after our timeout: the delivery waits to retry. Archiving
    cancels that retry and withdraws the item all the same; a push that never ran withdraws nothing."""
    monkeypatch.setattr(http, "TIMEOUT", (2, 0.5))
    with WebhookReceiver(SECRET, delay=1.0) as receiver:
        make_channel(tenant_a, receiver.url)
        item = catalog_item(tenant_a, title="Slow receiver")
        push(tenant_a, django_capture_on_commit_callbacks)
        time.sleep(1.0)  # the receiver keeps it after all
        [timed_out] = deliveries(tenant_a)
        assert (timed_out.status, timed_out.error_code) == ("retrying", "timeout")
        with django_capture_on_commit_callbacks(execute=False):  # its push never runs
            never_sent = catalog_item(tenant_a, title="Never sent")
        receiver.delay = 0
        with scope(tenant=tenant_a):
            catalog.item_archive(item=item, actor=staff)
            catalog.item_archive(item=never_sent, actor=staff)
        push(tenant_a, django_capture_on_commit_callbacks)
        events = list(receiver.received.values())
    assert [(e["type"], e["data"]["item_id"]) for e in events] == [("content.published", item.pk),
                                                                   ("content.withdrawn", item.pk)]
    rows = deliveries(tenant_a)
    assert [(d.item_id, d.action, d.status) for d in rows] == [
        (item.pk, "publish", "skipped"), (never_sent.pk, "publish", "skipped"), (item.pk, "withdraw", "delivered")]
    assert "nothing was sent" not in rows[0].message and "nothing was sent" in rows[1].message


def test_a_scheduled_push_waits_for_its_time(tenant_a, staff, receiver, django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Embargoed", published=False)
    with scope(tenant=tenant_a):
        services.push_schedule_set(item=item, push_at=timezone.now() + timedelta(hours=2), actor=staff)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert delivery.status == "scheduled" and receiver.requests == []
    with scopes_disabled():
        PushSchedule.objects.filter(item=item).update(push_at=timezone.now())
        Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now())
    push(tenant_a, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_push_every_published_item_waits_for_an_items_scheduled_time(tenant_a, staff, receiver,
                                                                   django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Embargoed until Friday", published=False)
    make_channel(tenant_a, receiver.url, name="Existing")
    push_at = timezone.now() + timedelta(days=2)
    with scope(tenant=tenant_a):
        services.push_schedule_set(item=item, push_at=push_at, actor=None)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    new = make_channel(tenant_a, receiver.url, name="New partner")
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        assert services.channel_backfill(channel=new, actor=None) == 1  # the admin's "Push every published item"
    push(tenant_a, django_capture_on_commit_callbacks)
    assert receiver.requests == []
    [backfilled] = deliveries(tenant_a, channel=new)
    assert (backfilled.status, backfilled.due_at) == ("scheduled", push_at)


def test_a_delivery_whose_worker_died_is_taken_over_and_the_dead_worker_cannot_record(tenant_a, receiver):
    from distribution import pipeline

    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Interrupted")
    [delivery] = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        stale = pipeline._claim(tenant_a, [delivery.pk], timezone.now())  # a worker claims, then dies
    assert stale is not None
    assert delivery_run(tenant=tenant_a, delivery_id=delivery.pk) == "not_claimable"  # its lease still holds
    with scopes_disabled():
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert delivery_run(tenant=tenant_a, delivery_id=delivery.pk) == "delivered"
    with scope(tenant=tenant_a):
        late = pipeline._settle(stale, timezone.now())
    assert late == {delivery.pk: "lease_lost"}
    with scopes_disabled():
        log = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("id").values_list("outcome", "error"))
    assert log == [("started", "lease lost: another worker took the delivery over"), ("ok", "")]
    assert receiver.arrivals[delivery.webhook_id] == 1


def test_a_slow_batch_extends_its_lease_and_leaves_a_row_another_worker_took_over(tenant_a, receiver):
    from distribution import pipeline

    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="First in the batch")
    catalog_item(tenant_a, title="Second in the batch")
    kept, taken = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        batch = pipeline._claim(tenant_a, [kept.pk, taken.pk], timezone.now())
    # The platform was slow: a second of the lease is left, and the second row's lease already ran out and another
    # worker holds it now.
    soon, theirs = timezone.now() + timedelta(seconds=1), timezone.now() + timedelta(minutes=5)
    with scopes_disabled():
        Delivery.objects.filter(pk=kept.pk).update(lease_until=soon)
        Delivery.objects.filter(pk=taken.pk).update(lease_until=theirs)
    batch.lease = soon
    pipeline._keep_lease(tenant_a, batch)
    assert batch.lease > soon
    kept.refresh_from_db()
    assert kept.lease_until == batch.lease
    assert [job.lost for job in batch.jobs] == [False, True]
    with scope(tenant=tenant_a):
        batch.jobs[0].receipt = pipeline._call(batch.jobs[0])
        statuses = pipeline._settle(batch, timezone.now())
    assert statuses == {kept.pk: "delivered", taken.pk: "lease_lost"}
    assert set(receiver.received) == {kept.webhook_id}  # the row another worker holds was not sent from here
    taken.refresh_from_db()
    assert (taken.status, taken.lease_until) == ("sending", theirs)


def test_the_lease_outlives_the_longest_push_a_connector_can_make(tenant_a, receiver, settings):
    """A WeChat publish is several calls, each allowed the full HTTP timeout: however short the configured lease, it
    is extended before the push so another worker cannot take the row over while the push is still running."""
    from distribution import http, pipeline

    settings.DISTRIBUTION_LEASE_SECONDS = 60
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Pushed")
    [row] = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        batch = pipeline._claim(tenant_a, [row.pk], timezone.now())
    need = 6 * http.CALL_SECONDS
    assert (batch.lease - timezone.now()).total_seconds() < need  # 60 s from the claim: too short for the push
    pipeline._keep_lease(tenant_a, batch, need=need)
    row.refresh_from_db()
    assert row.lease_until == batch.lease and (batch.lease - timezone.now()).total_seconds() >= need
    before = batch.lease
    pipeline._keep_lease(tenant_a, batch, need=need)  # enough is left: no write
    assert batch.lease == before


def test_replay_sends_the_same_message_id_again(tenant_a, receiver, django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Lost by the receiver")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        services.delivery_replay(delivery=delivery, actor=None)
    assert len(receiver.requests) == 2 and {r["id"] for r in receiver.requests} == {delivery.webhook_id}
    assert receiver.arrivals[delivery.webhook_id] == 2  # the receiver saw it twice and kept it once
    assert len(receiver.received) == 1


def test_a_retried_replay_never_sends_an_old_version_over_a_newer_one(tenant_a, staff, receiver,
                                                                     django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="First edition")
    push(tenant_a, django_capture_on_commit_callbacks)
    [first] = deliveries(tenant_a)
    receiver.script = [(410, {})]  # the replay is refused: parked
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        services.delivery_replay(delivery=first, actor=None)
    first.refresh_from_db()
    assert first.status == "parked"
    with scope(tenant=tenant_a):
        item.title = "Second edition"
        item.save()
        catalog.item_publish_changes(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [(d.version, d.status) for d in deliveries(tenant_a)] == [(1, "parked"), (2, "delivered")]
    seen = len(receiver.requests)
    with scope(tenant=tenant_a), pytest.raises(ApplicationError) as refused:  # "Retry now" on the parked replay
        services.delivery_retry(delivery=first, actor=None)
    assert refused.value.code == "replay_outdated"
    push(tenant_a, django_capture_on_commit_callbacks)
    first.refresh_from_db()
    assert first.status == "parked" and receiver.requests[seen:] == []
    with scopes_disabled():
        assert Publication.objects.get(item=item).version == 2


def test_a_title_with_angle_brackets_reaches_the_paywall_link_and_the_lesson_list_whole(
        tenant_a, staff, receiver, django_capture_on_commit_callbacks):
    from catalog.models import Lesson

    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Using <template> tags", price=9900, description="What you will learn.")
    course = catalog_item(tenant_a, title="Web components", kind="course", lessons=1, published=False)
    with scope(tenant=tenant_a):
        Lesson.objects.filter(item=course).update(title="The <slot> element")
        catalog.item_submit(item=course, actor=staff)
        catalog.item_approve(item=course, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    html = {event["data"]["title"]: event["data"]["html"] for event in receiver.received.values()}
    assert "Read the whole of “Using &lt;template&gt; tags” on" in html["Using <template> tags"]
    assert "<li>The &lt;slot&gt; element</li>" in html["Web components"]


def test_a_webhook_answered_with_a_redirect_is_parked_naming_the_new_address(tenant_a, receiver,
                                                                            django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    receiver.script = [(301, {"Location": "https://partner.example/new-hooks"})]
    catalog_item(tenant_a, title="Moved receiver")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert receiver.received == {}  # the redirect is not followed: nothing arrived
    assert (delivery.status, delivery.error_code) == ("parked", "http_301")
    assert "https://partner.example/new-hooks" in delivery.message
    with scopes_disabled():
        assert not Publication.objects.filter(item=delivery.item).exists()

    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):  # fixed at the receiver
        services.delivery_retry(delivery=delivery, actor=None)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and list(receiver.received) == [delivery.webhook_id]


def test_a_signing_secret_that_is_not_base64_is_refused_at_its_field(tenant_a):
    with scope(tenant=tenant_a), pytest.raises(ApplicationError) as refused:
        services.channel_save(
            channel=Channel(tenant=tenant_a, name="Hook", kind="webhook", endpoint_url="http://127.0.0.1:9/h"),
            credentials={"signing_secret": "whsec_not-base64!"}, actor=None)
    assert refused.value.code == "credentials_invalid" and refused.value.extra == {"field": "signing_secret"}
    with scopes_disabled():
        assert not Channel.objects.exists()


def test_a_malformed_secret_stored_earlier_is_reported_and_parks_at_once(tenant_a, receiver,
                                                                        django_capture_on_commit_callbacks):
    from distribution.credentials import encrypt

    with scopes_disabled():  # saved before secrets were checked
        channel = Channel.objects.create(tenant=tenant_a, name="Hook", kind="webhook", endpoint_url=receiver.url,
                                         credentials_encrypted=encrypt({"signing_secret": "whsec_not-base64!"}))
    with scope(tenant=tenant_a):
        services.channel_verify(channel=channel, actor=None)
    assert channel.verified_at is None and "signing secret is not valid" in channel.verify_message
    catalog_item(tenant_a, title="Signed with nothing")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("parked", 1, "invalid_credentials")
    assert receiver.requests == []


def test_replaying_a_delivered_withdrawal_sends_it_again_as_it_went(tenant_a, staff, receiver,
                                                                    django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Withdrawn later")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    published, withdrawal = deliveries(tenant_a)
    assert withdrawal.action == "withdraw" and withdrawal.status == "delivered"
    first = receiver.requests[-1]["body"]
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        services.delivery_replay(delivery=withdrawal, actor=None)
    withdrawal.refresh_from_db()
    assert withdrawal.status == "delivered" and receiver.arrivals[withdrawal.webhook_id] == 2
    again = receiver.requests[-1]
    assert again["id"] == withdrawal.webhook_id
    event, before = json.loads(again["body"]), json.loads(first)
    assert event["type"] == "content.withdrawn" and event["data"] == before["data"]
    assert event["data"]["external_id"] == f"rcv-{published.webhook_id}"  # what it removed, as the first time


def test_a_publication_is_not_replayed_over_what_the_receiver_was_told_later(tenant_a, staff, receiver,
                                                                             django_capture_on_commit_callbacks):
    make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Archived since")
    push(tenant_a, django_capture_on_commit_callbacks)
    [published] = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        catalog.item_archive(item=item, actor=staff)
        with pytest.raises(ApplicationError) as refused:  # the withdrawal is planned: it is the later delivery
            services.delivery_replay(delivery=published, actor=None)
    assert refused.value.code == "replay_outdated"
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():  # the withdrawal parked and given up on: still, the item is archived
        Delivery.objects.filter(item=item, action="withdraw").update(status="parked")
    with scope(tenant=tenant_a), pytest.raises(ApplicationError) as refused:
        services.delivery_replay(delivery=published, actor=None)
    assert refused.value.code == "replay_archived"
    published.refresh_from_db()
    assert published.status == "delivered" and receiver.arrivals[published.webhook_id] == 1


def test_credentials_no_configured_key_decrypts_park_the_push_with_the_reason(tenant_a, receiver, settings,
                                                                               django_capture_on_commit_callbacks):
    settings.CHANNEL_CREDENTIAL_KEYS = [OLD_KEY]
    channel = make_channel(tenant_a, receiver.url)
    settings.CHANNEL_CREDENTIAL_KEYS = [NEW_KEY]  # the old key was dropped before the channel was saved again
    catalog_item(tenant_a, title="Pushed after the key was dropped")
    push(tenant_a, django_capture_on_commit_callbacks)
    [delivery] = deliveries(tenant_a)
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("parked", 1, "credentials_unreadable")
    assert "cannot be decrypted" in delivery.message and receiver.requests == []
    with scope(tenant=tenant_a):
        services.channel_verify(channel=channel, actor=None)
    assert channel.verified_at is None and "cannot be decrypted" in channel.verify_message


def test_credentials_no_configured_key_decrypts_can_be_entered_again(tenant_a, receiver, settings):
    settings.CHANNEL_CREDENTIAL_KEYS = [OLD_KEY]
    channel = make_channel(tenant_a, receiver.url)
    with scope(tenant=tenant_a):
        wechat, _ = services.channel_save(channel=Channel(tenant=tenant_a, name="WeChat", kind="wechat"),
                                          credentials={"appid": "wx1", "appsecret": "s1"}, actor=None)
    settings.CHANNEL_CREDENTIAL_KEYS = [NEW_KEY]
    with scope(tenant=tenant_a):
        services.channel_save(channel=channel, credentials={"signing_secret": SECRET}, actor=None)
        with pytest.raises(ApplicationError) as missing:  # nothing stored can be kept: a blank required one is missing
            services.channel_save(channel=wechat, credentials={"appid": "wx2", "appsecret": ""}, actor=None)
    assert missing.value.code == "credentials_missing" and missing.value.extra == {"fields": ["AppSecret"]}
    assert decrypt(channel.credentials_encrypted) == {"signing_secret": SECRET}
    assert channel.credentials_hint == f"signing_secret: ••••{SECRET[-4:]}"


def test_a_retry_after_of_years_waits_a_day_and_the_rest_of_the_batch_is_recorded(tenant_a, receiver):
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Delivered fine")
    catalog_item(tenant_a, title="Answered with a Retry-After of years")
    first, second = deliveries(tenant_a)
    receiver.script = [(200, {}), (503, {"Retry-After": "999999999999"})]  # a tenant's own endpoint answers this
    statuses = deliveries_run(tenant=tenant_a, delivery_ids=[first.pk, second.pk])
    assert statuses == {first.pk: "delivered", second.pk: "retrying"}
    second.refresh_from_db()
    assert timezone.now() + timedelta(hours=23) < second.due_at <= timezone.now() + timedelta(days=1)
    with scopes_disabled():
        assert Publication.objects.get(item=first.item).status == "live"
        assert not DeliveryAttempt.objects.filter(outcome="started").exists()


def test_control_characters_in_a_receivers_answer_are_left_out_of_what_is_recorded(tenant_a, receiver):
    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Odd receiver")
    [delivery] = deliveries(tenant_a)
    receiver.handle = lambda headers, body: (200, {}, {"id": "rcv\u00001\ud800"})  # "rcv\\u00001\\ud800" on the wire
    assert delivery_run(tenant=tenant_a, delivery_id=delivery.pk) == "delivered"
    delivery.refresh_from_db()
    assert delivery.external_id == "rcv1"
    with scopes_disabled():
        assert Publication.objects.get(item=delivery.item).external_id == "rcv1"


def test_an_answer_the_database_refuses_parks_that_delivery_and_keeps_the_others(tenant_a, receiver):
    from distribution import pipeline
    from distribution.connectors.base import Receipt

    make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Delivered")
    catalog_item(tenant_a, title="Answered with NaN")
    fine, odd = deliveries(tenant_a)
    with scope(tenant=tenant_a):
        batch = pipeline._claim(tenant_a, [fine.pk, odd.pk], timezone.now())
    batch.jobs[0].receipt = pipeline._call(batch.jobs[0])
    # A platform's job id as Python's JSON parser reads a bare NaN: no database stores it as JSON.
    batch.jobs[1].receipt = Receipt(external_id="job-1", pending=True, data={"publish_id": float("nan")})
    with scope(tenant=tenant_a):
        statuses = pipeline._settle(batch, timezone.now())
    assert statuses == {fine.pk: "delivered", odd.pk: "parked"}
    fine.refresh_from_db()
    odd.refresh_from_db()
    assert fine.status == "delivered" and odd.status == "parked" and odd.error_code == "answer_unrecordable"
    assert "could not be recorded" in odd.message and odd.data == {}
    with scopes_disabled():
        assert list(Publication.objects.values_list("item_id", flat=True)) == [fine.item_id]
        outcomes = dict(DeliveryAttempt.objects.values_list("delivery_id", "outcome"))
    assert outcomes == {fine.pk: "ok", odd.pk: "permanent"}


def test_a_channel_turned_off_takes_no_new_items_but_what_it_shows_is_kept_in_step(
        tenant_a, staff, receiver, django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    shown = catalog_item(tenant_a, title="Shown there", body="Free text.")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=False)
    catalog_item(tenant_a, title="New while off")
    with scope(tenant=tenant_a):
        shown.price = 9900  # made paid: the free text must not stay up there
        shown.save()
        catalog.item_publish_changes(item=shown, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    with scope(tenant=tenant_a):
        catalog.item_archive(item=shown, actor=staff)
    push(tenant_a, django_capture_on_commit_callbacks)
    rows = deliveries(tenant_a, channel=channel)
    assert [(d.item.title, d.action, d.status) for d in rows] == [
        ("Shown there", "publish", "delivered"), ("Shown there", "update", "delivered"),
        ("Shown there", "withdraw", "delivered")]
    assert [receiver.received[d.webhook_id]["type"] for d in rows] == [
        "content.published", "content.updated", "content.withdrawn"]
    assert "Free text." not in receiver.received[rows[1].webhook_id]["data"]["html"]


def test_a_channel_turned_on_again_gets_the_items_skipped_while_it_was_off(tenant_a, receiver,
                                                                           django_capture_on_commit_callbacks):
    """An item's push ran while its channel was off and was skipped: once the channel is on again, "Push every
    published item that is not there yet" sends it (the skipped delivery, queued anew)."""
    channel = make_channel(tenant_a, receiver.url)
    item = catalog_item(tenant_a, title="Guide")  # its push is queued
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=False)  # turned off before the push ran
    push(tenant_a, django_capture_on_commit_callbacks)
    [skipped] = deliveries(tenant_a, channel=channel)
    assert skipped.status == "skipped" and receiver.received == {}
    with scopes_disabled():
        Channel.objects.filter(pk=channel.pk).update(is_enabled=True)
        channel.refresh_from_db()

    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        queued = services.channel_backfill(channel=channel, actor=None)
    push(tenant_a, django_capture_on_commit_callbacks)

    [delivery] = deliveries(tenant_a, channel=channel)
    with scopes_disabled():
        publication = Publication.objects.get(channel=channel, item=item)
    assert queued == 1 and (delivery.pk, delivery.status, delivery.attempts) == (skipped.pk, "delivered", 1)
    assert publication.status == "live" and list(receiver.received) == [delivery.webhook_id]
    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):  # and it is there now
        assert services.channel_backfill(channel=channel, actor=None) == 0


def test_push_every_published_item_leaves_parked_deliveries_to_staff(tenant_a, receiver,
                                                                     django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    receiver.script = [(422, {})]
    catalog_item(tenant_a, title="Refused")
    push(tenant_a, django_capture_on_commit_callbacks)
    assert [d.status for d in deliveries(tenant_a)] == ["parked"]

    with scope(tenant=tenant_a), django_capture_on_commit_callbacks(execute=True):
        assert services.channel_backfill(channel=channel, actor=None) == 0


def test_deleting_a_channel_removes_what_it_carried_and_is_audited(tenant_a, receiver,
                                                                     django_capture_on_commit_callbacks):
    from marketplace.models import AuditLog

    channel = make_channel(tenant_a, receiver.url)
    kept = make_channel(tenant_a, receiver.url, name="Other hook")
    catalog_item(tenant_a, title="Guide")
    push(tenant_a, django_capture_on_commit_callbacks)

    with scope(tenant=tenant_a):
        services.channel_delete(channel=channel, actor=None)

    with scopes_disabled():
        assert list(Channel.objects.filter(tenant=tenant_a)) == [kept]
        assert set(Delivery.objects.values_list("channel_id", flat=True)) == {kept.pk}
        assert set(Publication.objects.values_list("channel_id", flat=True)) == {kept.pk}
        assert set(DeliveryAttempt.objects.values_list("delivery__channel_id", flat=True)) == {kept.pk}
        audit = AuditLog.objects.get(action="distribution.channel_deleted")
    assert (audit.target_id, audit.data["name"]) == (str(channel.pk), "Partner hook")


def test_storefront_links_and_images_written_as_paths_arrive_absolute(tenant_a, receiver,
                                                                     django_capture_on_commit_callbacks):
    channel = make_channel(tenant_a, receiver.url)
    catalog_item(tenant_a, title="Links", body="Read [the next part](/item/part-two/) first.\n\n![Map](/media/map.png)")
    push(tenant_a, django_capture_on_commit_callbacks)
    [event] = receiver.received.values()
    html = event["data"]["html"]
    [href] = [h for h in re.findall(r'href="([^"]+)"', html) if "part-two" in h]
    assert href.startswith("http://alpha.test/item/part-two/?") and f"zc={channel.code}" in href
    assert 'src="http://alpha.test/media/map.png"' in html


def test_a_push_that_cannot_be_prepared_parks_and_the_rest_of_its_batch_goes(tenant_a, receiver,
                                                                             django_capture_on_commit_callbacks):
    from catalog.models import ItemVersion

    make_channel(tenant_a, receiver.url)
    with django_capture_on_commit_callbacks(execute=False):  # pushed together below
        catalog_item(tenant_a, title="Fine")
        broken = catalog_item(tenant_a, title="Snapshot from an older format")
    with scopes_disabled():
        ItemVersion.objects.filter(item=broken).update(snapshot={"kind": "article"})
    push(tenant_a, django_capture_on_commit_callbacks)
    fine, parked = deliveries(tenant_a)
    assert fine.status == "delivered" and list(receiver.received) == [fine.webhook_id]
    assert (parked.status, parked.attempts, parked.error_code) == ("parked", 1, "preparation_failed")
    assert "could not be prepared" in parked.message and "KeyError" in parked.message
