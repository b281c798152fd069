"""Traffic allocation between a storefront's channels, after the seed papers' model:

    share_p = interest_p * exposure_p / sum_j(interest_j * exposure_j)

* ``exposure_p``: how much audience the channel reaches: the impressions its platform reports (WeChat's reads)
  where it reports any, otherwise its tracked-link clicks converted to impressions at the click-through rate
  measured on the channels that report both, so that the two kinds of channel are compared in one unit.
* ``interest_p``: how engaged that audience is: orders per tracked visit, smoothed towards the storefront's overall
  rate (a channel with 3 visits and 1 order is not credited with 33 %).

Both are measured over the storefront's window (28 days by default). A channel with no measurement yet gets the
exploration floor, so that it is pushed to and can be measured; the others share the rest by the formula. The
shares set each channel's daily push budget (the storefront's daily budget split with the largest-remainder rule)
and the order in which due pushes are sent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from marketplace.money import split_largest_remainder
from marketplace.tenancy import tenant_phase

from .connectors import connector_for
from .connectors.base import PublicationState, PushError
from .models import Allocation, Channel, ChannelClick, ChannelStat, DistributionSettings, Publication

DEFAULT_CTR = 0.02  # clicks per impression when no channel reports impressions and clicks
PRIOR_VISITS = 20  # how many visits the smoothing prior is worth
SCALE = 1_000_000


def shares(interest: list[float], exposure: list[float], *, measured: list[bool] | None = None,
           floor: float = 0.0) -> list[float]:
    """The formula, with the exploration floor for unmeasured channels. Pure, so the worked example is a test."""
    n = len(interest)
    measured = measured if measured is not None else [True] * n
    unmeasured = n - sum(measured)
    weights = [i * e if m else 0.0 for i, e, m in zip(interest, exposure, measured, strict=True)]
    total = sum(weights)
    if total <= 0:  # nothing measured anywhere yet: explore evenly
        return [1.0 / n] * n if n else []
    floor = min(floor, 1.0 / n) if unmeasured else 0.0
    rest = 1.0 - floor * unmeasured
    return [rest * w / total if m else floor for w, m in zip(weights, measured, strict=True)]


def budgets(total: int | None, parts: list[float]) -> list[int | None]:
    if total is None:
        return [None] * len(parts)
    return split_largest_remainder(total, [round(p * SCALE) for p in parts]) if parts else []


def channel_stats_fetch(*, tenant, day: date | None = None) -> int:
    """Ask each channel whose platform reports numbers for ``day`` (yesterday by default); returns rows written.

    The platforms are asked outside any transaction: what each channel shows is read in one short step, and their
    numbers are written in another."""
    day = day or timezone.localdate() - timedelta(days=1)
    # The storefront is named in every query here, not left to the scope: the operator's admin (the platform scope)
    # recomputes too, and there every storefront's rows are visible.
    with tenant_phase(tenant):
        shown = {}
        for channel in Channel.objects.filter(tenant=tenant, is_enabled=True):
            shown[channel] = [PublicationState(item_id=p.item_id, external_id=p.external_id,
                                               external_url=p.external_url, version=p.version, data=p.data)
                              for p in Publication.objects.filter(channel=channel, status=Publication.Status.LIVE)]
    reported = {}
    for channel, live in shown.items():
        if not live:
            continue
        try:
            reported[channel] = connector_for(channel).stats(live, day=day) or ()
        except PushError:
            continue  # numbers are a nicety: a platform hiccup must not stop the allocation
    written = 0
    with tenant_phase(tenant):
        for channel, rows in reported.items():
            for row in rows:
                ChannelStat.objects.update_or_create(tenant=tenant, channel=channel, day=row.day, defaults={
                    "impressions": row.impressions, "engagements": row.engagements})
                written += 1
    return written


def allocation_recompute(*, tenant, day: date | None = None) -> list[Allocation]:
    """Measure every enabled channel over the window, allocate, and store the day's rows (replacing that day's).

    Two recomputes of one storefront at once (two beats, or beat and the admin's action) take turns over the
    storefront's settings row: each replaces the day's rows whole, where both inserting at once would break the one
    allocation per channel and day."""
    from payments.selectors import paid_orders_by_channel

    from .services import distribution_settings

    conf = distribution_settings(tenant=tenant)
    day = day or timezone.localdate()
    since = day - timedelta(days=conf.window_days)
    channels = list(Channel.objects.filter(tenant=tenant, is_enabled=True).order_by("pk"))
    if not channels:
        return []
    start = timezone.make_aware(datetime.combine(since, time.min))
    clicks = dict(ChannelClick.objects.filter(tenant=tenant, created_at__gte=start).values("channel_id")
                  .annotate(n=Count("id")).values_list("channel_id", "n"))
    reported = {row["channel_id"]: row for row in ChannelStat.objects.filter(tenant=tenant, day__gte=since,
                                                                             day__lt=day)
                .values("channel_id").annotate(impressions=Sum("impressions"), engagements=Sum("engagements"))}
    conversions = paid_orders_by_channel(since=start)
    both = [c.pk for c in channels if c.pk in reported and reported[c.pk]["impressions"]]
    shown = sum(reported[pk]["impressions"] for pk in both)
    ctr = (sum(clicks.get(pk, 0) for pk in both) / shown) if shown else 0.0
    ctr = ctr or DEFAULT_CTR
    total_clicks, total_orders = sum(clicks.values()), sum(conversions.get(c.pk, 0) for c in channels)
    base_rate = (total_orders + 1) / (total_clicks + PRIOR_VISITS)
    interest, exposure, measured, sources = [], [], [], []
    for channel in channels:
        n_clicks, n_orders = clicks.get(channel.pk, 0), conversions.get(channel.pk, 0)
        impressions = reported.get(channel.pk, {}).get("impressions") or 0
        if impressions:
            exposure.append(float(impressions))
            sources.append("impressions")
        else:
            exposure.append(n_clicks / ctr)
            sources.append("clicks")
        interest.append((n_orders + PRIOR_VISITS * base_rate) / (n_clicks + PRIOR_VISITS))
        measured.append(bool(impressions or n_clicks))
    # A share saved before the field refused negative ones counts as none (a negative weight cannot be split).
    parts = shares(interest, exposure, measured=measured, floor=max(0.0, conf.exploration_floor))
    limits = budgets(conf.daily_push_budget, parts)
    rows = [Allocation(tenant=tenant, channel=channel, day=day, impressions=reported.get(channel.pk, {}).get(
                "impressions") or 0, clicks=clicks.get(channel.pk, 0), conversions=conversions.get(channel.pk, 0),
                exposure_source=source, interest=i, exposure=e, share=s, budget=b, explored=not m)
            for channel, i, e, s, b, m, source in zip(channels, interest, exposure, parts, limits, measured, sources,
                                                      strict=True)]
    with transaction.atomic():
        list(DistributionSettings.objects.select_for_update().filter(pk=conf.pk).values_list("pk", flat=True))
        Allocation.objects.filter(tenant=tenant, day=day).delete()
        return Allocation.objects.bulk_create(rows)
