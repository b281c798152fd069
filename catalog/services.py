"""Writes on the catalog: the editorial workflow, derived fields, learners' progress and reviews."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from distribution.services import deliveries_plan
from marketplace.db import bulk_set
from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write
from marketplace.tenancy import current_tenant
from recommender.events import event_record
from recommender.models import EventKind

from .access import can_access
from .models import (
    Category,
    ContentItem,
    Creator,
    EditorialDecision,
    FileDigest,
    ItemProgress,
    ItemVersion,
    Lesson,
    LessonProgress,
    Review,
    Tag,
)
from .storage import private_file_sha256
from .text import plain_text, render_rich_text, search_document

Status = ContentItem.Status
logger = logging.getLogger(__name__)


# --- the storefront cache ------------------------------------------------------------------------------------------

def _generation_key(tenant_id: int) -> str:
    return f"catalog:generation:{tenant_id}"


def catalog_generation(tenant_id: int) -> int:
    """A number that changes whenever anything a storefront listing shows changes; part of every page-cache key."""
    generation = cache.get(_generation_key(tenant_id))
    if generation is None:
        generation = int(timezone.now().timestamp() * 1000)
        cache.add(_generation_key(tenant_id), generation, timeout=None)
        generation = cache.get(_generation_key(tenant_id), generation)
    return generation


def catalog_changed(tenant_id: int) -> None:
    """Invalidate the tenant's cached listings once the change is committed."""

    def bump() -> None:
        with contextlib.suppress(ValueError):  # not cached yet: the next reader starts a fresh generation
            cache.incr(_generation_key(tenant_id))

    transaction.on_commit(bump)


# --- derived fields ------------------------------------------------------------------------------------------------

def _search_text(item: ContentItem) -> str:
    parts = [item.title, item.title, item.subtitle, plain_text(item.description_html)]  # title twice: rank weight
    if item.pk:
        parts += [c.name for c in item.categories.all()] + [t.name for t in item.tags.all()]
        parts += [c.name for c in item.creators.all()]
    return search_document(*parts)


def item_refresh_derived(*, item: ContentItem, save: bool = True) -> ContentItem:
    """Render the rich text and rebuild the search text after the item or its categories, tags or creators change."""
    item.description_html = render_rich_text(item.description)
    item.body_html = render_rich_text(item.body)
    item.search_text = _search_text(item)
    if save:
        item.save(update_fields=["description_html", "body_html", "search_text", "updated_at"])
        if item.status in (Status.PUBLISHED, Status.ARCHIVED):
            catalog_changed(item.tenant_id)
    return item


# Items read and written per round: a few queries and one UPDATE for each, however many items a name is on.
SEARCH_TEXT_BATCH = 500


def items_refresh_search_text(*, items: QuerySet[ContentItem]) -> int:
    """Rebuild the search text of ``items`` (after a category, tag or creator they name is renamed) in batches;
    returns how many changed. The caller bumps the catalog generation."""
    changed: list[ContentItem] = []
    written = 0
    rows = (items.only("title", "subtitle", "description_html", "search_text").order_by("pk")
            .prefetch_related("categories", "tags", "creators"))
    for item in rows.iterator(chunk_size=SEARCH_TEXT_BATCH):
        text = _search_text(item)
        if text != item.search_text:
            item.search_text = text
            changed.append(item)
        if len(changed) == SEARCH_TEXT_BATCH:
            written += bulk_set(changed, ["search_text"])
            changed = []
    return written + bulk_set(changed, ["search_text"])


def catalog_name_changed(*, obj: Category | Tag | Creator) -> None:
    """A category, tag or creator was renamed: its items' search text and the cached listings hold the old name."""
    items_refresh_search_text(items=obj.items.all())
    catalog_changed(obj.tenant_id)


def lesson_refresh_derived(*, lesson: Lesson) -> Lesson:
    lesson.body_html = render_rich_text(lesson.body)
    return lesson


# --- the editorial workflow ----------------------------------------------------------------------------------------

def _locked(item: ContentItem) -> ContentItem:
    return ContentItem.objects.select_for_update().get(pk=item.pk)


def _decide(item: ContentItem, outcome: str, actor, reason: str = "") -> None:
    EditorialDecision.objects.create(tenant=item.tenant, item=item, outcome=outcome, reason=reason, actor=actor)
    audit_log_write(tenant=item.tenant, actor=actor, action=f"catalog.item_{outcome}", target=item,
                    data={"version": item.version, **({"reason": reason} if reason else {})})


def _file_digests(tenant, names: set[str]) -> dict[str, str]:
    """The SHA-256 of each private file named (``FileDigest``), reading those no version named before; a file missing
    from storage has none (the version records its name only, as before digests were kept)."""
    if not names:
        return {}
    known = dict(FileDigest.objects.filter(name__in=names).values_list("name", "sha256"))
    new = []
    for name in sorted(names - known.keys()):
        read = private_file_sha256(name)
        if read is None:
            logger.warning("publishing: %s is not in storage; its version records the name only", name)
            continue
        known[name], size = read
        new.append(FileDigest(tenant=tenant, name=name, sha256=known[name], size=size))
    FileDigest.objects.bulk_create(new, ignore_conflicts=True)  # another approval may have read the same file
    return known


def _files(row, digests: dict[str, str]) -> dict:
    """A row's media, and its captions and transcript when it has any (as every article and e-book has not): part of
    the published work. Private files are recorded by name and SHA-256."""
    files = {"media": row.media.name}
    if row.media.name in digests:
        files["media_sha256"] = digests[row.media.name]
    if row.captions or row.transcript:
        files.update(captions=row.captions.name, captions_language=row.captions_language, transcript=row.transcript)
        if row.captions.name in digests:
            files["captions_sha256"] = digests[row.captions.name]
    return files


def _snapshot(item: ContentItem) -> dict:
    lessons = list(item.lessons.select_related("section"))
    digests = _file_digests(item.tenant, {name for row in (item, *lessons)
                                          for name in (row.media.name, row.captions.name) if name})
    return {
        "kind": item.kind, "title": item.title, "subtitle": item.subtitle, "description_html": item.description_html,
        "body_html": item.body_html, "language": item.language, "level": item.level, "price": item.price,
        "cover": item.cover.name, **_files(item, digests),
        "creators": [{"creator": ic.creator_id, "name": ic.creator.name, "share_bp": ic.share_bp}
                     for ic in item.item_creators.select_related("creator")],
        "categories": sorted(c.slug for c in item.categories.all()),
        "lessons": [{"id": lesson.id, "section": lesson.section.title, "title": lesson.title, "kind": lesson.kind,
                     "body_html": lesson.body_html, "preview": lesson.is_preview, **_files(lesson, digests)}
                    for lesson in lessons],
    }


def item_submit(*, item: ContentItem, actor) -> ContentItem:
    """Send a draft to the reviewers."""
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.DRAFT:
            raise ApplicationError(_("Only a draft can be submitted for review."), code="not_a_draft")
        if not item.title.strip():
            raise ApplicationError(_("Give the item a title before submitting it."), code="title_missing")
        if item.kind == ContentItem.Kind.COURSE and not item.lessons.exists():
            raise ApplicationError(_("A course needs at least one lesson before review."), code="no_lessons")
        item.status = Status.IN_REVIEW
        item.save(update_fields=["status", "updated_at"])
        _decide(item, EditorialDecision.Outcome.SUBMITTED, actor)
    return item


def _publish(item: ContentItem, *, actor, snapshot: dict,
             outcome: str = EditorialDecision.Outcome.APPROVED) -> ItemVersion:
    """Publish ``item`` (locked, its derived fields refreshed) as its next version, recording ``snapshot``.

    The version row stores the content hash and snapshot that distribution pushes, and the storefront's chain records
    the publication (``payments.ledger.publication_post``) in the same transaction.
    """
    from payments.ledger import publication_post

    item.status = Status.PUBLISHED
    item.version += 1
    item.review_note = ""
    item.published_at = item.published_at or timezone.now()
    item.save(update_fields=["status", "version", "review_note", "published_at", "description_html",
                             "body_html", "search_text", "updated_at"])
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    version = ItemVersion.objects.create(tenant=item.tenant, item=item, number=item.version, content_hash=digest,
                                         snapshot=snapshot, published_by=actor)
    publication_post(version=version)
    _decide(item, outcome, actor)
    deliveries_plan(item=item, actor=actor)
    catalog_changed(item.tenant_id)
    return version


def item_approve(*, item: ContentItem, actor) -> ContentItem:
    """Publish an item in review as its next version. A published item's saved edits go live with
    ``item_publish_changes``; an archived item goes back on sale with ``item_restore``."""
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.IN_REVIEW:
            raise ApplicationError(_("Only an item in review can be approved."), code="not_in_review")
        item_refresh_derived(item=item, save=False)
        _publish(item, actor=actor, snapshot=_snapshot(item))
    return item


def item_restore(*, item: ContentItem, actor) -> ContentItem:
    """Put an archived item back on sale, as its next version: what it holds now (edits made while it was archived
    included) is sold again, and pushed again to the channels that take it, where archiving withdrew it."""
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.ARCHIVED:
            raise ApplicationError(_("Only an archived item can be put back on sale."), code="not_archived")
        item_refresh_derived(item=item, save=False)
        _publish(item, actor=actor, snapshot=_snapshot(item), outcome=EditorialDecision.Outcome.RESTORED)
    return item


def item_publish_changes(*, item: ContentItem, actor) -> ItemVersion | None:
    """The team's edits to a published item, saved: published at once as its next version when they change what a
    version records (``_snapshot``), as edits to a live course take effect on Teachable, so the storefront never sells
    anything (a price, a title, creators' shares) that no published version and no pushed post holds. A save that
    changes none of it publishes nothing. Returns the new version, if any."""
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.PUBLISHED:
            return None
        item_refresh_derived(item=item, save=False)
        snapshot = _snapshot(item)
        if snapshot == ItemVersion.objects.filter(item=item, number=item.version).values_list(
                "snapshot", flat=True).first():
            return None
        return _publish(item, actor=actor, snapshot=snapshot, outcome=EditorialDecision.Outcome.UPDATED)


def item_reject(*, item: ContentItem, actor, reason: str) -> ContentItem:
    """Send an item in review back to draft with the reviewer's reason, which its creators see."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError(_("Say why the item is rejected, so its creator can fix it."), code="reason_missing")
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.IN_REVIEW:
            raise ApplicationError(_("Only an item in review can be rejected."), code="not_in_review")
        item.status = Status.DRAFT
        item.review_note = reason
        item.save(update_fields=["status", "review_note", "updated_at"])
        _decide(item, EditorialDecision.Outcome.REJECTED, actor, reason)
    return item


def item_archive(*, item: ContentItem, actor) -> ContentItem:
    """Take a published item off sale. Learners who had access keep it."""
    with transaction.atomic():
        item = _locked(item)
        if item.status != Status.PUBLISHED:
            raise ApplicationError(_("Only a published item can be archived."), code="not_published")
        item.status = Status.ARCHIVED
        item.save(update_fields=["status", "updated_at"])
        _decide(item, EditorialDecision.Outcome.ARCHIVED, actor)
        deliveries_plan(item=item, actor=actor)
        catalog_changed(item.tenant_id)
    return item


# --- learners --------------------------------------------------------------------------------------------------------

def _require_access(user, item: ContentItem, lesson: Lesson | None = None) -> None:
    if not getattr(user, "is_authenticated", False):
        raise ApplicationError(_("Sign in to keep your progress."), code="not_authenticated", status=403)
    if not can_access(user, item, lesson):
        raise ApplicationError(_("You do not have access to this item."), code="no_access", status=403)


def progress_record(*, user, item: ContentItem, lesson: Lesson | None = None, position_seconds: int = 0,
                    completed: bool = False) -> ItemProgress:
    """Remember where the learner is (lesson and media position) and what they completed; safe to repeat.

    Completing every lesson of a course (or the item itself, for the other kinds) completes the item.
    """
    _require_access(user, item, lesson)
    if lesson is not None and lesson.item_id != item.id:
        raise ApplicationError(_("That lesson belongs to another item."), code="wrong_lesson")
    position_seconds = max(0, int(position_seconds))
    now = timezone.now()
    tenant = current_tenant()
    # Someone watching a paid item's free preview is remembered (to resume there after buying) but is not yet one of
    # its learners, whom the storefront counts and ranks "popular" by.
    learner = can_access(user, item)
    with transaction.atomic():
        progress, created = ItemProgress.objects.select_for_update().get_or_create(
            user=user, item=item, defaults={"tenant": tenant, "in_learner_count": learner})
        fields = ["updated_at"]
        if learner and (created or not progress.in_learner_count):
            ContentItem.objects.filter(pk=item.pk).update(learner_count=F("learner_count") + 1)
            progress.in_learner_count = True
            fields.append("in_learner_count")
        percent_before = progress.percent
        if lesson is not None:
            lesson_progress, _created = LessonProgress.objects.get_or_create(
                user=user, lesson=lesson, defaults={"tenant": tenant})
            lesson_progress.position_seconds = position_seconds
            if completed and lesson_progress.completed_at is None:
                lesson_progress.completed_at = now
            lesson_progress.save(update_fields=["position_seconds", "completed_at", "updated_at"])
            progress.last_lesson = lesson
            total = item.lessons.count()
            done = LessonProgress.objects.filter(lesson__item=item, user=user, completed_at__isnull=False).count()
            progress.percent = round(100 * done / total) if total else 0
            fields += ["last_lesson", "percent"]
        else:
            progress.position_seconds = position_seconds
            fields.append("position_seconds")
            if completed:
                progress.percent = 100
                fields.append("percent")
        if progress.percent == 100 and progress.completed_at is None:
            progress.completed_at = now
            fields.append("completed_at")
            audit_log_write(tenant=tenant, actor=user, action="catalog.item_completed", target=item)
            event_record(user=user, item=item, kind=EventKind.COMPLETE)
        elif created or progress.percent != percent_before:
            event_record(user=user, item=item, kind=EventKind.PROGRESS, value=progress.percent)
        progress.save(update_fields=fields)
    return progress


def review_save(*, user, item: ContentItem, rating: int, body: str = "") -> Review:
    """Create or edit the learner's one review of the item, keeping the item's rating totals in step."""
    _require_access(user, item)
    if not 1 <= int(rating) <= 5:
        raise ApplicationError(_("Choose from one to five stars."), code="bad_rating", extra={"field": "rating"})
    rating = int(rating)
    with transaction.atomic():
        # The item's row first (as the totals' UPDATE below locks it: FOR NO KEY UPDATE), since there may be no
        # review to lock yet: the same form sent twice queues here, and the second finds the first's review.
        ContentItem.objects.select_for_update(no_key=True).filter(pk=item.pk).values_list("pk").first()
        review = Review.objects.select_for_update().filter(item=item, user=user).first()
        if review is None:
            review = Review.objects.create(tenant=current_tenant(), item=item, user=user, rating=rating, body=body)
            ContentItem.objects.filter(pk=item.pk).update(rating_count=F("rating_count") + 1,
                                                          rating_sum=F("rating_sum") + rating)
        else:
            ContentItem.objects.filter(pk=item.pk).update(rating_sum=F("rating_sum") + rating - review.rating)
            review.rating, review.body = rating, body
            review.save(update_fields=["rating", "body", "updated_at"])
        event_record(user=user, item=item, kind=EventKind.RATE, value=rating)
        catalog_changed(item.tenant_id)
    return review


def review_delete(*, review: Review, actor) -> None:
    """Remove a review (the team moderating), taking its stars out of the item's totals. Safe to repeat: a review
    deleted meanwhile (by another moderator) is left alone."""
    with transaction.atomic():
        # The item's row, then the review's, in ``review_save``'s order; the stars taken out are the locked row's.
        ContentItem.objects.select_for_update(no_key=True).filter(pk=review.item_id).values_list("pk").first()
        review = Review.objects.select_for_update().filter(pk=review.pk).first()
        if review is None:
            return
        ContentItem.objects.filter(pk=review.item_id).update(rating_count=F("rating_count") - 1,
                                                             rating_sum=F("rating_sum") - review.rating)
        # "user" names the reviewer, as audit entries about a person do: their export shows the entry and their
        # erasure empties its words (``catalog.privacy.erase``).
        audit_log_write(tenant=review.tenant, actor=actor, action="catalog.review_deleted", target=review.item,
                        data={"user": review.user_id, "rating": review.rating, "body": review.body[:200]})
        review.delete()
        catalog_changed(review.tenant_id)
