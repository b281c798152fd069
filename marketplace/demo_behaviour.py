"""The demo's behaviour: a few hundred readers browsing, previewing and sharing over the last three months, with
tastes (favourite subjects, a level they start at and grow from), so the nightly fit has something real to learn
and the demo storefront shows real recommendations, "learners also bought" and personas.

Deterministic and idempotent: every event id derives from the storefront, reader and step, so a second run adds
nothing. The readers cannot sign in (no usable password); the named demo learners get some history too.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.utils import timezone

from accounts.models import Membership, Role, User
from catalog.models import LEVEL_ORDER, ContentItem
from recommender.events import events_record
from recommender.models import Event, EventKind, EventSource

READERS = 240
KIND_MIX = [(EventKind.VIEW, 0.7), (EventKind.PREVIEW, 0.2), (EventKind.SHARE, 0.1)]


def _readers(tenant) -> list[User]:
    emails = [f"reader{n:03d}@{tenant.slug}.demo" for n in range(READERS)]
    existing = {u.email: u for u in User.objects.filter(email__in=emails)}
    new = []
    for email in emails:
        if email not in existing:
            user = User(email=email, display_name=email.split("@")[0].title())
            user.set_unusable_password()
            new.append(user)
    User.objects.bulk_create(new, batch_size=500)
    users = list(User.objects.filter(email__in=emails).order_by("email"))
    members = set(Membership.objects.filter(user__in=users).values_list("user_id", flat=True))
    Membership.objects.bulk_create([Membership(tenant=tenant, user=u, role=Role.LEARNER)
                                    for u in users if u.pk not in members])
    return users


def seed_behaviour(*, tenant, people: dict) -> int:
    """Returns how many events the storefront's demo history holds."""
    rng = random.Random(f"behaviour-{tenant.slug}")
    items = list(ContentItem.objects.filter(status=ContentItem.Status.PUBLISHED).prefetch_related("categories")
                 .order_by("id"))
    by_category: dict[int, list[ContentItem]] = {}
    for item in items:
        for category in item.categories.all():
            by_category.setdefault(category.pk, []).append(item)
    categories = sorted(by_category)
    if not categories:
        return 0
    learners = _readers(tenant) + [people[email] for email in sorted(people) if email.startswith("learner")]
    now = timezone.now()
    events = []
    for user in learners:
        favourites = rng.sample(categories, k=min(len(categories), rng.choice([1, 1, 2])))
        level = rng.choice([0, 0, 1, 2])
        steps = rng.randint(6, 28)
        for step in range(steps):
            pool = by_category[rng.choice(favourites)] if rng.random() < 0.85 else items
            # Readers keep to their level, and drift upwards as the weeks go by.
            target = min(2, level + (step * 2) // max(steps, 1))
            near = [i for i in pool if abs(LEVEL_ORDER.get(i.level, 0) - target) <= 1] or pool
            item = rng.choice(near)
            kind = rng.choices([k for k, _w in KIND_MIX], weights=[w for _k, w in KIND_MIX])[0]
            at = now - timedelta(days=90 * (1 - step / steps), hours=rng.random() * 12)
            events.append(Event(
                tenant=tenant, user=user, item=item, kind=kind, source=EventSource.STOREFRONT, occurred_at=at,
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"zhiku:demo:{tenant.slug}:{user.email}:{step}")))
    events_record(events=events)
    return Event.objects.count()
