"""What the storefront (and the partner API) shows: read from the serving run's precomputed rows, never a model.

A learner's picks are one indexed read of their ``Recommendation`` row, then the cards of those items; what they
bought or finished since the run, and what is no longer on sale, is dropped on the way out. Before the first run,
for a learner the run did not see, and for anyone who turned personalisation off, the picks are popular and
editorial ones, shaped by the categories and language the learner browses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Count
from django.utils.translation import gettext as _

from catalog.models import Category, ContentItem, ItemProgress
from catalog.selectors import items_on_sale, with_card_data
from marketplace.tenancy import current_tenant
from payments.models import Entitlement

from .experiments import arm_for, experiment_active
from .models import Event, EventKind, FitRun, LearnerPreference, Recommendation, SimilarItems

POPULAR_TTL = 600


def serving_cache_key(tenant_id: int) -> str:
    return f"recommender:serving:{tenant_id}"


@dataclass
class Picks:
    items: list[ContentItem]
    reasons: dict[int, str] = field(default_factory=dict)
    personalised: bool = False
    experiment: int | None = None
    arm: str = ""
    ref: str = ""  # what links to the picks carry as ?rec=, so a click is counted (see storefront.picks_shown)


def serving_runs() -> tuple[FitRun | None, FitRun | None]:
    """(the run whose personal rows serve, the latest successful run) for the open storefront, cached briefly."""
    tenant = current_tenant()
    key = serving_cache_key(tenant.pk)
    cached = cache.get(key)
    if cached is None:
        done = FitRun.objects.filter(status=FitRun.Status.SUCCEEDED).defer("results", "stages")
        cached = (done.filter(served=True).order_by("-run_date").first(), done.order_by("-run_date").first())
        cache.set(key, cached, POPULAR_TTL)
    return cached


def preference_for(user) -> LearnerPreference | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return LearnerPreference.objects.filter(user=user).first()


def personalised(user) -> bool:
    preference = preference_for(user)
    return getattr(user, "is_authenticated", False) and (preference is None or preference.personalised)


def owned_item_ids(user) -> set[int]:
    """Bought (alone or in a bundle) or finished: not worth recommending again. Subscription access does not count."""
    if not getattr(user, "is_authenticated", False):
        return set()
    bought = Entitlement.objects.filter(user=user, revoked_at__isnull=True).exclude(
        source=Entitlement.Source.SUBSCRIPTION)
    ids = set(bought.filter(item__isnull=False).values_list("item_id", flat=True))
    ids |= set(bought.filter(bundle__isnull=False).values_list("bundle__items", flat=True))
    ids |= set(ItemProgress.objects.filter(user=user, completed_at__isnull=False).values_list("item_id", flat=True))
    return ids


def _cards(ids: list[int], *, exclude: set[int] = frozenset(), n: int) -> list[ContentItem]:
    """The first ``n`` of ``ids`` that are on sale and not excluded, as cards, in order.

    Every id is read (a run's list is a few dozen at most), so items gone off sale at the head of the list do not
    hide the ones after them.
    """
    wanted = [pk for pk in dict.fromkeys(ids) if pk not in exclude]
    rows = {item.pk: item for item in with_card_data(items_on_sale().filter(pk__in=wanted))}
    return [rows[pk] for pk in wanted if pk in rows][:n]


def popular_ids(*, categories: list[int] | None = None, n: int = 24) -> list[int]:
    """Popular first (the latest run's decayed popularity, or learners and recency before any run), editorial picks
    (featured items) mixed in; with ``categories``, those categories' popular items lead."""
    _serving, latest = serving_runs()
    ids: list[int] = []
    if latest is not None:
        for cat in categories or []:
            ids += latest.popular_by_category.get(str(cat), [])[:6]
        ids += latest.popular
    else:
        key = f"recommender:popular:{current_tenant().pk}:{','.join(map(str, categories or []))}"
        fallback = cache.get(key)
        if fallback is None:
            on_sale = items_on_sale()
            fallback = []
            for cat in categories or []:
                fallback += list(on_sale.filter(categories=cat).order_by("-learner_count", "-published_at")
                                 .values_list("pk", flat=True)[:6])
            fallback += list(on_sale.order_by("-learner_count", "-published_at").values_list("pk", flat=True)[:n])
            cache.set(key, fallback, POPULAR_TTL)
        ids += fallback
    featured = list(items_on_sale().filter(is_featured=True).values_list("pk", flat=True)[:4])
    # Every third slot (3, 6, 9...) is an editorial pick, so a new storefront's own choices are seen beside the
    # popular ones. Slots are counted in the output; an item already placed (a popular editorial pick) takes none.
    popular = list(dict.fromkeys(ids))
    mixed: list[int] = []
    placed: set[int] = set()
    while popular or featured:
        source = featured if featured and (len(mixed) % 3 == 2 or not popular) else popular
        pk = source.pop(0)
        if pk not in placed:
            placed.add(pk)
            mixed.append(pk)
    return mixed


def browsing_interest(user, *, events: int = 50) -> tuple[list[int], str | None]:
    """The categories (most used first) and the language of what the learner looked at lately: cold start's shape."""
    if not getattr(user, "is_authenticated", False):
        return [], None
    recent = list(Event.objects.filter(user=user).exclude(kind=EventKind.IMPRESSION)
                  .order_by("-occurred_at").values_list("item_id", flat=True)[:events])
    if not recent:
        return [], None
    categories = Counter(ContentItem.categories.through.objects.filter(contentitem__in=recent)
                         .values_list("category_id", flat=True))
    languages = Counter(ContentItem.objects.filter(pk__in=recent).values_list("language", flat=True))
    return [cat for cat, _n in categories.most_common(3)], languages.most_common(1)[0][0]


def recommended_for(*, user, n: int = 8) -> Picks:
    """"Recommended for you": the learner's precomputed picks (or their experiment arm's), else popular ones."""
    owned = owned_item_ids(user)
    personal = personalised(user)
    # A learner who turned personal picks off gets popular ones whatever their arm, so they take part in no test.
    experiment = experiment_active() if personal else None
    arm = arm_for(experiment, user) if experiment is not None else None
    strategy = arm["strategy"] if arm else "model"
    picks = Picks(items=[], experiment=experiment.pk if experiment else None, arm=arm["name"] if arm else "")
    if personal and strategy != "popularity":
        serving, _latest = serving_runs()
        row = None
        if serving is not None:
            # The run's winner is stored once, as "" (the fit does not repeat it under its own name).
            own = "" if strategy in ("model", serving.winner) else strategy
            row = Recommendation.objects.filter(run=serving, user=user, strategy=own).first()
        if row is not None:
            picks.items = _cards(row.item_ids, exclude=owned, n=n)
            picks.reasons = reasons_text(row.reasons())
            # Picks all bought or gone off sale since the run leave popular ones, which are not personal.
            picks.personalised = bool(picks.items)
    if len(picks.items) < n:
        categories, language = browsing_interest(user) if personal else ([], None)
        ids = popular_ids(categories=categories)
        if language:
            same = set(ContentItem.objects.filter(pk__in=ids, language=language).values_list("pk", flat=True))
            ids = [pk for pk in ids if pk in same] + [pk for pk in ids if pk not in same]
        have = {item.pk for item in picks.items}
        picks.items += _cards(ids, exclude=owned | have, n=n - len(picks.items))
    return picks


def reasons_text(reasons: dict[int, tuple[str, int]]) -> dict[int, str]:
    """Reason codes from the run, as sentences: "Because you finished X", "Popular in Data Science"."""
    item_refs = {ref for code, ref in reasons.values() if code != "c"}
    category_refs = {ref for code, ref in reasons.values() if code == "c"}
    titles = dict(ContentItem.objects.filter(pk__in=item_refs).values_list("pk", "title"))
    names = dict(Category.objects.filter(pk__in=category_refs).values_list("pk", "name"))
    out = {}
    for pk, (code, ref) in reasons.items():
        if code == "c" and ref in names:
            out[pk] = _("Popular in %(category)s") % {"category": names[ref]}
        elif ref in titles:
            template = {"f": _("Because you finished “%(title)s”"), "b": _("Because you bought “%(title)s”")}.get(
                code, _("Because you looked at “%(title)s”"))
            out[pk] = template % {"title": titles[ref]}
    return out


@dataclass
class Neighbours:
    also_bought: list[ContentItem]
    similar: list[ContentItem]


def item_neighbours(*, item: ContentItem, user=None, n: int = 6) -> Neighbours:
    """"Learners also bought" (behaviour, from the serving run: a run that did not beat popularity changes no
    behavioural pick) and "Similar" (content, from the latest run); before any run, items sharing a category stand
    in for "Similar"."""
    exclude = {item.pk} | owned_item_ids(user)
    serving, latest = serving_runs()
    runs = {run.pk for run in (serving, latest) if run is not None}
    rows = {row.run_id: row for row in SimilarItems.objects.filter(run__in=runs, item=item)} if runs else {}
    behaviour = rows.get(serving.pk) if serving is not None else None
    content = rows.get(latest.pk) if latest is not None else None
    if behaviour is not None or content is not None:
        also = _cards([pk for pk, _s in behaviour.also_bought], exclude=exclude, n=n) if behaviour else []
        similar = _cards([pk for pk, _s in content.similar] if content else [],
                         exclude=exclude | {i.pk for i in also}, n=n)
        return Neighbours(also, similar)
    same = (items_on_sale().filter(categories__in=item.categories.all()).exclude(pk=item.pk)
            .annotate(shared=Count("categories")).order_by("-shared", "-learner_count")
            .values_list("pk", flat=True)[: n * 2])
    return Neighbours([], _cards(list(same), exclude=exclude, n=n))


def runs_history(*, limit: int = 60) -> list[FitRun]:
    return list(FitRun.objects.filter(status=FitRun.Status.SUCCEEDED).order_by("-run_date")[:limit])[::-1]
