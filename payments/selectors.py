from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from .models import Entitlement, Order, Posting


def entitlements_active(*, user) -> QuerySet[Entitlement]:
    """The learner's entitlements in force now, in the open tenant scope."""
    now = timezone.now()
    return Entitlement.objects.filter(user=user, revoked_at__isnull=True, starts_at__lte=now).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now))


def entitlement_covers(*, user, item, subscriptions: bool = True) -> bool:
    """Whether one of the learner's entitlements covers ``item``: itself, a bundle holding it, everything, or a
    subscription tier holding one of its categories. ``subscriptions=False`` counts only what was bought or granted
    for good (an archived item stays open to buyers, not to subscribers)."""
    if not getattr(user, "is_authenticated", False):
        return False
    active = entitlements_active(user=user)
    if not subscriptions:
        active = active.exclude(source=Entitlement.Source.SUBSCRIPTION)
    return active.filter(_EVERYTHING | Q(item_id=item.pk) | Q(bundle__items=item.pk)
                         | Q(plan__categories__items=item.pk)).exists()


# An entitlement to everything: the whole catalog, or a tier whose plan the team has since left without categories
# (which the plan's form says is the whole catalog), so its subscribers are not left with nothing.
_EVERYTHING = Q(whole_catalog=True) | Q(plan__isnull=False, plan__categories__isnull=True)


def entitled_item_ids(*, user, item_ids: Iterable[int] | None = None,
                      subscriptions: bool = True) -> set[int] | None:
    """Which of ``item_ids`` (or of every item) the learner's entitlements cover, in one query.

    Returns None when a whole-catalog entitlement (a subscription) covers everything. ``subscriptions=False``
    counts only what was bought or granted for good, as ``entitlement_covers`` does.
    """
    from catalog.models import ContentItem

    if not getattr(user, "is_authenticated", False):
        return set()
    active = entitlements_active(user=user)
    if not subscriptions:
        active = active.exclude(source=Entitlement.Source.SUBSCRIPTION)
    if active.filter(_EVERYTHING).exists():
        return None
    items = ContentItem.objects.filter(Q(entitlements__in=active) | Q(bundles__entitlements__in=active)
                                       | Q(categories__subscription_plans__entitlements__in=active))
    if item_ids is not None:
        items = items.filter(id__in=list(item_ids))
    return set(items.values_list("id", flat=True).distinct())


@dataclass
class BundleOwnedPart:
    """What a learner already owns of a bundle they could still buy, and what the rest costs item by item."""

    items: list
    missing_total: int


def bundle_owned_part(*, user, items: list) -> BundleOwnedPart | None:
    """The bundle's ``items`` the learner owns for good already, when some (not all) are theirs: the bundle still
    costs its price, which the learner is told before paying, with what the items they lack would cost instead."""
    owned_ids = entitled_item_ids(user=user, item_ids=[item.pk for item in items], subscriptions=False)
    if not owned_ids:  # none owned (or, None, everything: then checkout refuses the bundle anyway)
        return None
    return BundleOwnedPart(items=[item for item in items if item.pk in owned_ids],
                           missing_total=sum(item.price for item in items if item.pk not in owned_ids))


def promoter_sales(*, promoter, limit: int = 50) -> list[tuple[Order, int]]:
    """The newest sales the promoter earned on (those they brought, and, a level up, those their recruits brought),
    each with what it earns them now: its commission less what refunds took back."""
    earned = {row["entry__order"]: row["total"] for row in (
        Posting.objects.filter(account__promoter=promoter, entry__order__isnull=False)
        .values("entry__order").annotate(total=Sum("amount")))}
    orders = (Order.objects.filter(pk__in=earned).select_related("promoter").prefetch_related("lines")
              .order_by("-paid_at", "-pk")[:limit])
    return [(order, -earned[order.pk]) for order in orders]


def paid_orders_by_channel(*, since) -> dict[int, int]:
    """Paid (and not fully refunded) orders per distribution channel since ``since``: the channels' conversions."""
    return dict(Order.objects.filter(channel__isnull=False, paid_at__gte=since,
                                     status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED])
                .values("channel_id").annotate(n=Count("id")).values_list("channel_id", "n"))


def learner_links(*, user, tenant) -> dict[str, bool]:
    """Which of the learner's own pages the storefront's account menu links to: their subscription while one is
    not ended, and the promoter programme while it is open or they are a promoter (whose earnings stay in view)."""
    from .models import Promoter, Subscription
    from .services import payment_settings

    return {
        "subscription": Subscription.objects.filter(user=user).exclude(status=Subscription.Status.ENDED).exists(),
        "promote": payment_settings(tenant=tenant).promoters_enabled or Promoter.objects.filter(user=user).exists(),
    }
