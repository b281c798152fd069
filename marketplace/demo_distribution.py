"""The demo's distribution: an RSS/Atom feed of everything and a Zhihu column for the articles, their first pushes
made through the real pipeline (the feed's delivered; Zhihu's export packages waiting in the delivery log to be
published by hand and marked done), a fortnight of visits through their tracked links, and today's allocation.
Idempotent: channels are found by name, the backfill adds only what is missing, visits are seeded once."""

from __future__ import annotations

import random
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from catalog.models import ContentItem
from distribution import services
from distribution.allocation import allocation_recompute
from distribution.models import Channel, ChannelClick

CHANNELS = [  # kind, name, content kinds (empty: every kind), visits over the past two weeks
    (Channel.Kind.FEED, "RSS / Atom feed", [], 40),
    (Channel.Kind.ZHIHU, "知乎专栏", [ContentItem.Kind.ARTICLE], 15),
]


def seed_distribution(*, tenant, actor) -> dict:
    rng = random.Random(f"distribution-{tenant.slug}")
    items = list(ContentItem.objects.filter(status=ContentItem.Status.PUBLISHED).values_list("slug", flat=True))
    channels, queued = [], 0
    for kind, name, kinds, visits in CHANNELS:
        channel = Channel.objects.filter(kind=kind, name=name).first()
        if channel is None:
            channel = Channel(tenant=tenant, kind=kind, name=name, content_kinds=kinds)
            channel, _ = services.channel_save(channel=channel, credentials={}, actor=actor)
        queued += services.channel_backfill(channel=channel, actor=actor)  # pushed once this transaction commits
        if items and not ChannelClick.objects.filter(channel=channel).exists():
            for n in range(visits):
                click = services.click_record(code=channel.code, visitor=f"demo-{channel.code}-{n}",
                                              path=reverse("catalog:item", args=[rng.choice(items)]))
                ChannelClick.objects.filter(pk=click.pk).update(
                    created_at=timezone.now() - timedelta(days=rng.randint(0, 13), minutes=rng.randint(0, 1439)))
        channels.append(channel)
    allocation_recompute(tenant=tenant)
    return {"channels": len(channels), "queued": queued, "feeds": [c.code for c in channels if c.kind == "feed"]}
