"""Reads for the storefront. Every listing costs the same number of queries however many items it shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Length, NullIf, Replace
from django.http import Http404

from .access import can_access, is_team
from .models import (
    Bundle,
    Category,
    ContentItem,
    Creator,
    FileDigest,
    ItemCreator,
    ItemProgress,
    LearningPath,
    Lesson,
    LessonProgress,
    PathStep,
    Review,
    Section,
)
from .storage import private_file_sha256
from .text import search_tokens

Status = ContentItem.Status

SORTS = {
    "newest": ["-published_at", "-id"],
    "popular": ["-learner_count", "-published_at", "-id"],
    "rating": [F("rating_avg").desc(nulls_last=True), "-rating_count", "-id"],
    "price_low": ["price", "-id"],
    "price_high": ["-price", "-id"],
    "title": ["title", "id"],
}


def with_card_data(items: QuerySet[ContentItem]) -> QuerySet[ContentItem]:
    """What an item card shows, fetched with one extra query for the whole page."""
    credits = ItemCreator.objects.select_related("creator").order_by("position", "id")
    return items.prefetch_related(Prefetch("item_creators", queryset=credits))


def items_on_sale() -> QuerySet[ContentItem]:
    return ContentItem.objects.filter(status=Status.PUBLISHED)


def items_search(items: QuerySet[ContentItem], q: str) -> QuerySet[ContentItem]:
    """Items matching every word of ``q``, annotated with a ``rank`` (best first).

    Words are split as in ``catalog.text``: Chinese is matched by character pairs, other words by prefix. A lone CJK
    character, which has no pair, is matched as a substring. PostgreSQL ranks with ``ts_rank``; elsewhere the rank
    counts the words' occurrences in the search text, which is close to it: both weigh an item by how often the
    words appear, so the title, written twice into the search text, outweighs a passing mention. A query with no
    words at all (only punctuation) matches nothing.
    """
    tokens = search_tokens(q)
    if not tokens:  # only punctuation ("%", "!!"): no word to match, so nothing matches
        return items.none() if q.strip() else items
    words = [t for t in tokens if len(t) > 1 or t.isascii()]
    singles = [t for t in tokens if t not in words]
    for single in singles:
        items = items.filter(search_text__contains=single)
    if not words:
        return items
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("search_text", config="simple")
        query = SearchQuery(" & ".join(f"'{w}':*" for w in words), search_type="raw", config="simple")
        return items.annotate(search=vector, rank=SearchRank(vector, query)).filter(search=query)
    for word in words:
        items = items.filter(search_text__contains=word)
    text = Length("search_text")
    occurrences = [(text - Length(Replace("search_text", Value(word), Value("")))) / len(word) for word in words]
    return items.annotate(rank=sum(occurrences[1:], occurrences[0]))


@dataclass
class BrowseResult:
    items: QuerySet[ContentItem]
    sort: str


def items_browse(*, filters: dict) -> BrowseResult:
    """The browse page's items: ``filters`` is a validated ``ItemFilterForm``'s cleaned data."""
    items = items_on_sale()
    if filters.get("category"):
        items = items.filter(categories=filters["category"])
    for name in ("kind", "level", "language"):
        if filters.get(name):
            items = items.filter(**{name: filters[name]})
    if filters.get("free"):
        items = items.filter(price=0)
    if filters.get("price_min") is not None:
        items = items.filter(price__gte=filters["price_min"])
    if filters.get("price_max") is not None:
        items = items.filter(price__lte=filters["price_max"])
    sort = filters.get("sort") or ""
    q = (filters.get("q") or "").strip()
    if q:
        items = items_search(items, q)
    if sort == "relevance" or (not sort and q):
        sort = "relevance"
        ranked = "rank" in items.query.annotations  # not for a lone Chinese character
        ordering = ["-rank", "-learner_count", "-id"] if ranked else SORTS["popular"]
    else:
        sort = sort if sort in SORTS else "newest"
        ordering = SORTS[sort]
    if sort == "rating":
        # An unrated item has no average (NULL, sorted last): PostgreSQL refuses to divide by zero.
        items = items.alias(rating_avg=F("rating_sum") * 1.0 / NullIf(F("rating_count"), 0))
    return BrowseResult(items=with_card_data(items.order_by(*ordering)), sort=sort)


@dataclass
class HomePage:
    featured: list[ContentItem]
    newest: list[ContentItem]
    popular: list[ContentItem]
    categories: list[Category]
    bundles: list[Bundle]
    paths: list[LearningPath]


def home_page(*, per_row: int = 8) -> HomePage:
    on_sale = with_card_data(items_on_sale())
    return HomePage(
        featured=list(on_sale.filter(is_featured=True).order_by("-published_at", "-id")[:per_row]),
        newest=list(on_sale.order_by("-published_at", "-id")[:per_row]),
        popular=list(on_sale.order_by("-learner_count", "-id")[:per_row]),
        categories=categories_with_counts(),
        bundles=list(Bundle.objects.filter(is_published=True).annotate(n=Count("items"))[:4]),
        paths=list(LearningPath.objects.filter(is_published=True).annotate(n=Count("steps"))[:4]),
    )


def categories_with_counts() -> list[Category]:
    published = Q(items__status=Status.PUBLISHED)
    return list(Category.objects.annotate(n=Count("items", filter=published)).filter(n__gt=0))


@dataclass
class ItemPublic:
    """What every visitor of an item page sees."""

    sections: list[Section]
    credits: list[ItemCreator]
    reviews: list[Review]
    related: list[ContentItem]
    bundles: list[Bundle]
    paths: list[LearningPath]


@dataclass
class ItemPersonal:
    """What depends on who is looking."""

    has_access: bool
    progress: ItemProgress | None
    own_review: Review | None
    completed_lessons: set[int] = field(default_factory=set)


def item_by_slug(*, slug: str) -> ContentItem | None:
    """The item page's row, which the page cache keeps: without the transcript, which only the player shows."""
    return ContentItem.objects.filter(slug=slug).defer("transcript").first()


def item_for_storefront(*, slug: str, user, item: ContentItem | None = None) -> ContentItem:
    """The item at ``slug`` if this person may see its page: published ones for everyone, the rest for the team and
    (archived ones) for learners who have access. Anything else is a 404, as is another storefront's item.

    ``item`` is the row already looked up (the item page keeps it in the page cache); the rule is the same."""
    item = item or item_by_slug(slug=slug)
    if item is None:
        raise Http404("No such item.")
    if item.status == Status.PUBLISHED:
        return item
    if item.status == Status.ARCHIVED and can_access(user, item):
        return item
    if is_team(user) or (item.status != Status.ARCHIVED and can_access(user, item)):
        return item
    raise Http404("No such item.")


def item_syllabus(*, item: ContentItem) -> list[Section]:
    lessons = Lesson.objects.order_by("position", "id").defer("body", "body_html")
    return list(item.sections.prefetch_related(Prefetch("lessons", queryset=lessons)))


def item_public(*, item: ContentItem) -> ItemPublic:
    # A semi-join rather than DISTINCT over whole rows: the planner then reads only the few linked items.
    linked = ContentItem.categories.through.objects.filter(
        category_id__in=item.categories.values("id")).values("contentitem_id")
    related = with_card_data(items_on_sale().filter(id__in=Subquery(linked)).exclude(pk=item.pk)
                              .order_by("-learner_count", "-id")[:4])
    return ItemPublic(
        sections=item_syllabus(item=item),
        credits=list(item.item_creators.select_related("creator")),
        reviews=list(item.reviews.select_related("user").order_by("-updated_at")[:10]),
        related=list(related),
        bundles=list(item.bundles.filter(is_published=True)),
        paths=list(LearningPath.objects.filter(is_published=True, steps__item=item).distinct()),
    )


def item_personal(*, item: ContentItem, user, with_lessons: bool = False) -> ItemPersonal:
    """``with_lessons`` adds which lessons the learner completed (the player's syllabus shows them)."""
    if not getattr(user, "is_authenticated", False):
        return ItemPersonal(has_access=can_access(user, item), progress=None, own_review=None)
    completed = set()
    if with_lessons:
        completed = set(LessonProgress.objects.filter(user=user, lesson__item=item, completed_at__isnull=False)
                        .values_list("lesson_id", flat=True))
    return ItemPersonal(
        has_access=can_access(user, item),
        progress=ItemProgress.objects.filter(user=user, item=item).first(),
        own_review=item.reviews.filter(user=user).first(),
        completed_lessons=completed,
    )


def lesson_resume_target(*, item: ContentItem, user) -> Lesson | None:
    """Where "continue" takes the learner: the lesson they were on, or the next one they have not completed when they
    finished it; the first lesson for a newcomer."""
    lessons = list(item.lessons.order_by("section__position", "section_id", "position", "id").only("id", "item_id"))
    if not lessons:
        return None
    if getattr(user, "is_authenticated", False):
        progress = ItemProgress.objects.filter(user=user, item=item).first()
        if progress and progress.last_lesson_id:
            done = set(LessonProgress.objects.filter(user=user, lesson__item=item, completed_at__isnull=False)
                       .values_list("lesson_id", flat=True))
            ids = [lesson.id for lesson in lessons]
            start = ids.index(progress.last_lesson_id) if progress.last_lesson_id in ids else 0
            if progress.last_lesson_id not in done:
                return lessons[start]
            later = [lesson for lesson in lessons[start + 1:] + lessons[:start] if lesson.id not in done]
            return later[0] if later else lessons[start]
    return lessons[0]


def resume_position(*, user, item: ContentItem, lesson: Lesson | None) -> int:
    """Seconds into the audio or video where the learner stopped last time."""
    if lesson is not None:
        row = LessonProgress.objects.filter(user=user, lesson=lesson).values_list("position_seconds", flat=True)
    else:
        row = ItemProgress.objects.filter(user=user, item=item).values_list("position_seconds", flat=True)
    return row.first() or 0


@dataclass
class LearningEntry:
    item: ContentItem
    progress: ItemProgress | None


def my_learning(*, user) -> list[LearningEntry]:
    """Items the learner has started or owns, and can open as a whole, most recently touched first.

    A bundle or a subscription tier can name an item still in review (not public yet), and an archived item stays
    open to its buyers but not to subscribers: such items are left out rather than listed with a "Start" that 404s.
    A subscription to the whole catalog does not list the whole catalog: what the learner bought or was given, item
    by item or in a bundle, stays listed, with what they started.
    """
    from payments.selectors import entitled_item_ids, entitlements_active

    progress = {p.item_id: p for p in ItemProgress.objects.filter(user=user)}
    covered = owned = entitled_item_ids(user=user)  # None: a whole-catalog entitlement covers all that is on sale
    if owned is None:
        active = entitlements_active(user=user)
        owned = set(ContentItem.objects.filter(Q(entitlements__in=active) | Q(bundles__entitlements__in=active))
                    .values_list("id", flat=True).distinct())
    ids = set(progress) | owned
    items = with_card_data(ContentItem.objects.filter(id__in=ids, status__in=[Status.PUBLISHED, Status.ARCHIVED]))

    def opens(item: ContentItem) -> bool:
        if item.status == Status.PUBLISHED and (item.is_free or covered is None or item.id in covered):
            return True
        # The access check (a few queries) runs only for archived items and for paid items the learner started
        # through a free preview lesson, which are few; such a preview alone does not put an item here.
        return can_access(user, item)

    entries = [LearningEntry(item=item, progress=progress.get(item.id)) for item in items if opens(item)]
    entries.sort(key=lambda e: (e.progress is None, -(e.progress.updated_at.timestamp() if e.progress else 0)))
    return entries


def creator_for_storefront(*, slug: str) -> Creator:
    creator = Creator.objects.filter(slug=slug).first()
    if creator is None:
        raise Http404("No such creator.")
    return creator


def creator_items(*, creator: Creator) -> QuerySet[ContentItem]:
    return with_card_data(items_on_sale().filter(item_creators__creator=creator).order_by("-published_at"))


def bundle_for_storefront(*, slug: str) -> tuple[Bundle, list[ContentItem]]:
    bundle = Bundle.objects.filter(slug=slug, is_published=True).first()
    if bundle is None:
        raise Http404("No such bundle.")
    return bundle, list(with_card_data(bundle.items.filter(status=Status.PUBLISHED)))


@dataclass
class PathPage:
    path: LearningPath
    steps: list[PathStep]
    completed_item_ids: set[int]
    prerequisites: dict[int, list[ContentItem]]


def path_for_storefront(*, slug: str, user) -> PathPage:
    path = LearningPath.objects.filter(slug=slug, is_published=True).first()
    if path is None:
        raise Http404("No such learning path.")
    # Prerequisites on sale only: a draft's title is not public, and an archived item is no step to take.
    on_sale = Prefetch("item__prerequisites", queryset=ContentItem.objects.filter(status=Status.PUBLISHED))
    steps = list(path.steps.filter(item__status=Status.PUBLISHED).select_related("item").prefetch_related(on_sale))
    completed: set[int] = set()
    if getattr(user, "is_authenticated", False):
        completed = set(ItemProgress.objects.filter(user=user, completed_at__isnull=False,
                                                    item__in=[s.item_id for s in steps])
                        .values_list("item_id", flat=True))
    prerequisites = {s.item_id: list(s.item.prerequisites.all()) for s in steps}
    return PathPage(path=path, steps=steps, completed_item_ids=completed, prerequisites=prerequisites)


def published_files_check() -> list[tuple[str, str]]:
    """Each private file a published version records a digest of (``FileDigest``) that storage no longer holds as
    published: ``(name, "missing" | "changed")``. Reads every such file."""
    problems = []
    for name, sha256 in FileDigest.objects.order_by("name").values_list("name", "sha256").iterator():
        read = private_file_sha256(name)
        if read is None or read[0] != sha256:
            problems.append((name, "missing" if read is None else "changed"))
    return problems
