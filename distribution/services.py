"""Writes on distribution: channels, planning deliveries when content is published or archived, dispatching them
within the day's budget, staff's retry, replay and "mark as published", and push schedules."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import ContentItem
from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write

from . import credentials as secrets_store
from .connectors import connector_class, connector_for
from .connectors.base import PushError
from .models import (
    Allocation,
    Channel,
    ChannelClick,
    Delivery,
    DeliveryAttempt,
    DistributionSettings,
    Publication,
    PushSchedule,
)

Status = Delivery.Status
Action = Delivery.Action
DISPATCH_BATCH = 5000
EXTERNAL_ID_CHARS = Publication._meta.get_field("external_id").max_length
EXTERNAL_URL_CHARS = Publication._meta.get_field("external_url").max_length
REPLAYABLE_KINDS = {Channel.Kind.WEBHOOK, Channel.Kind.PARTNER, Channel.Kind.FEED}


def distribution_settings(*, tenant) -> DistributionSettings:
    found = DistributionSettings.objects.filter(tenant=tenant).first()
    return found or DistributionSettings.objects.get_or_create(tenant=tenant)[0]


# --- channels ------------------------------------------------------------------------------------------------------

def channel_endpoint_check(*, kind: str, endpoint_url: str) -> None:
    """A channel that delivers to an endpoint needs one, and it must resolve to a public address."""
    from .http import public_url_check

    if not connector_class(kind).needs_endpoint:
        return
    if not endpoint_url:
        raise ApplicationError(_("This type of channel needs an endpoint URL."), code="endpoint_missing",
                               extra={"field": "endpoint_url"})
    try:
        public_url_check(endpoint_url)
    except PushError as exc:
        raise ApplicationError(exc.message, code=exc.code, extra={"field": "endpoint_url"}) from exc


def channel_credentials_check(*, kind: str, credentials: dict[str, str]) -> None:
    """Credentials as entered must have the shape the platform expects (a webhook secret is ``whsec_`` and base64):
    one that cannot work is refused here, next to its field, rather than failing every push later. Blank inputs
    (keep the stored value, or generate one) pass."""
    entered = {name: (value or "").strip() for name, value in credentials.items()}
    errors = connector_class(kind).credential_errors(entered)
    if errors:
        name, message = next(iter(errors.items()))
        raise ApplicationError(message, code="credentials_invalid", extra={"field": name})


def channel_stored_credentials(*, channel: Channel) -> dict[str, str]:
    """The credentials stored on the channel as saved; none for a new one, or where none of the configured keys
    decrypts them (the key was dropped before the channel was saved again)."""
    try:
        return secrets_store.decrypt(channel.credentials_encrypted) if channel.pk else {}
    except ApplicationError:
        return {}


def channel_credentials_missing(*, channel: Channel, kind: str, credentials: dict[str, str],
                                stored: dict[str, str] | None = None) -> list:
    """The required credential fields of ``kind`` that neither the input nor the channel's stored credentials fill
    (a channel changed to another type has none of the new type's stored)."""
    stored = channel_stored_credentials(channel=channel) if stored is None else stored
    return [spec for spec in connector_class(kind).credential_fields
            if spec.required and not (credentials.get(spec.name) or "").strip() and not stored.get(spec.name)]


def channel_save(*, channel: Channel, credentials: dict[str, str], actor) -> tuple[Channel, str]:
    """Validate and save a channel; ``credentials`` left blank keep their stored value. Returns the channel and a
    newly generated webhook secret (shown to staff once), or "".

    Stored credentials that none of the configured keys decrypts (the key was dropped before the channel was saved
    again) count as empty: what is entered now replaces them, and a required one left blank is reported missing."""
    from .connectors.webhook import new_secret

    connector = connector_class(channel.kind)
    channel_endpoint_check(kind=channel.kind, endpoint_url=channel.endpoint_url)
    channel_credentials_check(kind=channel.kind, credentials=credentials)
    stored = channel_stored_credentials(channel=channel)
    values = {f.name: (credentials.get(f.name) or "").strip() or stored.get(f.name, "")
              for f in connector.credential_fields}
    generated = ""
    if "signing_secret" in values and not values["signing_secret"]:
        values["signing_secret"] = generated = new_secret()
    missing = [f.label for f in channel_credentials_missing(channel=channel, kind=channel.kind,
                                                            credentials=credentials, stored=stored)]
    if missing:
        raise ApplicationError(_("Missing credentials: %(fields)s.") % {"fields": ", ".join(missing)},
                               code="credentials_missing", extra={"fields": missing})
    changed = values != stored
    channel.credentials_encrypted = secrets_store.encrypt(values) if changed else channel.credentials_encrypted
    channel.credentials_hint = secrets_store.hint(values, {f.name for f in connector.credential_fields if f.secret})
    if changed:
        channel.verified_at, channel.verify_message = None, ""
    with transaction.atomic():
        created = channel.pk is None
        previous_kind = (None if created
                         else Channel.objects.filter(pk=channel.pk).values_list("kind", flat=True).first())
        channel.save()
        if previous_kind is not None and previous_kind != channel.kind:
            _platform_left(channel)
        audit_log_write(tenant=channel.tenant, actor=actor,
                        action="distribution.channel_created" if created else "distribution.channel_changed",
                        target=channel, data={"kind": channel.kind, "previous_kind": previous_kind,
                                              "credentials_changed": changed})
    return channel, generated


def _platform_left(channel: Channel) -> None:
    """The channel now reaches another platform (a feed became a WeChat account): what the old one shows is no
    longer on this channel. Its publications end, so the next version, and "Push every published item", publish
    anew there instead of updating posts the new platform never had. Pushes bound to the old platform (being sent,
    accepted and being published there, waiting to be posted by hand, and withdrawals) are skipped: nothing is sent
    to the new platform to remove what it does not hold. Pushes still waiting to be sent go to the new platform.

    Deliveries are written before publications, the order in which a worker records its outcomes."""
    from .pipeline import SUBMITTED

    now = timezone.now()
    bound = (Q(status__in=[Status.SENDING, Status.CONFIRMING, Status.MANUAL])
             | Q(status__in=Delivery.OPEN, action=Action.WITHDRAW)
             | Q(status__in=Delivery.OPEN, **{f"data__{SUBMITTED}": True}))
    Delivery.objects.filter(channel=channel).filter(bound).update(
        status=Status.SKIPPED, finished_at=now, lease_until=None,
        message=_("The channel was changed to another type; this push was for the previous one."))
    Publication.objects.filter(channel=channel, status=Publication.Status.LIVE).update(
        status=Publication.Status.WITHDRAWN, updated_at=now)


def channel_delete(*, channel: Channel, actor) -> None:
    """Delete a channel with its deliveries, attempts, publications, clicks and allocations.

    The channel's deliveries are locked before the cascade runs, in the order a worker locks them: a worker
    recording a push locks its delivery rows first and then writes their attempts and publications, while Django's
    cascade deletes attempts and publications before deliveries. Taking the deliveries first makes one wait for the
    other instead of each holding a row the other needs (a deadlock)."""
    with transaction.atomic():
        list(Delivery.objects.select_for_update().filter(channel_id=channel.pk).values_list("pk", flat=True))
        audit_log_write(tenant=channel.tenant, actor=actor, action="distribution.channel_deleted", target=channel,
                        data={"name": channel.name, "kind": channel.kind})
        Channel.objects.filter(pk=channel.pk).delete()


def channel_verify(*, channel: Channel, actor) -> Channel:
    """"Test connection": ask the platform whether the credentials work; the answer is kept on the channel."""
    try:
        message = connector_for(channel).verify()
        channel.verified_at, ok = timezone.now(), True
    except PushError as exc:
        message, ok = exc.message, False
        channel.verified_at = None
    channel.verify_message = message[:300]
    channel.save(update_fields=["verified_at", "verify_message"])
    audit_log_write(tenant=channel.tenant, actor=actor, action="distribution.channel_verified", target=channel,
                    data={"ok": ok, "message": channel.verify_message})
    return channel


def _matches(channel: Channel, item: ContentItem, item_categories: set[int], wanted: set[int]) -> bool:
    """Whether ``item`` goes to ``channel``: its kind is taken, and it is in one of the ``wanted`` categories (if
    the channel names any)."""
    if channel.content_kinds and item.kind not in channel.content_kinds:
        return False
    return not wanted or bool(wanted & item_categories)


# --- planning ------------------------------------------------------------------------------------------------------

def _cancel(rows, *, now, message: str, tried_message: str = "") -> set[int]:
    """Skip ``rows`` (pushes still waiting) and return the channels of those already tried: a push that timed out, or
    whose worker died, may have reached the platform, which may show it now."""
    tried = set(rows.filter(attempts__gt=0).values_list("channel_id", flat=True))
    if tried_message:
        rows.filter(attempts__gt=0).update(status=Status.SKIPPED, finished_at=now, lease_until=None,
                                           message=tried_message)
    rows.update(status=Status.SKIPPED, finished_at=now, lease_until=None, message=message)
    return tried


def _shown_on(item: ContentItem) -> set[int]:
    """The channels where the item is live, or where a push of it (not a withdrawal) is being sent or has been
    accepted and is being published by the platform.

    One statement, so one snapshot: a worker records a push as its delivery delivered and its publication live in
    one commit, and two reads (publications, then deliveries) could fall on either side of it and see neither."""
    live = Publication.objects.filter(channel=OuterRef("pk"), item=item, status=Publication.Status.LIVE)
    in_flight = (Delivery.objects.filter(channel=OuterRef("pk"), item=item, status__in=[Status.SENDING,
                                                                                        Status.CONFIRMING])
                 .exclude(action=Action.WITHDRAW))
    return set(Channel.objects.filter(tenant=item.tenant).filter(Exists(live) | Exists(in_flight))
               .values_list("pk", flat=True))


def deliveries_plan(*, item: ContentItem, actor=None) -> list[Delivery]:
    """Create the deliveries that follow the item's latest change; call inside the transaction that publishes or
    archives it. The rows commit with the publication (nothing is lost between the two), and the pushes start when
    that transaction has committed. A published version goes to every matching enabled channel (an update where the
    channel already shows the item, also when the channel is turned off); where the channel shows the item but no
    longer takes it (its kind or categories changed), it is withdrawn. Archiving withdraws it wherever it is live or
    in flight, or may be after a push that was tried (it timed out, say), turned off or not. Re-running changes
    nothing: the key (channel, item, version, action) is unique."""
    from .pipeline import UNCONFIRMED

    now = timezone.now()
    open_rows = Delivery.objects.filter(item=item, status__in=[Status.SCHEDULED, Status.QUEUED, Status.RETRYING])
    rows: list[Delivery] = []
    # A withdrawal waits for a publication still in flight there, or one staff may have posted by hand but not yet
    # marked as published (``pipeline.waits_for_earlier``), then removes what the platform made of it. Read before
    # ``_shown_on``: marking it as published makes its publication live in the same commit, which that read then sees.
    by_hand = set(Delivery.objects.filter(item=item, status=Status.MANUAL).exclude(action=Action.WITHDRAW)
                  .values_list("channel_id", flat=True))
    waiting = _("Waits until the post being published by hand is marked as published; then it is withdrawn.")
    if item.status == ContentItem.Status.ARCHIVED:
        tried = _cancel(open_rows.exclude(action=Action.WITHDRAW), now=now,
                        message=_("The item was archived before this push ran; nothing was sent."),
                        tried_message=_("The item was archived before this push was tried again; it is withdrawn "
                                        "in case an earlier attempt reached the platform."))
        for channel_id in _shown_on(item) | by_hand | tried:
            rows.append(Delivery(tenant=item.tenant, channel_id=channel_id, item=item, version=item.version,
                                 action=Action.WITHDRAW, status=Status.QUEUED, due_at=now,
                                 message=waiting if channel_id in by_hand else "",
                                 data={UNCONFIRMED: True} if channel_id in tried else {}))
    elif item.status == ContentItem.Status.PUBLISHED:
        tried = _cancel(open_rows.filter(version__lt=item.version).exclude(action=Action.WITHDRAW), now=now,
                        message=_("Superseded by version %(version)s.") % {"version": item.version})
        schedule = PushSchedule.objects.filter(item=item, push_at__gt=now).first()
        due = schedule.push_at if schedule else now
        # An earlier version the platform may be publishing right now is replaced too: this delivery waits for its
        # outcome (``pipeline.waits_for_earlier``), then updates what it left live.
        live = _shown_on(item)
        categories = set(item.categories.values_list("pk", flat=True))
        planned = set(Delivery.objects.filter(item=item, version=item.version).values_list("channel_id", flat=True))
        # The item's own storefront, named: in the operator's admin (the platform scope) every storefront's channels
        # are visible. A channel turned off takes no new publication, but where the item is live it is updated all
        # the same: the platform (or the feed, once turned on again) must not keep showing an older version, such as
        # the free body of an item made paid. A channel that no longer takes the item (it left the channel's
        # categories, say) said it does not carry such items: what it shows, or may show, of it is withdrawn.
        for channel in Channel.objects.filter(tenant=item.tenant).prefetch_related("categories"):
            wanted = {c.pk for c in channel.categories.all()}  # prefetched
            if channel.pk in planned:
                continue
            if not _matches(channel, item, categories, wanted):
                if channel.pk in live or channel.pk in tried or channel.pk in by_hand:
                    rows.append(Delivery(tenant=item.tenant, channel=channel, item=item, version=item.version,
                                         action=Action.WITHDRAW, status=Status.QUEUED, due_at=now,
                                         message=waiting if channel.pk in by_hand else "",
                                         data={UNCONFIRMED: True} if channel.pk in tried else {}))
                continue
            if not channel.is_enabled and channel.pk not in live:
                continue
            rows.append(Delivery(tenant=item.tenant, channel=channel, item=item, version=item.version,
                                 action=Action.UPDATE if channel.pk in live else Action.PUBLISH,
                                 status=Status.SCHEDULED if schedule else Status.QUEUED, due_at=due))
    if not rows:
        return []
    created = Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    audit_log_write(tenant=item.tenant, actor=actor, action="distribution.deliveries_planned", target=item,
                    data={"version": item.version, "channels": len(rows), "status": item.status})
    dispatch_after_commit(tenant=item.tenant)
    return created


def channel_backfill(*, channel: Channel, actor) -> int:
    """Push every published item of the channel's storefront that matches a (new, re-enabled or retyped) channel and
    is not on it yet; an item whose pushes are scheduled for later waits for its time here too. The storefront is
    named, not left to the scope: the operator's admin sees every storefront's items.

    An item is on the channel, or on its way, when its current version has a delivery there that is waiting, being
    sent or confirmed, waiting to be posted by hand, or parked (staff retry those), or one that was delivered while
    the item is live there. A delivery that was skipped (the channel was off when it ran), or delivered to the
    platform the channel reached before its type changed, is queued again: the same row, sent afresh, since
    (channel, item, version, action) is unique."""
    now = timezone.now()
    live = set(Publication.objects.filter(channel=channel, status=Publication.Status.LIVE)
               .values_list("item_id", flat=True))
    existing: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
    for pk, item_id, version, status in (Delivery.objects.filter(channel=channel).exclude(action=Action.WITHDRAW)
                                         .values_list("pk", "item_id", "version", "status")):
        existing[(item_id, version)].append((pk, status))
    wanted = set(channel.categories.values_list("pk", flat=True))
    scheduled = dict(PushSchedule.objects.filter(tenant=channel.tenant, push_at__gt=now)
                     .values_list("item_id", "push_at"))
    rows, again = [], defaultdict(list)
    published = ContentItem.objects.filter(tenant=channel.tenant, status=ContentItem.Status.PUBLISHED)
    for item in published.prefetch_related("categories"):
        if not _matches(channel, item, {c.pk for c in item.categories.all()}, wanted):
            continue
        found = existing.get((item.pk, item.version), [])
        if any(status not in (Status.SKIPPED, Status.DELIVERED) for _pk, status in found):
            continue
        if item.pk in live and any(status == Status.DELIVERED for _pk, status in found):
            continue
        push_at = scheduled.get(item.pk)
        if found:
            again[push_at].append(min(pk for pk, _status in found))
        else:
            rows.append(Delivery(tenant=channel.tenant, channel=channel, item=item, version=item.version,
                                 action=Action.PUBLISH, status=Status.SCHEDULED if push_at else Status.QUEUED,
                                 due_at=push_at or now))
    with transaction.atomic():
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        queued = len(rows)
        for push_at, pks in again.items():
            queued += Delivery.objects.filter(pk__in=pks, status__in=[Status.SKIPPED, Status.DELIVERED]).update(
                status=Status.SCHEDULED if push_at else Status.QUEUED, due_at=push_at or now, attempts=0,
                lease_until=None, finished_at=None, message="", error_code="", external_id="", external_url="",
                data={})
        audit_log_write(tenant=channel.tenant, actor=actor, action="distribution.channel_backfilled",
                        target=channel, data={"items": queued})
    dispatch_after_commit(tenant=channel.tenant)
    return queued


def push_schedule_set(*, item: ContentItem, push_at: datetime | None, actor) -> PushSchedule | None:
    """Hold the item's next pushes until ``push_at`` (None clears it). Deliveries already waiting move with it."""
    with transaction.atomic():
        if push_at is None:
            PushSchedule.objects.filter(item=item).delete()
            Delivery.objects.filter(item=item, status=Status.SCHEDULED).update(status=Status.QUEUED,
                                                                               due_at=timezone.now())
            schedule = None
        else:
            schedule, _created = PushSchedule.objects.update_or_create(tenant=item.tenant, item=item,
                                                                       defaults={"push_at": push_at})
            Delivery.objects.filter(item=item, status__in=[Status.SCHEDULED, Status.QUEUED], attempts=0).exclude(
                action=Action.WITHDRAW).update(status=Status.SCHEDULED, due_at=push_at, lease_until=None)
        audit_log_write(tenant=item.tenant, actor=actor, action="distribution.push_scheduled", target=item,
                        data={"push_at": push_at.isoformat() if push_at else None})
    dispatch_after_commit(tenant=item.tenant)
    return schedule


# --- dispatching ---------------------------------------------------------------------------------------------------

def _day_start(now) -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def budgets_today(*, tenant, now) -> tuple[dict[int, int | None], dict[int, float]]:
    """Each of the storefront's channels' push budget and share from the latest allocation (no allocation yet: no
    limit). The dispatcher runs after every publication and every minute, so it reads one day's rows, not the
    history."""
    allocations = Allocation.objects.filter(tenant=tenant)
    day = (allocations.filter(day__lte=timezone.localdate(now)).order_by("-day")
           .values_list("day", flat=True).first())
    rows = allocations.filter(day=day).values_list("channel_id", "budget", "share") if day else []
    budgets = {channel_id: budget for channel_id, budget, _share in rows}
    shares = {channel_id: share for channel_id, _budget, share in rows}
    return budgets, shares


def deliveries_dispatch(*, tenant) -> int:
    """Queue every delivery that is due, in the order of the channels' shares, within each channel's budget for the
    day (withdrawals and retries are never held back), and take over those whose worker died. Runs after each
    publication and every minute (beat); re-running it queues nothing twice, because a queued row carries a lease."""
    from .pipeline import PUSH_BATCH, SUBMITTED, waits_for_earlier
    from .tasks import deliveries_push

    now = timezone.now()
    # The storefront is named in every query, not left to the scope (the platform scope would see every one).
    deliveries = Delivery.objects.filter(tenant=tenant)
    deliveries.filter(status=Status.SCHEDULED, due_at__lte=now).update(status=Status.QUEUED)
    budgets, shares = budgets_today(tenant=tenant, now=now)
    used: dict[int, int] = defaultdict(int)
    if any(b is not None for b in budgets.values()):
        first_tries = (DeliveryAttempt.objects.filter(tenant=tenant, number=1, started_at__gte=_day_start(now))
                       .exclude(delivery__action=Action.WITHDRAW)
                       .values("delivery__channel_id").annotate(n=Count("id")))
        for row in first_tries:
            used[row["delivery__channel_id"]] = row["n"]
        # First tries handed to a worker and not yet made, also those held back unsent (``pipeline.HELD``: they
        # gave their attempt back) and waiting for their countdown.
        waiting = (deliveries.filter(status__in=[Status.QUEUED, Status.RETRYING], attempts=0, lease_until__gt=now)
                   .exclude(action=Action.WITHDRAW).values("channel_id").annotate(n=Count("id")))
        for row in waiting:
            used[row["channel_id"]] += row["n"]
    waiting = (Q(status__in=[Status.QUEUED, Status.RETRYING, Status.CONFIRMING], due_at__lte=now)
               & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
               | Q(status=Status.SENDING, lease_until__lt=now))
    # A delivery waiting for an earlier one of the same item and channel is not queued (nor leased) until that one
    # has settled: the next dispatch after it finds it.
    due = (deliveries.filter(waiting).exclude(waits_for_earlier())
           .values_list("pk", "channel_id", "attempts", "action", "due_at")[:DISPATCH_BATCH])
    due = sorted(due, key=lambda row: (-shares.get(row[1], 0.0), row[4], row[0]))
    chosen, batches, open_batch = [], [], {}
    for pk, channel_id, attempts, action, _due_at in due:
        budget = budgets.get(channel_id)
        if budget is not None and attempts == 0 and action != Action.WITHDRAW:  # a first try
            if used[channel_id] >= budget:
                continue
            used[channel_id] += 1
        chosen.append(pk)
        batch = open_batch.get(channel_id)  # a channel's rows in batches, in the order of the channels' shares
        if batch is None or len(batch) >= PUSH_BATCH:
            batch = open_batch[channel_id] = []
            batches.append(batch)
        batch.append(pk)
    if not chosen:
        return 0
    # Only rows still waiting: one a worker claimed meanwhile keeps its own lease (the claim's token). A push whose
    # worker died goes back to the queue, and a poll back to being confirmed (the platform has that post: it must
    # not be sent again); its attempt row stays as the worker left it.
    lease = now + timedelta(seconds=settings.DISTRIBUTION_QUEUE_LEASE_SECONDS)
    taken_over = deliveries.filter(waiting, pk__in=chosen, status=Status.SENDING)
    taken_over.filter(**{f"data__{SUBMITTED}": True}).update(status=Status.CONFIRMING, lease_until=lease)
    taken_over.update(status=Status.QUEUED, lease_until=lease)
    deliveries.filter(waiting, pk__in=chosen).update(lease_until=lease)
    tenant_id = tenant.pk

    def enqueue() -> None:
        for batch in batches:
            deliveries_push.delay(tenant_id=tenant_id, delivery_ids=batch)

    transaction.on_commit(enqueue)
    return len(chosen)


def dispatch_after_commit(*, tenant) -> None:
    from .tasks import deliveries_dispatch_task

    transaction.on_commit(lambda: deliveries_dispatch_task.delay(tenant_id=tenant.pk))


# --- staff actions -------------------------------------------------------------------------------------------------

def _send_again(delivery: Delivery, *, actor, action: str) -> None:
    """Queue a locked delivery to go now with a fresh count of attempts (inside the caller's transaction). One the
    platform already holds (``pipeline.SUBMITTED``) is polled again, not sent a second time."""
    from .pipeline import SUBMITTED

    delivery.status, delivery.attempts, delivery.due_at = Status.QUEUED, 0, timezone.now()
    if delivery.data.get(SUBMITTED):
        delivery.status, delivery.data = Status.CONFIRMING, {**delivery.data, "polls": 0}
    delivery.lease_until = delivery.finished_at = None
    delivery.save(update_fields=["status", "attempts", "due_at", "lease_until", "finished_at", "data"])
    audit_log_write(tenant=delivery.tenant, actor=actor, action=action, target=delivery)


def delivery_retry(*, delivery: Delivery, actor) -> Delivery:
    """Send a parked delivery (or one waiting to retry) again now, with a fresh count of attempts. A replay goes as
    it went, whatever happened since, so it is retried only where it could still be replayed."""
    from .pipeline import REPLAY

    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status not in (Status.PARKED, Status.RETRYING):
            raise ApplicationError(_("Only a parked delivery, or one waiting to retry, can be retried."),
                                   code="not_retryable")
        if delivery.data.get(REPLAY):
            _replay_check(delivery)
        _send_again(delivery, actor=actor, action="distribution.delivery_retried")
    dispatch_after_commit(tenant=delivery.tenant)
    return delivery


def _replay_check(delivery: Delivery) -> None:
    """Refuse to send ``delivery`` again as it went where that would undo what the receiver was told later."""
    later = Delivery.objects.filter(channel_id=delivery.channel_id, item_id=delivery.item_id,
                                    pk__gt=delivery.pk).exclude(status__in=[Status.SKIPPED, Status.PARKED])
    if later.exists():
        raise ApplicationError(_("This item has a later delivery to this channel: replaying this one would undo "
                                 "it at the receiver. Replay the latest one instead."), code="replay_outdated")
    if delivery.action != Action.WITHDRAW and delivery.item.status != ContentItem.Status.PUBLISHED:
        raise ApplicationError(_("The item was archived since: replaying its publication would put it back at "
                                 "the receiver."), code="replay_archived")


def delivery_replay(*, delivery: Delivery, actor) -> Delivery:
    """Send a delivered webhook again, as it went and with the same id, for a receiver that lost it (as Stripe
    resends an event): the version it named, and for a withdrawal what it removed, whatever happened since.

    Refused, with the reason, where resending would undo what the receiver was told later: after a later delivery
    of the item to the channel (a new version, a withdrawal; replay that one instead), and for a publication or an
    update of an item archived since."""
    from .pipeline import REPLAY

    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("channel", "item").get(pk=delivery.pk)
        if delivery.status != Status.DELIVERED or delivery.channel.kind not in REPLAYABLE_KINDS:
            raise ApplicationError(_("Only a delivered webhook or feed delivery can be replayed (a platform post "
                                     "would be published twice)."), code="not_replayable")
        _replay_check(delivery)
        delivery.data = {**delivery.data, REPLAY: True}
        _send_again(delivery, actor=actor, action="distribution.delivery_replayed")
    dispatch_after_commit(tenant=delivery.tenant)
    return delivery


def export_package(*, delivery: Delivery) -> bytes:
    """The package staff publish by hand (Zhihu): the delivery's version adapted for its channel."""
    from catalog.models import ItemVersion

    from .adapt import post_for

    if delivery.status != Status.MANUAL or delivery.action == Action.WITHDRAW:
        raise ApplicationError(_("This delivery has no package to publish by hand."), code="not_manual")
    try:
        connector = connector_for(delivery.channel)
    except PushError as exc:
        raise ApplicationError(exc.message, code=exc.code) from exc
    version = ItemVersion.objects.get(item=delivery.item, number=delivery.version)
    return connector.export_package(post_for(channel=delivery.channel, connector=connector, item=delivery.item,
                                             version=version))


def external_id_for(url: str) -> str:
    """The platform id kept for a post recorded by its URL: the URL without its query and fragment (a share link's
    tracking parameters), or its SHA-256 where that is still longer than the column holds. The full URL is kept as
    the publication's link."""
    parts = urlsplit(url)
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return bare if len(bare) <= EXTERNAL_ID_CHARS else "sha256:" + hashlib.sha256(url.encode()).hexdigest()


def delivery_mark_done(*, delivery: Delivery, external_url: str, actor) -> Delivery:
    """Staff published (or removed) the export package by hand: record where, so clicks and orders are tracked."""
    from .connectors.zhihu import zhihu_url_check

    external_url = (external_url or "").strip()
    if len(external_url) > EXTERNAL_URL_CHARS:
        raise ApplicationError(_("The address is too long (at most %(n)s characters).") % {"n": EXTERNAL_URL_CHARS},
                               code="external_url_invalid", extra={"field": "external_url"})
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("channel", "item").get(pk=delivery.pk)
        if delivery.status != Status.MANUAL:
            raise ApplicationError(_("This delivery is not waiting to be published by hand."), code="not_manual")
        now = timezone.now()
        if delivery.action == Action.WITHDRAW:
            Publication.objects.filter(channel=delivery.channel, item=delivery.item).update(
                status=Publication.Status.WITHDRAWN, updated_at=now)
        else:
            try:
                if delivery.channel.kind == Channel.Kind.ZHIHU:
                    zhihu_url_check(external_url)
            except ValueError as exc:
                raise ApplicationError(str(exc), code="external_url_invalid",
                                       extra={"field": "external_url"}) from exc
            delivery.external_url = external_url
            Publication.objects.update_or_create(
                tenant=delivery.tenant, channel=delivery.channel, item=delivery.item,
                defaults={"version": delivery.version, "status": Publication.Status.LIVE,
                          "external_url": external_url, "external_id": external_id_for(external_url),
                          "published_at": now})
        delivery.status, delivery.finished_at = Status.DELIVERED, now
        delivery.message = _("Marked as done by hand.")
        delivery.save(update_fields=["status", "finished_at", "external_url", "message"])
        audit_log_write(tenant=delivery.tenant, actor=actor, action="distribution.delivery_marked_done",
                        target=delivery, data={"url": external_url})
    return delivery



# --- tracked links -------------------------------------------------------------------------------------------------

def click_record(*, code: str, visitor: str, user=None, path: str = "") -> ChannelClick | None:
    """A visit through a channel's tracked link (unknown codes, and other storefronts' codes, are ignored)."""
    from django.urls import Resolver404, resolve

    channel = Channel.objects.filter(code=code).first()
    if channel is None:
        return None
    item = None
    try:
        match = resolve(path)
    except Resolver404:
        match = None
    if match is not None and match.view_name == "catalog:item":
        item = ContentItem.objects.filter(slug=match.kwargs["slug"]).first()
    return ChannelClick.objects.create(tenant=channel.tenant, channel=channel, item=item, visitor=visitor[:64],
                                       user=user if getattr(user, "is_authenticated", False) else None,
                                       landing_path=path[:300])
