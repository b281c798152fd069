"""What a storefront sells and how learners move through it.

A ``ContentItem`` is one thing on sale: a course (sections and lessons), an article, an audio or video lecture, an
e-book or a live session. Items are written in draft, go through review, and each publication bumps ``version`` and
leaves an ``ItemVersion`` (content hash and snapshot) that distribution and the publication record read later.
Bundles sell several items together; learning paths order items from basics to advanced. Learners' progress and
reviews live here too. Who may open what is decided in ``catalog.access``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned

from .captions import CaptionsField
from .storage import private_storage


def cover_upload_to(instance, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/covers/{filename}"


def avatar_upload_to(instance, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/avatars/{filename}"


def media_upload_to(instance, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/media/{filename}"


def captions_upload_to(instance, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/captions/{filename}"


class CaptionedMedia(models.Model):
    """Captions and a transcript for an item's or a lesson's audio or video (WCAG 2.1 1.2.1-1.2.3): the captions
    load into the player as a ``<track>``, the transcript is shown under it."""

    captions = CaptionsField(
        _("captions"), storage=private_storage, upload_to=captions_upload_to, blank=True, max_length=255,
        help_text=_("WebVTT (.vtt), or SubRip (.srt), which is converted to WebVTT."))
    captions_language = models.CharField(_("language of the captions"), max_length=10, choices=settings.LANGUAGES,
                                         blank=True, help_text=_("Leave empty for the item's language."))
    transcript = models.TextField(_("transcript"), blank=True,
                                  help_text=_("Everything said and heard, as plain text; shown under the player."))

    class Meta:
        abstract = True

    def captions_check(self, *, plays: bool) -> None:
        """Refuse captions and a transcript where nothing is played (``plays``: the media is audio or video)."""
        if plays:
            return
        errors = {}
        if self.captions:
            errors["captions"] = _("Only video and audio have captions: remove the file, or change the kind.")
        if self.transcript.strip():
            errors["transcript"] = _("Only video and audio have a transcript: remove it, or change the kind.")
        if errors:
            raise ValidationError(errors)


class Level(models.TextChoices):
    BEGINNER = "beginner", _("Beginner")
    INTERMEDIATE = "intermediate", _("Intermediate")
    ADVANCED = "advanced", _("Advanced")


LEVEL_ORDER = {Level.BEGINNER: 0, Level.INTERMEDIATE: 1, Level.ADVANCED: 2}


class Category(TenantOwned):
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100, allow_unicode=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="category_slug_per_tenant")]

    def __str__(self) -> str:
        return self.name


class Tag(TenantOwned):
    name = models.CharField(_("name"), max_length=60)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tag_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class Creator(TenantOwned):
    """A person credited on items and paid a share of their sales; linked to a user when they sign in to the admin."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="creator_profiles", verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120, allow_unicode=True)
    headline = models.CharField(_("headline"), max_length=200, blank=True)
    bio = models.TextField(_("biography"), blank=True)
    avatar = models.ImageField(_("photo"), upload_to=avatar_upload_to, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("creator")
        verbose_name_plural = _("creators")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="creator_slug_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "user"], condition=Q(user__isnull=False),
                                    name="one_creator_profile_per_user", violation_error_code="creator_profile_exists",
                                    violation_error_message=_("This person already has a creator profile on this "
                                                              "storefront.")),
        ]

    def __str__(self) -> str:
        return self.name


class ContentItem(CaptionedMedia, TenantOwned):
    class Kind(models.TextChoices):
        COURSE = "course", _("Course")
        ARTICLE = "article", _("Article")
        AUDIO = "audio", _("Audio lecture")
        VIDEO = "video", _("Video lecture")
        EBOOK = "ebook", _("E-book")
        LIVE = "live", _("Live session")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        IN_REVIEW = "in_review", _("In review")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT,
                              editable=False)
    title = models.CharField(_("title"), max_length=200)
    subtitle = models.CharField(_("subtitle"), max_length=300, blank=True)
    slug = models.SlugField(_("slug"), max_length=200, allow_unicode=True)
    description = models.TextField(_("description"), blank=True,
                                   help_text=_("Markdown or HTML; unsafe markup is removed."))
    description_html = models.TextField(_("description (HTML)"), editable=False, blank=True)
    cover = models.ImageField(_("cover image"), upload_to=cover_upload_to, blank=True)
    cover_alt = models.CharField(_("cover description"), max_length=200, blank=True,
                                 help_text=_("What the cover shows, for screen readers."))
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    level = models.CharField(_("level"), max_length=12, choices=Level.choices, default=Level.BEGINNER)
    categories = models.ManyToManyField(Category, blank=True, related_name="items", verbose_name=_("categories"))
    tags = models.ManyToManyField(Tag, blank=True, related_name="items", verbose_name=_("tags"))
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=0)
    price = models.PositiveIntegerField(
        _("price"), default=0,
        help_text=_("In the storefront currency's minor unit (cents, fen); 0 makes the item free."))
    is_featured = models.BooleanField(_("featured on the home page"), default=False)
    prerequisites = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="unlocks",
                                           verbose_name=_("prerequisites"))
    # What an article, lecture or e-book consists of (courses keep theirs in lessons).
    body = models.TextField(_("body"), blank=True, help_text=_("Article text, or notes shown beside a lecture."))
    body_html = models.TextField(_("body (HTML)"), editable=False, blank=True)
    media = models.FileField(_("media file"), storage=private_storage, upload_to=media_upload_to, blank=True,
                             help_text=_("The lecture's audio or video, the e-book file, or a live session's replay."))
    # Live sessions.
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    join_url = models.URLField(_("join link"), blank=True,
                               help_text=_("Shown only to learners with access, from 30 minutes before the start."))
    external_id = models.CharField(_("ID on the previous platform"), max_length=100, blank=True)

    version = models.PositiveIntegerField(_("version"), default=0, editable=False)
    review_note = models.TextField(_("reviewer's note"), blank=True, editable=False)
    published_at = models.DateTimeField(_("first published"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   editable=False, related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Derived, kept by the services so that listings need no aggregation.
    search_text = models.TextField(_("search text"), editable=False, blank=True)
    rating_count = models.PositiveIntegerField(_("number of ratings"), default=0, editable=False)
    rating_sum = models.PositiveIntegerField(_("sum of ratings"), default=0, editable=False)
    learner_count = models.PositiveIntegerField(_("learners"), default=0, editable=False)

    creators = models.ManyToManyField(Creator, through="ItemCreator", related_name="items",
                                      verbose_name=_("creators"))

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name = _("content item")
        verbose_name_plural = _("content items")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="item_slug_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "external_id"], condition=~Q(external_id=""),
                                    name="item_external_id_per_tenant", violation_error_code="external_id_taken",
                                    violation_error_message=_("Another item on this storefront already has this ID "
                                                              "from the previous platform.")),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "-published_at"], name="item_listing"),
            models.Index(fields=["tenant", "status", "-learner_count"], name="item_popular"),
        ]
        permissions = [("review_contentitem", _("Can approve or reject content items"))]

    def __str__(self) -> str:
        return self.title

    @property
    def is_free(self) -> bool:
        return self.price == 0

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def rating(self) -> float | None:
        return round(self.rating_sum / self.rating_count, 1) if self.rating_count else None

    @property
    def media_kind(self) -> str:
        """How the player presents ``media``: audio, video, or a download."""
        return {self.Kind.AUDIO: "audio", self.Kind.VIDEO: "video", self.Kind.LIVE: "video"}.get(self.kind, "file")

    def clean(self) -> None:
        if self.kind == self.Kind.LIVE and not self.starts_at:
            raise ValidationError({"starts_at": _("A live session needs a start time.")})
        self.captions_check(plays=self.media_kind != "file")
        self.charge_step_check("price")


class ItemCreator(TenantOwned):
    """A creator credited on an item, with the share of the item's net revenue they are paid (basis points)."""

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="item_creators",
                             verbose_name=_("item"))
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="item_credits",
                                verbose_name=_("creator"))
    share_bp = models.PositiveIntegerField(
        _("revenue share (basis points)"), default=0, validators=[MaxValueValidator(10000)],
        help_text=_("1 basis point is 0.01%; 10000 is the whole creators' part. Sales pay the shares the item was last "
                    "published with: on a published item, a change applies once its changes are published."))
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("credited creator")
        verbose_name_plural = _("credited creators")
        constraints = [models.UniqueConstraint(fields=["item", "creator"], name="creator_once_per_item")]

    def __str__(self) -> str:
        return f"{self.creator} · {self.share_bp / 100:g}%"


class Section(TenantOwned):
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="sections",
                             verbose_name=_("item"))
    title = models.CharField(_("title"), max_length=200)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("section")
        verbose_name_plural = _("sections")

    def __str__(self) -> str:
        return self.title


class Lesson(CaptionedMedia, TenantOwned):
    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Audio")
        FILE = "file", _("File")

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="lessons",
                             verbose_name=_("item"))
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="lessons", verbose_name=_("section"))
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("text (HTML)"), editable=False, blank=True)
    media = models.FileField(_("media file"), storage=private_storage, upload_to=media_upload_to, blank=True)
    duration_seconds = models.PositiveIntegerField(_("duration (seconds)"), default=0)
    is_preview = models.BooleanField(_("free preview"), default=False)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["section__position", "section_id", "position", "id"]
        verbose_name = _("lesson")
        verbose_name_plural = _("lessons")

    def __str__(self) -> str:
        return self.title

    @property
    def media_kind(self) -> str:
        return self.kind if self.kind in (self.Kind.AUDIO, self.Kind.VIDEO) else "file"

    def clean(self) -> None:
        self.captions_check(plays=self.media_kind != "file")


class FileDigest(TenantOwned):
    """The SHA-256 of a private file (media, captions) as it was when a version first named it: versions' snapshots
    record it beside the file's name, so the chain's content hashes cover the bytes, not only the name. Keyed by the
    stored name, which storage never gives another upload, so a file is read once however often it is published."""

    name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="one_digest_per_stored_file")]


class ItemVersion(TenantOwned):
    """What was published as version N: the record distribution pushes and the publication chain hashes."""

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="versions",
                             verbose_name=_("item"))
    number = models.PositiveIntegerField(_("version"))
    content_hash = models.CharField(_("content hash"), max_length=64)
    snapshot = models.JSONField(_("snapshot"))
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                     related_name="+", verbose_name=_("published by"))
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["item", "number"], name="one_row_per_item_version")]


class EditorialDecision(TenantOwned):
    """A reviewer's approval or rejection of an item submitted for review."""

    class Outcome(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted for review")
        APPROVED = "approved", _("Approved and published")
        REJECTED = "rejected", _("Rejected")
        ARCHIVED = "archived", _("Archived")
        RESTORED = "restored", _("Put back on sale")
        UPDATED = "updated", _("Changes published")

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="decisions",
                             verbose_name=_("item"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
                              verbose_name=_("done by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Bundle(TenantOwned):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)
    description_html = models.TextField(_("description (HTML)"), editable=False, blank=True)
    cover = models.ImageField(_("cover image"), upload_to=cover_upload_to, blank=True)
    price = models.PositiveIntegerField(_("price"), default=0, help_text=_("In the currency's minor unit."))
    items = models.ManyToManyField(ContentItem, related_name="bundles", verbose_name=_("items"))
    is_published = models.BooleanField(_("on sale"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["title"]
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="bundle_slug_per_tenant")]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        self.charge_step_check("price")


class LearningPath(TenantOwned):
    """An authored route from basics to advanced; item prerequisites say what must come first."""

    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)
    description_html = models.TextField(_("description (HTML)"), editable=False, blank=True)
    is_published = models.BooleanField(_("published"), default=False)

    class Meta:
        ordering = ["title"]
        verbose_name = _("learning path")
        verbose_name_plural = _("learning paths")
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="path_slug_per_tenant")]

    def __str__(self) -> str:
        return self.title


class PathStep(TenantOwned):
    path = models.ForeignKey(LearningPath, on_delete=models.CASCADE, related_name="steps",
                             verbose_name=_("learning path"))
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="path_steps",
                             verbose_name=_("item"))
    position = models.PositiveIntegerField(_("position"), default=0)
    note = models.CharField(_("why this step"), max_length=200, blank=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        constraints = [models.UniqueConstraint(fields=["path", "item"], name="item_once_per_path")]

    def __str__(self) -> str:
        return f"{self.position}. {self.item}"


class ItemProgress(TenantOwned):
    """A learner's place in one item: where to resume, how far along, and when they finished."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="progress",
                             verbose_name=_("item"))
    last_lesson = models.ForeignKey(Lesson, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                    verbose_name=_("last lesson"))
    position_seconds = models.PositiveIntegerField(_("position (seconds)"), default=0)
    percent = models.PositiveSmallIntegerField(_("progress (%)"), default=0, validators=[MaxValueValidator(100)])
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # Counted in the item's learner_count: not while the person has only watched its free preview.
    in_learner_count = models.BooleanField(_("counted as a learner"), default=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="one_progress_per_learner_item")]


class LessonProgress(TenantOwned):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="progress", verbose_name=_("lesson"))
    position_seconds = models.PositiveIntegerField(_("position (seconds)"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="one_progress_per_learner_lesson")]


class Review(TenantOwned):
    """A learner's star rating and words on an item they have access to; one per learner and item, editable."""

    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="reviews",
                             verbose_name=_("item"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    rating = models.PositiveSmallIntegerField(_("rating"), validators=[MinValueValidator(1), MaxValueValidator(5)])
    body = models.TextField(_("your review"), blank=True, max_length=4000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="one_review_per_learner_item"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="rating_one_to_five"),
        ]

    def __str__(self) -> str:
        return gettext("★%(rating)s by %(learner)s on “%(item)s”") % {
            "rating": self.rating, "learner": self.user, "item": self.item.title}


class ImportMapping(TenantOwned):
    """How another platform's CSV export's columns map to ours, remembered per tenant and header set."""

    name = models.CharField(_("name"), max_length=100)
    headers_key = models.CharField(_("column headers key"), max_length=64)
    columns = models.JSONField(_("columns"), default=dict)
    options = models.JSONField(_("options"), default=dict)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "headers_key"], name="one_mapping_per_header_set")]
