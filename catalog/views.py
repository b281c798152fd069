"""The learner's storefront: home, browse and search, item, creator, bundle and path pages, My learning, the lesson
player, progress, reviews and the checked media and captions views.

Listing pages render their public part once per catalog generation (see ``services.catalog_generation``) and keep
it in the cache; what depends on the person (access, progress, their review) is added around it on every request.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from marketplace.errors import ApplicationError
from marketplace.views import storefront_only
from recommender import storefront as recommendations

from . import selectors, services
from .access import can_access
from .forms import BrowseForm, ProgressForm, ReviewForm
from .media import captions_response, media_response
from .models import ContentItem, Lesson

PAGE_SIZE = 24
FRAGMENT_TTL = 600


def _cache_key(request, name: str, parts: tuple) -> str:
    """A page-cache key that changes with the tenant's catalog generation (read once per request) and language."""
    if not hasattr(request, "_catalog_generation"):
        request._catalog_generation = services.catalog_generation(request.tenant.pk)
    raw = "|".join(str(p) for p in (name, request.tenant.pk, request._catalog_generation,
                                      translation.get_language(), *parts))
    return "catalog:page:" + hashlib.sha256(raw.encode()).hexdigest()


def _cached(request, name: str, parts: tuple, build):
    """The cached value of ``build()``: the HTML of a page's public part, or a row pages read often."""
    key = _cache_key(request, name, parts)
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, FRAGMENT_TTL)
    return value


def anonymous_page_cache(view):
    """Serve whole pages from the cache to visitors who are not signed in.

    Such a visitor has no session and no pending message, so the page is the same for all of them (per host,
    language, address and catalog generation). Pages that used a CSRF token are never stored: the token belongs to
    one browser.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if (request.method != "GET" or request.tenant is None or settings.SESSION_COOKIE_NAME in request.COOKIES
                or "messages" in request.COOKIES):
            return view(request, *args, **kwargs)
        key = _cache_key(request, "anonymous-page", (request.get_full_path(),))
        hit = cache.get(key)
        if hit is not None:
            content, content_type = hit
            return HttpResponse(content, content_type=content_type)
        response = view(request, *args, **kwargs)
        if (response.status_code == 200 and not response.streaming and not response.cookies
                and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")):
            cache.set(key, (response.content, response["Content-Type"]), FRAGMENT_TTL)
        return response

    return wrapper


@storefront_only
@anonymous_page_cache
def home(request):
    def build() -> str:
        page = selectors.home_page()
        return render_to_string("catalog/_home_sections.html", {"page": page, "tenant": request.tenant}, request)

    context = {"sections_html": _cached(request, "home", (), build)}
    if request.user.is_authenticated:
        picks = recommendations.recommended_for(user=request.user)
        recommendations.picks_shown(user=request.user, picks=picks, placement="home")
        context.update(recommendations=picks.items, recommendation_reasons=picks.reasons,
                       recommendation_ref=picks.ref,
                       recommendations_personal=recommendations.personalised(request.user))
    return render(request, "storefront/home.html", context)


@storefront_only
@anonymous_page_cache
def browse(request):
    """Filters and results are the same for everyone who asks the same question, so both come from the cache."""

    def build() -> str:
        form = BrowseForm(request.GET or None, currency=request.tenant.currency)
        context = {"form": form, "tenant": request.tenant, "page": None}
        if not request.GET or form.is_valid():
            filters = form.cleaned_data if request.GET else {}
            result = selectors.items_browse(filters=filters)
            query = request.GET.copy()
            query.pop("page", None)
            context.update(page=Paginator(result.items, PAGE_SIZE).get_page(request.GET.get("page", "1")),
                           query=query.urlencode(), sort=result.sort, q=filters.get("q", ""))
        return render_to_string("catalog/_browse.html", context, request)

    return render(request, "catalog/browse.html", {"browse_html": _cached(request, "browse",
                                                                            (request.GET.urlencode(),), build)})


@storefront_only
@anonymous_page_cache
def item_detail(request, slug: str):
    """The item's public part (description, syllabus, creators, reviews, related items) is cached per catalog
    generation and per kind of visitor (with or without access); the buy box and the learner's own review are not."""
    # The row itself is cached too (False marks a slug with no item): the page is the storefront's most visited.
    row = _cached(request, "item-row", (slug,), lambda: selectors.item_by_slug(slug=slug) or False)
    if request.user.is_authenticated and (row is False or row.status != ContentItem.Status.PUBLISHED):
        # The team and an item's creators preview drafts as they edit them, which leaves the catalog generation
        # alone, and a slug without an item may since be a new draft's: read it again. A visitor who is not signed in
        # gets a 404 for such a row either way, so their pages cost no more queries.
        row = selectors.item_by_slug(slug=slug) or False
    if row is False:
        raise Http404("No such item.")
    item = selectors.item_for_storefront(slug=slug, user=request.user, item=row)
    if request.user.is_authenticated:
        recommendations.item_viewed(user=request.user, item=item, ref=request.GET.get("rec", ""))
    return _item_page(request, item)


def _item_page(request, item: ContentItem, *, review_form: ReviewForm | None = None, status: int = 200):
    """Render the item page; ``review_form`` is the learner's submitted form when it has errors to show."""
    personal = selectors.item_personal(item=item, user=request.user)

    def build() -> tuple[str, str, str]:
        context = {"item": item, "public": selectors.item_public(item=item), "has_access": personal.has_access,
                   "tenant": request.tenant}
        # The learner's own review form goes between the reviews and what else the storefront offers.
        return (render_to_string("catalog/_item_head.html", context, request),
                render_to_string("catalog/_item_public.html", context, request),
                render_to_string("catalog/_item_more.html", context, request))

    head_html, public_html, more_html = _cached(
        request, "item-page", (item.pk, item.updated_at.timestamp(), personal.has_access), build)
    if review_form is None and personal.has_access and request.user.is_authenticated:
        review_form = ReviewForm(instance=personal.own_review)
    return render(request, "catalog/item_detail.html", {
        "item": item, "personal": personal, "public_html": public_html, "more_html": more_html,
        "head_html": head_html,
        "review_form": review_form, "live_open": _live_open(item, personal.has_access), "live_state": _live_state(item),
        "neighbours": recommendations.item_neighbours(item=item, user=request.user),
    }, status=status)


def _live_end(item: ContentItem):
    return item.starts_at + timedelta(minutes=max(item.duration_minutes, 60))


def _live_open(item: ContentItem, has_access: bool) -> bool:
    if item.kind != ContentItem.Kind.LIVE or not item.starts_at or not has_access:
        return False
    return item.starts_at - timedelta(minutes=30) <= timezone.now() <= _live_end(item)


def _live_state(item: ContentItem) -> str:
    """"upcoming", "live" or "past" for a live session with a start time, else "": a session that took place is
    sold as its replay, not as a date to come."""
    if item.kind != ContentItem.Kind.LIVE or not item.starts_at:
        return ""
    now = timezone.now()
    return "upcoming" if now < item.starts_at else "live" if now <= _live_end(item) else "past"


@storefront_only
def learn(request, slug: str, lesson_id: int | None = None):
    """The player/reader: a course's lesson, or the item's own body and media for the other kinds."""
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    lesson = None
    if item.kind == ContentItem.Kind.COURSE:
        if lesson_id is None:
            lesson = selectors.lesson_resume_target(item=item, user=request.user)
            if lesson is None:
                raise Http404("This course has no lessons yet.")
            return redirect("catalog:lesson", slug=item.slug, lesson_id=lesson.id)
        lesson = get_object_or_404(Lesson.objects.select_related("section"), pk=lesson_id, item=item)
    if not can_access(request.user, item, lesson):
        messages.info(request, _("This part is for learners who own the item."))
        return redirect("catalog:item", slug=item.slug)

    sections = selectors.item_syllabus(item=item)
    personal = selectors.item_personal(item=item, user=request.user, with_lessons=True)
    if lesson is not None and lesson.is_preview and not personal.has_access:
        recommendations.event_record(user=request.user, item=item, kind=recommendations.EventKind.PREVIEW)
    position = 0
    if request.user.is_authenticated:
        position = selectors.resume_position(user=request.user, item=item, lesson=lesson)
    lessons = [lesson for section in sections for lesson in section.lessons.all()]
    index = lessons.index(lesson) if lesson in lessons else -1
    accessible = {lesson.id for lesson in lessons if personal.has_access or lesson.is_preview}
    # Without access, previous and next skip the locked lessons (which would only bounce to the item page); when
    # locked lessons are all that follow, the page offers the item instead.
    earlier = [other for other in lessons[:index] if other.id in accessible] if index >= 0 else []
    later = [other for other in lessons[index + 1:] if other.id in accessible] if index >= 0 else []
    return render(request, "catalog/learn.html", {
        "sections": sections, "personal": personal, "item": item, "lesson": lesson, "position": position,
        "previous": earlier[-1] if earlier else None,
        "next": later[0] if later else None,
        "locked_after": not later and 0 <= index < len(lessons) - 1,
        "accessible_lessons": accessible,
    })


@storefront_only
@require_POST
def progress(request, slug: str):
    """Record progress from the player (JSON reply) or from the "mark complete" button (redirect).

    Refusals reach the player as ``{"error": {"code", "message", "extra"}}`` with their status, and the button as the
    storefront's error page (``ApplicationErrorMiddleware``).
    """
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    form = ProgressForm(request.POST, item=item)
    if not form.is_valid():
        raise form.first_error()
    record = services.progress_record(user=request.user, item=item, lesson=form.cleaned_data["lesson"],
                                      position_seconds=form.cleaned_data["position"],
                                      completed=form.cleaned_data["completed"])
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"percent": record.percent, "completed": record.completed_at is not None})
    if form.cleaned_data["completed"]:  # said where the button leads: the next lesson, or the item's page
        messages.success(request, _("Marked complete."))
    target = request.POST.get("next") or reverse("catalog:item", args=[item.slug])
    return HttpResponseRedirect(target if target.startswith("/") and not target.startswith("//") else "/")


@storefront_only
@login_required
def review(request, slug: str):
    """Save the learner's review. A GET (a reload, or the language switch on a refused form's page) goes to the
    item's page, where the form is."""
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    if request.method != "POST":
        return redirect("catalog:item", slug=item.slug)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.review_save(user=request.user, item=item, rating=form.cleaned_data["rating"],
                                 body=form.cleaned_data["body"])
            # Shown next to the form, where the redirect lands.
            messages.success(request, _("Thank you: your review is saved."), extra_tags="review")
            return redirect(reverse("catalog:item", args=[item.slug]) + "#your-review")
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    return _item_page(request, item, review_form=form, status=400)


@storefront_only
def item_media(request, slug: str):
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    if not item.media or not can_access(request.user, item):
        raise Http404("No media here.")
    download = f"{item.slug}{_suffix(item.media.name)}" if item.kind == ContentItem.Kind.EBOOK else None
    return media_response(request, item.media.name, download_name=download)


@storefront_only
def lesson_media(request, slug: str, lesson_id: int):
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    lesson = get_object_or_404(Lesson, pk=lesson_id, item=item)
    if not lesson.media or not can_access(request.user, item, lesson):
        raise Http404("No media here.")
    download = lesson.media.name.rsplit("/", 1)[-1] if lesson.kind == Lesson.Kind.FILE else None
    return media_response(request, lesson.media.name, download_name=download)


@storefront_only
def item_captions(request, slug: str):
    """The captions of an item's audio or video, to whoever may play it."""
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    if not item.captions or not can_access(request.user, item):
        raise Http404("No captions here.")
    return captions_response(item.captions.name)


@storefront_only
def lesson_captions(request, slug: str, lesson_id: int):
    """The captions of a lesson's audio or video: open like its media, to everyone on a free preview."""
    item = selectors.item_for_storefront(slug=slug, user=request.user)
    lesson = get_object_or_404(Lesson, pk=lesson_id, item=item)
    if not lesson.captions or not can_access(request.user, item, lesson):
        raise Http404("No captions here.")
    return captions_response(lesson.captions.name)


def _suffix(name: str) -> str:
    return "." + name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else ""


@storefront_only
@anonymous_page_cache
def creator_detail(request, slug: str):
    creator = selectors.creator_for_storefront(slug=slug)
    return render(request, "catalog/creator_detail.html",
                  {"creator": creator, "items": selectors.creator_items(creator=creator)})


@storefront_only
@anonymous_page_cache
def bundle_detail(request, slug: str):
    """The bundle and its items; to a signed-in learner, the way to buy it, or, when checkout would refuse it (they
    have everything in it already), to open its items."""
    from payments.selectors import bundle_owned_part
    from payments.services import purchase_check

    bundle, items = selectors.bundle_for_storefront(slug=slug)
    refusal = owned_part = None
    if request.user.is_authenticated:
        try:
            purchase_check(user=request.user, bundle=bundle)
            owned_part = bundle_owned_part(user=request.user, items=items)
        except ApplicationError as exc:
            refusal = exc
    return render(request, "catalog/bundle_detail.html", {
        "bundle": bundle, "items": items, "total": sum(i.price for i in items),
        "owned": refusal is not None and refusal.code == "already_owned", "refusal": refusal,
        "owned_part": owned_part})


@storefront_only
@anonymous_page_cache
def path_detail(request, slug: str):
    return render(request, "catalog/path_detail.html",
                  {"page": selectors.path_for_storefront(slug=slug, user=request.user)})


@storefront_only
@login_required
def my_learning(request):
    preference = recommendations.preference_for(request.user)
    plan = recommendations.path_plan(user=request.user, preference=preference) if preference else None
    goal = ""
    if preference is not None:
        goal = (f"p:{preference.goal_path_id}" if preference.goal_path_id else
                f"c:{preference.goal_category_id}" if preference.goal_category_id else "")
    return render(request, "catalog/my_learning.html", {
        "entries": selectors.my_learning(user=request.user), "plan": plan,
        "goal_form": recommendations.GoalForm(initial={"goal": goal})})
