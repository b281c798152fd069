"""Running deliveries: claim a batch, adapt each item, call the connector, record the outcomes.

A push task carries up to ``PUSH_BATCH`` deliveries of one channel (``services.deliveries_dispatch`` groups them), so
the bookkeeping of a batch costs a handful of statements however many deliveries it holds. Three steps, because a
platform call must never run inside a database transaction:

1. *Claim* (one committed transaction): the due rows of the batch (or those whose lease ran out: their worker died)
   move to ``sending`` under one lease, their attempts are counted, and an attempt row per delivery is written
   *before* any call, so a worker killed mid-batch leaves its trace: an attempt that never finished means the
   platform may or may not have received it. Rows another worker holds are left to it (``SKIP LOCKED``), so two
   workers never push the same row at once. Each item is adapted here, from its version's snapshot.
2. *Call* the connector for each delivery in turn, outside any transaction. A slow platform cannot outlive the
   lease: before a push it is extended whenever less than half of it is left, or less than the push's calls may
   take (``Connector.calls_per_push`` times their timeout). A platform that asks to wait, times out or cannot be
   reached is not called again in this batch; the rest of its deliveries retry with it.
3. *Record* (one committed transaction): each attempt's outcome and each delivery's new state, only for the rows
   whose claim is still ours (the lease value is the claim's token).

A platform that publishes asynchronously (WeChat) accepts the post and then publishes it on its own. From that
moment the delivery is marked ``SUBMITTED`` and is only ever polled (``confirm``), never sent again: not after a
worker died mid-poll, nor when a newer version was approved or the item archived meanwhile. A later delivery of the
same item to the same channel waits until the earlier one is settled (``waits_for_earlier``), so a new version
replaces the post the platform published and archiving withdraws it, instead of leaving it live beside or after.

Transient failures are retried with exponential backoff and jitter (``Retry-After`` wins when it asks for longer, up
to a day); permanent ones, and the last allowed attempt, park the delivery for staff to fix and retry.

What a platform answers is not trusted to be storable: ids, URLs and messages lose the control characters and lone
surrogates a database refuses (PostgreSQL takes no NUL) before they are recorded. One delivery whose outcome still
cannot be worked out or written is parked on its own, with the reason; the outcomes of the rest of its batch are
recorded as usual, so what was delivered is never sent again for its neighbour's sake.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import ContentItem, ItemVersion
from marketplace.db import bulk_set
from marketplace.tenancy import tenant_phase

from . import http
from .adapt import post_for
from .connectors import connector_for
from .connectors.base import (
    Connector,
    PermanentError,
    Post,
    PublicationState,
    PublishFailed,
    PushError,
    Receipt,
    TransientError,
)
from .models import Channel, Delivery, DeliveryAttempt, Publication

log = logging.getLogger(__name__)
Status = Delivery.Status
Outcome = DeliveryAttempt.Outcome
WORKER = f"{socket.gethostname()}:{os.getpid()}"
MAX_CONFIRM_POLLS = 96
PUSH_BATCH = 50  # deliveries of one channel per push task
# A platform that rate-limits (``Retry-After``), times out or cannot be reached is not called again for the rest of
# the batch: its other deliveries wait with it, instead of each spending a request (or a timeout) to hear the same.
HOLD_CODES = {"timeout", "connection_failed"}
# The error code of a delivery held back that way: it was not sent, so it gives its attempt back and never parks.
HELD = "held"
LEASE_LOST = "lease lost: another worker took the delivery over"
# In ``Delivery.data``: the platform accepted the post and is publishing it (WeChat's ``publish_id``). From then on
# the delivery is confirmed (polled), never sent again, whoever claims it: after a takeover, a newer version or
# archiving, and a staff retry alike. Only the platform's word that the job failed (``PublishFailed``) clears it.
SUBMITTED = "submitted"
# In ``Delivery.data``: staff asked to send this delivered webhook or feed delivery again
# (``services.delivery_replay``). It goes as it went, whatever happened since: the version it named, and for a
# withdrawal what it removed.
REPLAY = "replay"
# In ``Delivery.data`` of a withdrawal: an earlier push of the item to the channel was tried (it timed out, or its
# worker died) and then cancelled (``services.deliveries_plan``), so the platform may show it though no publication
# was recorded. The withdrawal goes all the same, naming the item.
UNCONFIRMED = "unconfirmed"
# A ``Retry-After`` longer than this is taken as this: a platform (or a tenant's receiver) asking for years must not
# push the retry out of the range of a date, and a day covers the longest wait a platform documents (WeChat's daily
# quota).
MAX_RETRY_AFTER_SECONDS = 24 * 3600
# What a database cannot store in text or JSON (PostgreSQL refuses NUL, no database takes a lone surrogate), together
# with the other control characters, which have no place in an id, a URL or a one-line message. Tab, newline and
# carriage return are kept.
NOT_STORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
DELIVERY_FIELDS = ["status", "lease_until", "attempts", "message", "error_code", "due_at", "finished_at",
                   "external_id", "external_url", "data"]
ATTEMPT_FIELDS = ["number", "outcome", "response_code", "latency_ms", "external_id", "error", "finished_at"]


class Skip(Exception):
    """Nothing to send, for a reason worth showing (the item was archived, the channel turned off, ...)."""


@dataclass
class Job:
    delivery: Delivery
    confirming: bool
    attempt: DeliveryAttempt | None = None
    connector: Connector | None = None
    post: Post | None = None
    current: PublicationState | None = None
    skip: str = ""
    error: PushError | None = None
    receipt: Receipt | None = None
    latency_ms: int | None = None
    lost: bool = False  # another worker took the row over while this batch ran
    given_back: bool = False  # held back unsent (``HELD``): its attempt row is removed
    recorded: dict = field(default_factory=dict)  # the row's platform fields as stored before this attempt
    claimed: tuple[dict, dict] | None = None  # the delivery's and the attempt's fields as the claim left them

    def as_claimed(self) -> None:
        """Put the delivery and the attempt back as the claim left them (kept the first time), so that recording the
        outcome can run again after a try the database broke off."""
        if self.claimed is None:
            self.claimed = ({name: getattr(self.delivery, name) for name in DELIVERY_FIELDS},
                            {name: getattr(self.attempt, name) for name in ATTEMPT_FIELDS})
        for row, values in zip((self.delivery, self.attempt), self.claimed, strict=True):
            for name, value in values.items():
                setattr(row, name, value)
        self.given_back = False

    @property
    def callable(self) -> bool:
        return not (self.skip or self.lost) and self.error is None and self.receipt is None


@dataclass
class Batch:
    lease: datetime
    jobs: list[Job] = field(default_factory=list)


def submitted(delivery: Delivery) -> bool:
    """Whether the platform already holds this delivery's post (see ``SUBMITTED``): it is polled, not sent."""
    return delivery.status == Status.CONFIRMING or bool((delivery.data or {}).get(SUBMITTED))


def waits_for_earlier() -> Exists:
    """An earlier delivery of the same item to the same channel is still being sent or confirmed, or waits to be
    published by hand (Zhihu). A later one (a new version, a withdrawal) waits for its outcome: the platform may be
    publishing it right now (staff may have posted the package already), and only once it is recorded live can the
    later delivery replace or withdraw it instead of leaving a second post beside it."""
    return Exists(Delivery.objects.filter(channel_id=OuterRef("channel_id"), item_id=OuterRef("item_id"),
                                          pk__lt=OuterRef("pk"),
                                          status__in=[Status.SENDING, Status.CONFIRMING, Status.MANUAL]))


def claimable(now) -> Q:
    return ((Q(status__in=[Status.QUEUED, Status.RETRYING, Status.CONFIRMING], due_at__lte=now)
             | Q(status=Status.SENDING, lease_until__lt=now)) & ~waits_for_earlier())


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential from the base, capped, with "equal jitter" (half fixed, half random) so that many deliveries that
    failed together do not come back together; a longer ``Retry-After`` wins, up to ``MAX_RETRY_AFTER_SECONDS``."""
    base, cap = settings.DISTRIBUTION_RETRY_BASE_SECONDS, settings.DISTRIBUTION_RETRY_CAP_SECONDS
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    asked = retry_after if retry_after is not None and math.isfinite(retry_after) else 0.0
    return max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))


def platform_text(value, limit: int) -> str:
    """A string a platform supplied (an id, a URL, an error message), fit to store: without ``NOT_STORABLE``
    characters, and at most ``limit`` long."""
    return NOT_STORABLE.sub("", str(value or ""))[:limit]


def platform_data(value):
    """A platform's JSON answer (kept in ``data``) with ``NOT_STORABLE`` characters taken out of every string."""
    if isinstance(value, str):
        return NOT_STORABLE.sub("", value)
    if isinstance(value, dict):
        return {NOT_STORABLE.sub("", str(key)): platform_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [platform_data(item) for item in value]
    return value


def _connector(channel: Channel, connectors: dict) -> Connector:
    """The channel's connector, built once per batch."""
    if channel.pk not in connectors:
        connectors[channel.pk] = connector_for(channel)
    return connectors[channel.pk]


def _prepare(job: Job, *, publications: dict, versions: dict, connectors: dict) -> None:
    """Everything the call needs, from what the claim read; a reason to skip, or a refusal, instead.

    A delivery the platform already holds is confirmed whatever happened since it was sent (a newer version, the
    item archived, the channel turned off): the platform publishes it anyway, so its outcome must be recorded for
    the later update or withdrawal to reach it.

    A channel turned off takes no new publications, but what it shows is still kept in step: a withdrawal, and an
    update of an item live there, go all the same, so an archived item (or the free body of an item made paid) does
    not stay up on a platform, or in a feed once it is turned on again. A replay goes as it went (``REPLAY``)."""
    delivery = job.delivery
    channel, item = delivery.channel, delivery.item
    if job.confirming:
        job.connector = _connector(channel, connectors)
        return
    replay = bool((delivery.data or {}).get(REPLAY))
    withdraw = delivery.action == Delivery.Action.WITHDRAW
    publication = publications.get((channel.pk, item.pk))
    # A replayed withdrawal names what it removed then: the publication it withdrew, withdrawn since.
    if publication is not None and (publication.status == Publication.Status.LIVE or (replay and withdraw)):
        job.current = PublicationState(item_id=item.pk, external_id=publication.external_id,
                                       external_url=publication.external_url, version=publication.version,
                                       data=publication.data)
    if withdraw:
        if job.current is None and (delivery.data or {}).get(UNCONFIRMED):  # the platform may show it all the same
            job.current = PublicationState(item_id=item.pk, external_id="", external_url="",
                                           version=delivery.version, data={})
        if job.current is None:
            raise Skip(_("Nothing to withdraw: the item is not live on this channel."))
    elif not replay:
        if not channel.is_enabled and job.current is None:
            raise Skip(_("The channel was turned off before this push ran."))
        if item.status != ContentItem.Status.PUBLISHED:
            raise Skip(_("The item was archived before this push ran; nothing was sent."))
        # A later version's delivery replaces this one; a later version's withdrawal says the channel no longer
        # takes the item (``services.deliveries_plan``).
        if item.version > delivery.version and Delivery.objects.filter(
                channel=channel, item=item, version__gt=delivery.version).exists():
            raise Skip(_("Superseded by version %(version)s.") % {"version": item.version})
    job.connector = _connector(channel, connectors)
    if not withdraw:
        version = versions.get((item.pk, delivery.version))
        if version is None:
            raise Skip(_("Version %(version)s of this item no longer exists.") % {"version": delivery.version})
        job.post = post_for(channel=channel, connector=job.connector, item=item, version=version)
        job.connector.check(job.post)


def _claim(tenant, delivery_ids, now) -> Batch | None:
    """Claim the claimable rows among ``delivery_ids`` and prepare their calls (inside a tenant phase)."""
    rows = list(Delivery.objects.filter(tenant=tenant, pk__in=delivery_ids).filter(claimable(now))
                .select_related("item").select_for_update(skip_locked=True, of=("self",)).order_by("pk"))
    if not rows:
        return None
    batch = Batch(lease=now + timedelta(seconds=settings.DISTRIBUTION_LEASE_SECONDS))
    # One statement. A publish-status poll is not an attempt (a failed one is counted when it is recorded); a
    # delivery the platform already holds is polled even when a takeover queued it again (``submitted``).
    polls = [row.pk for row in rows if submitted(row)]
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
        status=Status.SENDING, lease_until=batch.lease,
        attempts=F("attempts") + Case(When(pk__in=polls, then=Value(0)), default=Value(1)))
    channels = Channel.objects.filter(tenant=tenant).in_bulk({row.channel_id for row in rows})
    for row in rows:
        job = Job(delivery=row, confirming=row.pk in polls)
        row.attempts += 0 if job.confirming else 1
        row.status, row.lease_until = Status.SENDING, batch.lease
        row.tenant = row.item.tenant = tenant
        row.channel = channels[row.channel_id]
        job.attempt = DeliveryAttempt(tenant=tenant, delivery=row, number=row.attempts, started_at=now, worker=WORKER)
        batch.jobs.append(job)
    DeliveryAttempt.objects.bulk_create([job.attempt for job in batch.jobs])

    items = list({row.item_id: row.item for row in rows if row.action != Delivery.Action.WITHDRAW}.values())
    prefetch_related_objects(items, "categories", "tags", "item_creators__creator")
    pairs = Q(channel_id__in=channels.keys(), item_id__in={row.item_id for row in rows})
    publications = {(p.channel_id, p.item_id): p for p in Publication.objects.filter(pairs)}
    versions = {(v.item_id, v.number): v for v in ItemVersion.objects.filter(
        item__in=items, number__in={row.version for row in rows})} if items else {}
    connectors: dict[int, Connector] = {}
    for job in batch.jobs:
        try:
            _prepare(job, publications=publications, versions=versions, connectors=connectors)
        except Skip as reason:
            job.skip = str(reason)
        except PushError as exc:
            job.error = exc
        except DatabaseError:
            raise  # the claim's transaction is broken: nothing of it can be kept
        except Exception as exc:  # one delivery that cannot be prepared must not hold up (or requeue) the batch
            log.exception("preparing delivery %s failed", job.delivery.pk)
            job.error = PermanentError(_("This push could not be prepared (%(error)s): correct the channel or the "
                                         "item, then retry.") % {"error": f"{type(exc).__name__}: {exc}"},
                                       code="preparation_failed")
    return batch


def _call(job: Job) -> Receipt:
    connector, delivery = job.connector, job.delivery
    if job.confirming:
        return connector.confirm(Receipt(external_id=delivery.external_id, pending=True, data=delivery.data))
    if getattr(connector, "manual", False):
        return Receipt(pending=True, data={"manual": True})
    msg_id = delivery.webhook_id
    if delivery.action == Delivery.Action.WITHDRAW:
        return connector.withdraw(job.current, delivery_id=msg_id)
    # What the platform shows decides between publishing and updating; a replay of a publication sends it again.
    if job.current is not None and (delivery.action == Delivery.Action.UPDATE
                                    or job.current.version != delivery.version):
        return connector.update(job.post, job.current, delivery_id=msg_id)
    return connector.publish(job.post, delivery_id=msg_id)


def _keep_lease(tenant, batch: Batch, need: float = 0.0) -> None:
    """Before a push that may take up to ``need`` seconds, make sure the lease outlives it: extend it when less than
    that, or less than half of it, is left. Rows whose lease another worker took over meanwhile are not called."""
    now = timezone.now()
    seconds = max(settings.DISTRIBUTION_LEASE_SECONDS, 2 * need)
    if (batch.lease - now).total_seconds() >= max(settings.DISTRIBUTION_LEASE_SECONDS / 2, need):
        return
    lease, ids = now + timedelta(seconds=seconds), [job.delivery.pk for job in batch.jobs if not job.lost]
    with tenant_phase(tenant):
        Delivery.objects.filter(pk__in=ids, status=Status.SENDING, lease_until=batch.lease).update(lease_until=lease)
        kept = set(Delivery.objects.filter(pk__in=ids, lease_until=lease).values_list("pk", flat=True))
    batch.lease = lease
    for job in batch.jobs:
        job.lost = job.lost or job.delivery.pk not in kept


def countdown_limit() -> float:
    """The longest wait sent to the broker as a task's countdown. A worker holds a counted-down message
    unacknowledged until it is due, and Redis hands a message unacknowledged for longer than its visibility timeout
    to another worker: a longer countdown would come back again and again. Longer waits are left to the dispatcher,
    which finds the row once it is due."""
    return float(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)) / 2


def _requeue_lease(due_at, now):
    """A retry due within ``countdown_limit`` is sent to the broker with a countdown (``tasks.deliveries_push``); the
    lease keeps the sweeper from queueing it a second time unless that message is lost. In-process tasks have no
    countdown, and a longer wait gets none: the sweeper queues those when they are due (no lease)."""
    from .tasks import tasks_run_in_process

    if tasks_run_in_process() or (due_at - now).total_seconds() > countdown_limit():
        return None
    return due_at + timedelta(seconds=settings.DISTRIBUTION_QUEUE_LEASE_SECONDS)


def _clean_receipt(receipt: Receipt) -> Receipt:
    """The platform's answer as it can be stored (see ``NOT_STORABLE``), cut to the columns' lengths."""
    return Receipt(external_id=platform_text(receipt.external_id, 200),
                   external_url=platform_text(receipt.external_url, 500), pending=receipt.pending,
                   status_code=receipt.status_code, data=platform_data(receipt.data),
                   note=platform_text(receipt.note, 500))


def _outcome(job: Job, now) -> None:
    """The delivery's new state and the attempt's outcome, from what the call (or the preparation) gave."""
    delivery, attempt, error = job.delivery, job.attempt, job.error
    receipt = job.receipt = _clean_receipt(job.receipt) if job.receipt is not None else None
    attempt.finished_at, attempt.latency_ms = now, job.latency_ms
    delivery.lease_until = None
    delivery.error_code = ""
    if job.skip:
        delivery.status, delivery.message, delivery.finished_at = Status.SKIPPED, job.skip[:500], now
        delivery.data = {k: v for k, v in delivery.data.items() if k != REPLAY}
        attempt.outcome, attempt.error = Outcome.OK, job.skip[:500]
    elif error is not None:
        message = platform_text(error.message, 500)
        attempt.response_code, attempt.error = error.status, message
        delivery.message, delivery.error_code = message, platform_text(error.code, 60)
        job.given_back = isinstance(error, TransientError) and error.code == HELD
        if job.given_back:
            # Not sent: a platform that asks a batch to wait must not use up (and park) the rows it never saw.
            if not job.confirming:
                delivery.attempts -= 1
        elif job.confirming and isinstance(error, TransientError):
            # A poll that failed is an attempt: a platform that keeps failing to answer parks the delivery.
            delivery.attempts += 1
            attempt.number = delivery.attempts
        if isinstance(error, PublishFailed):  # the platform's job is over: sending it again is a new publication
            delivery.data = {k: v for k, v in delivery.data.items() if k != SUBMITTED}
        last = not job.given_back and delivery.attempts >= settings.DISTRIBUTION_MAX_ATTEMPTS
        if isinstance(error, TransientError) and not last:
            attempt.outcome = Outcome.TRANSIENT
            delivery.status = Status.CONFIRMING if job.confirming else Status.RETRYING
            delivery.due_at = now + timedelta(seconds=backoff_seconds(delivery.attempts, error.retry_after))
            delivery.lease_until = _requeue_lease(delivery.due_at, now)
        else:
            attempt.outcome = Outcome.PERMANENT if isinstance(error, PermanentError) else Outcome.TRANSIENT
            if isinstance(error, TransientError):
                delivery.message = (_("Gave up after %(n)s attempts: %(error)s")
                                    % {"n": delivery.attempts, "error": message})[:500]
            delivery.status, delivery.finished_at = Status.PARKED, now
    elif receipt.pending and receipt.data.get("manual"):
        attempt.outcome = Outcome.PENDING
        delivery.status = Status.MANUAL
        if delivery.action == Delivery.Action.WITHDRAW:
            delivery.message = _("Remove the post from the platform by hand, then mark this delivery as done.")
        else:
            delivery.message = _("Export package ready: publish it by hand, then mark it as published.")
    elif receipt.pending:
        polls = delivery.data.get("polls", 0) + 1 if job.confirming else 0
        attempt.outcome, attempt.external_id = Outcome.PENDING, receipt.external_id
        attempt.response_code = receipt.status_code
        delivery.external_id = receipt.external_id
        delivery.data = {**delivery.data, **receipt.data, "polls": polls, SUBMITTED: True}
        if polls >= MAX_CONFIRM_POLLS:
            delivery.status, delivery.finished_at = Status.PARKED, now
            delivery.message = _("The platform accepted the post but never confirmed it was published.")
        else:
            delivery.status = Status.CONFIRMING
            delivery.message = receipt.note or _("Accepted; waiting for the platform to publish it.")
            delivery.due_at = now + timedelta(seconds=settings.DISTRIBUTION_CONFIRM_SECONDS)
            delivery.lease_until = _requeue_lease(delivery.due_at, now)
    else:
        attempt.outcome, attempt.response_code = Outcome.OK, receipt.status_code
        attempt.external_id = receipt.external_id
        delivery.status, delivery.finished_at = Status.DELIVERED, now
        delivery.data = {k: v for k, v in delivery.data.items() if k not in (SUBMITTED, REPLAY)}
        delivery.external_id = (receipt.external_id or delivery.external_id)[:200]
        delivery.external_url = (receipt.external_url or delivery.external_url)[:500]
        delivery.message = receipt.note


def _unrecordable(job: Job, now, exc: Exception) -> None:
    """Park a delivery whose outcome could not be worked out or written, keeping the row as it was stored before
    this attempt (the platform's answer is what could not be kept). The platform may have taken the post: the
    message says so, for staff to look there before retrying."""
    delivery, attempt = job.delivery, job.attempt
    for name, value in job.recorded.items():
        setattr(delivery, name, value)
    reason = platform_text(f"{type(exc).__name__}: {exc}", 200)
    message = _("The platform's answer could not be recorded (%(error)s). It may have received the post: check "
                "there before retrying.") % {"error": reason}
    delivery.status, delivery.finished_at, delivery.lease_until = Status.PARKED, now, None
    delivery.message, delivery.error_code = message[:500], "answer_unrecordable"
    job.given_back = False
    attempt.outcome, attempt.error, attempt.external_id, attempt.finished_at = Outcome.PERMANENT, message[:500], "", now
    if not isinstance(attempt.response_code, int) or not 0 <= attempt.response_code <= 32767:
        attempt.response_code = None
    if not isinstance(attempt.latency_ms, int) or attempt.latency_ms < 0:
        attempt.latency_ms = None


def _write(settled: list[Job], jobs: list[Job], now) -> None:
    """Store the outcomes: the settled deliveries and their publications, and every job's attempt (one given back
    is removed: nothing was sent, and the day's budget counts first attempts)."""
    bulk_set([job.delivery for job in settled], DELIVERY_FIELDS)
    given_back = {job.attempt.pk for job in settled if job.given_back}
    if given_back:
        DeliveryAttempt.objects.filter(pk__in=given_back).delete()
    bulk_set([job.attempt for job in jobs if job.attempt.pk not in given_back], ATTEMPT_FIELDS)
    _publications_record([job for job in settled if job.delivery.status == Status.DELIVERED], now)


def _settle(batch: Batch, now) -> dict[int, str]:
    """Write the outcomes whose claim is still ours (inside a tenant phase); return each delivery's new status.

    The batch is written in a few statements. Should the database refuse one row of it, each delivery is written on
    its own instead (each in a savepoint), and one that is refused again is parked, so its neighbours' outcomes are
    kept and nothing already delivered is queued again. A connection the database broke fails the whole call, which
    can then be made again (``deliveries_run``)."""
    for job in batch.jobs:
        job.as_claimed()
    ids = [job.delivery.pk for job in batch.jobs]
    ours = set(Delivery.objects.select_for_update().filter(pk__in=ids, status=Status.SENDING, lease_until=batch.lease)
               .values_list("pk", flat=True))
    settled = []
    for job in batch.jobs:
        if job.delivery.pk in ours and not job.lost:
            delivery = job.delivery
            job.recorded = {"external_id": delivery.external_id, "external_url": delivery.external_url,
                            "data": delivery.data}
            try:
                _outcome(job, now)
            except Exception as exc:  # an answer this code cannot make sense of: park that one delivery
                log.exception("recording delivery %s failed", delivery.pk)
                _unrecordable(job, now, exc)
            settled.append(job)
        else:
            job.attempt.error, job.attempt.finished_at = LEASE_LOST, now
    settled_ids = {job.delivery.pk for job in settled}
    try:
        with transaction.atomic():
            _write(settled, batch.jobs, now)
    except (DatabaseError, ValueError):
        if connection.needs_rollback:  # the transaction is broken (the connection dropped): nothing more is written
            raise
        log.exception("recording a batch of %s deliveries failed; recording them one by one", len(batch.jobs))
        for job in batch.jobs:
            mine = [job] if job.delivery.pk in settled_ids else []
            try:
                with transaction.atomic():
                    _write(mine, [job], now)
            except (DatabaseError, ValueError) as exc:
                if connection.needs_rollback:
                    raise
                log.exception("recording delivery %s failed", job.delivery.pk)
                if mine:
                    _unrecordable(job, now, exc)
                else:  # another worker's row: only this attempt is ours to close
                    job.attempt.outcome, job.attempt.external_id, job.attempt.response_code = Outcome.STARTED, "", None
                with transaction.atomic():
                    _write(mine, [job], now)
    return {job.delivery.pk: job.delivery.status if job.delivery.pk in settled_ids else "lease_lost"
            for job in batch.jobs}


def _publications_record(jobs: list[Job], now) -> None:
    """What is live where, after these deliveries: one row per (channel, item)."""
    if not jobs:
        return
    pairs = Q(channel_id__in={job.delivery.channel_id for job in jobs},
              item_id__in={job.delivery.item_id for job in jobs})
    rows = {(p.channel_id, p.item_id): p for p in Publication.objects.select_for_update().filter(pairs)}
    changed, created = {}, {}
    for job in jobs:  # in delivery order: a later version's outcome wins
        delivery, receipt = job.delivery, job.receipt
        key = (delivery.channel_id, delivery.item_id)
        current = rows.get(key)
        if delivery.action == Delivery.Action.WITHDRAW:
            if current is not None:
                current.status, current.updated_at = Publication.Status.WITHDRAWN, now
                (changed if current.pk else created)[key] = current
            continue
        publication = current or Publication(tenant=delivery.tenant, channel_id=delivery.channel_id,
                                             item_id=delivery.item_id, published_at=now)
        publication.version, publication.status = delivery.version, Publication.Status.LIVE
        publication.external_id = (receipt.external_id or delivery.external_id)[:200]
        publication.external_url = (receipt.external_url or delivery.external_url)[:500]
        publication.data = {**(current.data if current else {}), **receipt.data}
        publication.updated_at = now
        rows[key] = publication
        (changed if publication.pk else created)[key] = publication
    fields = ["version", "status", "external_id", "external_url", "data", "updated_at"]
    bulk_set(list(changed.values()), fields)
    # A first publication may race another batch's for the same pair: the unique pair makes it one row.
    Publication.objects.bulk_create(created.values(), update_conflicts=True, unique_fields=["channel", "item"],
                                    update_fields=fields)


def deliveries_run(*, tenant, delivery_ids) -> dict[int, str]:
    """Claim, push and record a batch of deliveries; returns each one's new status, or why it did not run
    (``not_claimable``: not due, or another worker holds it). Safe to call twice."""
    with tenant_phase(tenant):
        batch = _claim(tenant, delivery_ids, timezone.now())
    statuses = dict.fromkeys(delivery_ids, "not_claimable")
    if batch is None:
        return statuses
    held: dict[int, TransientError] = {}  # channel -> the answer that asked this batch to stop calling it
    for position, job in enumerate(batch.jobs):
        if not job.callable:
            continue
        stop = held.get(job.delivery.channel_id)
        if stop is not None:
            reason = _("Not sent: the platform asked to wait (%(reason)s).") % {"reason": stop.message}
            job.error = TransientError(reason, code=HELD, retry_after=stop.retry_after)
            continue
        try:
            _keep_lease(tenant, batch, need=job.connector.calls_per_push * http.CALL_SECONDS)
        except (OperationalError, InterfaceError):
            # The database dropped: the rest of the batch is not pushed (the lease may not outlive it), and what
            # was pushed so far is recorded below, once it answers again.
            log.exception("extending the lease of a batch failed; recording what was pushed")
            _reconnect()
            reason = _("Not sent: the database could not be reached to extend the lease.")
            for rest in batch.jobs[position:]:
                if rest.callable:
                    rest.error = TransientError(reason, code=HELD)
            break
        if job.lost:
            continue
        started = time.monotonic()
        try:
            job.receipt = _call(job)
        except PushError as exc:
            job.error = exc
        except Exception as exc:  # a connector bug must not lose the delivery: record it and retry
            log.exception("connector %s failed on delivery %s", job.delivery.channel.kind, job.delivery.pk)
            job.error = TransientError(f"Unexpected error: {exc!r}"[:300], code="connector_error")
        job.latency_ms = int((time.monotonic() - started) * 1000)
        if isinstance(job.error, TransientError) and (job.error.retry_after or job.error.code in HOLD_CODES):
            held[job.delivery.channel_id] = job.error
    try:
        with tenant_phase(tenant):
            statuses.update(_settle(batch, timezone.now()))
    except (OperationalError, InterfaceError):
        # The platforms' answers are only in memory: a connection that dropped (a failover, a restart, a network
        # blip) is opened again and they are recorded once more, instead of the rows waiting for their lease to run
        # out and being pushed a second time.
        log.exception("recording a batch failed on a broken connection; recording it again")
        _reconnect()
        with tenant_phase(tenant):
            statuses.update(_recorded_after_all(batch))
            statuses.update(_settle(batch, timezone.now()))
    return statuses


def _recorded_after_all(batch: Batch) -> dict[int, str]:
    """After a connection broke while recording: the deliveries whose outcome was committed after all (the database
    committed, and only its answer was lost), taken out of ``batch`` so that they are not recorded again (as lost
    to another worker); each with the status recorded. Their attempts are closed, or gone (given back)."""
    open_attempts = set(DeliveryAttempt.objects.filter(
        pk__in=[job.attempt.pk for job in batch.jobs], finished_at__isnull=True).values_list("pk", flat=True))
    done = [job.delivery.pk for job in batch.jobs if job.attempt.pk not in open_attempts]
    batch.jobs = [job for job in batch.jobs if job.attempt.pk in open_attempts]
    return dict(Delivery.objects.filter(pk__in=done).values_list("pk", "status"))


def _reconnect() -> None:
    """Drop a connection the database broke, outside any transaction: the next query opens a new one."""
    if not connection.in_atomic_block:
        connection.close()


def delivery_run(*, tenant, delivery_id: int) -> str:
    """Claim, push and record one delivery; returns its new status (or why nothing ran)."""
    return deliveries_run(tenant=tenant, delivery_ids=[delivery_id])[delivery_id]
