"""Recording behaviour: the one write path into the event store, used by the storefront (and the partner API)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone

from .models import Event, EventKind, EventSource

# How much each kind of event says about a learner's interest in an item, for the implicit-feedback matrix.
# A purchase or a completion says most; a view least; impressions and clicks measure recommendations only.
EVENT_WEIGHTS: dict[str, float] = {
    EventKind.VIEW: 1.0,
    EventKind.PREVIEW: 2.0,
    EventKind.SHARE: 3.0,
    EventKind.PROGRESS: 3.0,
    EventKind.RATE: 2.0,  # scaled by the stars: see recommender.dataset
    EventKind.PURCHASE: 5.0,
    EventKind.COMPLETE: 6.0,
    EventKind.IMPRESSION: 0.0,
    EventKind.CLICK: 0.0,
}


def event_record(*, user, item, kind: str, source: str = EventSource.STOREFRONT, value: float | None = None,
                 context: dict | None = None, event_id: uuid.UUID | str | None = None,
                 occurred_at: datetime | None = None) -> None:
    """Append one event for a signed-in learner; an event id already stored is ignored (replays are harmless)."""
    if not getattr(user, "is_authenticated", False):
        return
    events_record(events=[Event(
        tenant_id=item.tenant_id, user=user, item=item, kind=kind, source=source, value=value,
        context=context or {}, event_id=event_id or uuid.uuid4(), occurred_at=occurred_at or timezone.now())])


def events_record(*, events: list[Event]) -> None:
    """Append a batch (the partner API's ingestion); duplicates of stored event ids are skipped by the database."""
    Event.objects.bulk_create(events, ignore_conflicts=True, batch_size=1000)


def purchases_record(*, user, items: list, order) -> None:
    """A paid order's items as purchase events; the ids derive from the order, so a replayed payment adds none."""
    events_record(events=[Event(
        tenant_id=order.tenant_id, user=user, item=item, kind=EventKind.PURCHASE, source=EventSource.STOREFRONT,
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"zhiku:order:{order.tenant_id}:{order.number}:{item.pk}"),
        occurred_at=order.paid_at or timezone.now(), context={"order": order.number}) for item in items])
