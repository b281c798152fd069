"""Reads on distribution: which channel an order is attributed to, and what the admin's overview shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from .models import Allocation, Channel, ChannelClick


@dataclass
class ChannelAttribution:
    channel: Channel
    evidence: dict
    at: datetime  # when the learner came through the channel's link


def channel_attribution(*, tenant, user, visitor: str = "", now=None, window_days: int | None = None,
                        partners_only: bool = False) -> ChannelAttribution | None:
    """Last touch: the newest tracked-link visit by this learner (by account, or by the browser they used before
    signing up) inside the storefront's attribution window (``window_days``, read from the storefront's payment
    settings when not given), from a channel that still exists; with ``partners_only``, the newest through a partner
    platform that is switched on (the one that would earn a commission)."""
    from payments.services import payment_settings

    now = now or timezone.now()
    window = window_days if window_days is not None else payment_settings(tenant=tenant).attribution_window_days
    who = Q(user=user) | (Q(visitor=visitor) if visitor else Q(pk__in=[]))
    clicks = ChannelClick.objects.filter(who, tenant=tenant, created_at__gte=now - timedelta(days=window))
    if partners_only:
        clicks = clicks.filter(channel__kind=Channel.Kind.PARTNER, channel__is_enabled=True)
    click = clicks.select_related("channel").order_by("-created_at", "-id").first()
    if click is None:
        return None
    return ChannelAttribution(channel=click.channel, evidence={
        "click": click.pk, "channel": click.channel.code, "kind": click.channel.kind,
        "at": click.created_at.isoformat(), "landing": click.landing_path}, at=click.created_at)


def allocation_history(*, channel: Channel, days: int = 30) -> list[Allocation]:
    return list(Allocation.objects.filter(channel=channel).order_by("-day")[:days])[::-1]
