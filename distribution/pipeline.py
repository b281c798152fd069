"""Running one delivery: claim it, adapt the item, call the connector, record the outcome.

Three short steps, because a platform call must never run inside a database transaction:

1. *Claim* (one committed transaction): a conditional UPDATE moves the row to ``sending`` with a lease and counts
   the attempt, and an attempt row is written *before* the call, so a worker killed mid-push leaves its trace. Only
   a due row, or one whose lease ran out (its worker died), can be claimed: two workers never push the same row at
   once. The item is adapted here, from the version's snapshot.
2. *Call* the connector, outside any transaction.
3. *Record* (one committed transaction): the attempt's outcome and the delivery's new state, only if the claim is
   still ours (the lease value is the claim's token).

Transient failures are retried with exponential backoff and jitter (``Retry-After`` wins when it asks for longer);
permanent ones, and the last allowed attempt, park the delivery for staff to fix and retry.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import ContentItem, ItemVersion
from marketplace.tenancy import tenant_phase

from .adapt import post_for
from .connectors import connector_for
from .connectors.base import Connector, PermanentError, Post, PublicationState, PushError, Receipt, TransientError
from .models import Delivery, DeliveryAttempt, Publication

log = logging.getLogger(__name__)
Status = Delivery.Status
Outcome = DeliveryAttempt.Outcome
WORKER = f"{socket.gethostname()}:{os.getpid()}"
MAX_CONFIRM_POLLS = 96


class Skip(Exception):
    """Nothing to send, for a reason worth showing (the item was archived, the channel turned off, ...)."""


@dataclass
class Job:
    delivery: Delivery
    attempt: DeliveryAttempt
    lease: object
    confirming: bool
    connector: Connector | None = None
    post: Post | None = None
    current: PublicationState | None = None
    skip: str = ""
    error: PushError | None = None


def claimable(now) -> Q:
    return (Q(status__in=[Status.QUEUED, Status.RETRYING, Status.CONFIRMING], due_at__lte=now)
            | Q(status=Status.SENDING, lease_until__lt=now))


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential from the base, capped, with "equal jitter" (half fixed, half random) so that many deliveries that
    failed together do not come back together; a longer ``Retry-After`` wins."""
    base, cap = settings.DISTRIBUTION_RETRY_BASE_SECONDS, settings.DISTRIBUTION_RETRY_CAP_SECONDS
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


def _publication_state(channel, item) -> PublicationState | None:
    publication = Publication.objects.filter(channel=channel, item=item, status=Publication.Status.LIVE).first()
    if publication is None:
        return None
    return PublicationState(item_id=item.pk, external_id=publication.external_id,
                            external_url=publication.external_url, version=publication.version, data=publication.data)


def _prepare(job: Job) -> None:
    """Everything the call needs, read inside the claim's transaction; a reason to skip, or a refusal, instead."""
    delivery = job.delivery
    channel, item = delivery.channel, delivery.item
    if not channel.is_enabled:
        raise Skip(_("The channel was turned off before this push ran."))
    job.current = _publication_state(channel, item)
    if delivery.action == Delivery.Action.WITHDRAW:
        if job.current is None and not job.confirming:
            raise Skip(_("Nothing to withdraw: the item is not live on this channel."))
    else:
        if item.status != ContentItem.Status.PUBLISHED:
            raise Skip(_("The item was archived before this push ran; nothing was sent."))
        if item.version > delivery.version and Delivery.objects.filter(
                channel=channel, item=item, version__gt=delivery.version).exclude(action=Delivery.Action.WITHDRAW
                                                                                 ).exists():
            raise Skip(_("Superseded by version %(version)s.") % {"version": item.version})
    job.connector = connector_for(channel)
    if delivery.action != Delivery.Action.WITHDRAW:
        version = ItemVersion.objects.get(item=item, number=delivery.version)
        job.post = post_for(channel=channel, connector=job.connector, item=item, version=version)
        job.connector.check(job.post)


def _claim(delivery_id: int, now) -> Job | None:
    lease = now + timedelta(seconds=settings.DISTRIBUTION_LEASE_SECONDS)
    row = Delivery.objects.filter(pk=delivery_id).filter(claimable(now))
    confirming = row.filter(status=Status.CONFIRMING).exists()
    changes = {"status": Status.SENDING, "lease_until": lease}
    if not confirming:
        changes["attempts"] = F("attempts") + 1
    if not row.update(**changes):
        return None
    delivery = Delivery.objects.select_related("channel", "item", "item__tenant").get(pk=delivery_id)
    attempt = DeliveryAttempt.objects.create(tenant=delivery.tenant, delivery=delivery, number=delivery.attempts,
                                             started_at=now, worker=WORKER)
    job = Job(delivery=delivery, attempt=attempt, lease=lease, confirming=confirming)
    try:
        _prepare(job)
    except Skip as reason:
        job.skip = str(reason)
    except PushError as exc:
        job.error = exc
    return job


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


def _requeue_lease(due_at):
    """A retry is sent to the broker with a countdown (``tasks.delivery_push``); the lease keeps the sweeper from
    queueing it a second time unless that message is lost. In-process tasks have no countdown: the sweeper retries."""
    from .tasks import tasks_run_in_process

    if tasks_run_in_process():
        return None
    return due_at + timedelta(seconds=settings.DISTRIBUTION_QUEUE_LEASE_SECONDS)


def _settle(job: Job, *, receipt: Receipt | None, error: PushError | None, latency_ms: int | None,
            now) -> str:
    """Write the outcome if the claim is still ours; return the delivery's new status."""
    delivery, attempt = job.delivery, job.attempt
    ours = Delivery.objects.select_for_update().filter(pk=delivery.pk, status=Status.SENDING, lease_until=job.lease)
    if not ours.exists():
        attempt.error = "lease lost: another worker took the delivery over"
        attempt.finished_at = now
        attempt.save(update_fields=["error", "finished_at"])
        return "lease_lost"
    attempt.finished_at, attempt.latency_ms = now, latency_ms
    fields = ["status", "lease_until", "message", "error_code"]
    delivery.lease_until = None
    delivery.error_code = ""
    if job.skip:
        delivery.status, delivery.message, delivery.finished_at = Status.SKIPPED, job.skip[:500], now
        attempt.outcome, attempt.error = Outcome.OK, job.skip[:500]
        fields.append("finished_at")
    elif error is not None:
        attempt.response_code, attempt.error = error.status, error.message[:500]
        delivery.message, delivery.error_code = error.message[:500], error.code[:60]
        last = delivery.attempts >= settings.DISTRIBUTION_MAX_ATTEMPTS
        if isinstance(error, TransientError) and not last:
            attempt.outcome = Outcome.TRANSIENT
            delivery.status = Status.CONFIRMING if job.confirming else Status.RETRYING
            delivery.due_at = now + timedelta(seconds=backoff_seconds(delivery.attempts, error.retry_after))
            delivery.lease_until = _requeue_lease(delivery.due_at)
            fields.append("due_at")
        else:
            attempt.outcome = Outcome.PERMANENT if isinstance(error, PermanentError) else Outcome.TRANSIENT
            if isinstance(error, TransientError):
                delivery.message = (_("Gave up after %(n)s attempts: ") % {"n": delivery.attempts}
                                    + error.message)[:500]
            delivery.status, delivery.finished_at = Status.PARKED, now
            fields.append("finished_at")
    elif receipt.pending and receipt.data.get("manual"):
        attempt.outcome = Outcome.PENDING
        delivery.status = Status.MANUAL
        delivery.message = _("Export package ready: publish it by hand, then mark it as published.")
    elif receipt.pending:
        polls = delivery.data.get("polls", 0) + 1 if job.confirming else 0
        attempt.outcome, attempt.external_id = Outcome.PENDING, receipt.external_id[:200]
        attempt.response_code = receipt.status_code
        delivery.external_id = receipt.external_id[:200]
        delivery.data = {**delivery.data, **receipt.data, "polls": polls}
        fields += ["external_id", "data"]
        if polls >= MAX_CONFIRM_POLLS:
            delivery.status, delivery.finished_at = Status.PARKED, now
            delivery.message = _("The platform accepted the post but never confirmed it was published.")
            fields.append("finished_at")
        else:
            delivery.status = Status.CONFIRMING
            delivery.message = receipt.note[:500] or _("Accepted; waiting for the platform to publish it.")
            delivery.due_at = now + timedelta(seconds=settings.DISTRIBUTION_CONFIRM_SECONDS)
            delivery.lease_until = _requeue_lease(delivery.due_at)
            fields.append("due_at")
    else:
        attempt.outcome, attempt.response_code = Outcome.OK, receipt.status_code
        attempt.external_id = receipt.external_id[:200]
        delivery.status, delivery.finished_at = Status.DELIVERED, now
        delivery.external_id = (receipt.external_id or delivery.external_id)[:200]
        delivery.external_url = (receipt.external_url or delivery.external_url)[:500]
        delivery.message = receipt.note[:500]
        fields += ["finished_at", "external_id", "external_url"]
        _publication_record(job, receipt, now)
    delivery.save(update_fields=fields)
    attempt.save(update_fields=["outcome", "response_code", "latency_ms", "external_id", "error", "finished_at"])
    return delivery.status


def _publication_record(job: Job, receipt: Receipt, now) -> None:
    delivery = job.delivery
    if delivery.action == Delivery.Action.WITHDRAW:
        Publication.objects.filter(channel=delivery.channel, item=delivery.item).update(
            status=Publication.Status.WITHDRAWN, updated_at=now)
        return
    current = Publication.objects.filter(channel=delivery.channel, item=delivery.item).first()
    data = {**(current.data if current else {}), **receipt.data}
    Publication.objects.update_or_create(
        tenant=delivery.tenant, channel=delivery.channel, item=delivery.item,
        defaults={"version": delivery.version, "status": Publication.Status.LIVE,
                  "external_id": (receipt.external_id or delivery.external_id)[:200],
                  "external_url": (receipt.external_url or delivery.external_url)[:500], "data": data,
                  "published_at": current.published_at if current else now})


def delivery_run(*, tenant, delivery_id: int) -> str:
    """Claim, push and record one delivery; returns its new status (or why nothing ran). Safe to call twice."""
    with tenant_phase(tenant):
        job = _claim(delivery_id, timezone.now())
    if job is None:
        return "not_claimable"
    receipt, error, latency = None, job.error, None
    if not job.skip and error is None:
        started = time.monotonic()
        try:
            receipt = _call(job)
        except PushError as exc:
            error = exc
        except Exception as exc:  # a connector bug must not lose the delivery: record it and retry
            log.exception("connector %s failed on delivery %s", job.delivery.channel.kind, delivery_id)
            error = TransientError(f"Unexpected error: {exc!r}"[:300], code="connector_error")
        latency = int((time.monotonic() - started) * 1000)
    with tenant_phase(tenant):
        return _settle(job, receipt=receipt, error=error, latency_ms=latency, now=timezone.now())
