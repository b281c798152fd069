"""What the catalog holds about a person: progress, reviews and their creator profile. Exported on request; the
learning history and the words of reviews (also of reviews the team deleted, which the audit log keeps) are erased
with the account, and cached pages showing them are dropped.
A creator profile stays (it is how the storefront credits the work), but one named after the person's address is
renamed, also in the published versions' snapshots."""

import re

from django.utils import translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import privacy
from accounts.selectors import user_email_addresses
from marketplace.models import AuditLog

from .models import Creator, ItemProgress, ItemVersion, LessonProgress, Review
from .services import catalog_changed, catalog_name_changed


def creator_placeholder(*, tenant) -> tuple[str, str]:
    """A name (in the storefront's language) and a free slug for a creator profile whose person chose no name to be
    credited by. Never their address, which they did not choose to publish."""
    with translation.override(tenant.default_language):
        name = _("Creator")
    base = slugify(name, allow_unicode=True)[:100].strip("-") or "creator"
    slug, n = base, 1
    while Creator.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return name, slug


def _rename_address_named_profiles(user, tenant) -> None:
    """Profiles made before creators chose their name were named after their address's local part, their slug
    made from that name (``catalog.admin._creator_profile``). Such a name goes with the address; one the creator or
    the team chose stays."""
    locals_ = {address.split("@")[0][:120] for address in {user.email, *user_email_addresses(user=user)} if address}
    for profile in Creator.objects.filter(user=user):
        # Made from the address exactly as ``_creator_profile`` did; a name they go by (their display name) stays.
        if profile.name not in locals_ or profile.name == (user.display_name or "").strip()[:120]:
            continue
        derived = slugify(profile.name, allow_unicode=True)[:100].strip("-") or "creator"
        name, slug = creator_placeholder(tenant=tenant)
        profile.name = name
        update = ["name"]
        if re.fullmatch(rf"{re.escape(derived)}(-\d+)?", profile.slug):
            profile.slug = slug
            update.append("slug")
        profile.save(update_fields=update)
        catalog_name_changed(obj=profile)  # the items' credits and search text held the old name
        _rename_in_published_versions(profile)


def _rename_in_published_versions(profile: Creator) -> None:
    """Published versions keep the credits they were published with, names included, and distribution pushes a
    version's snapshot: the profile's new name replaces the old one there too. The chain records a version's creators
    by id and share, not name, and its content hash (of what was published then) is never worked out again from the
    snapshot, so both still verify."""
    credited = [pk for pk, credits in ItemVersion.objects.values_list("pk", "snapshot__creators")
                if any(credit.get("creator") == profile.pk for credit in credits or [])]
    for version in ItemVersion.objects.filter(pk__in=credited):
        version.snapshot = {**version.snapshot, "creators": [
            {**credit, "name": profile.name} if credit.get("creator") == profile.pk else credit
            for credit in version.snapshot["creators"]]}
        version.save(update_fields=["snapshot"])


def export(user, tenant) -> dict:
    return {
        "progress": [
            {"item": p.item.title, "percent": p.percent, "started_at": p.started_at.isoformat(),
             "completed_at": p.completed_at.isoformat() if p.completed_at else None}
            for p in ItemProgress.objects.filter(user=user).select_related("item")
        ],
        "lessons": [
            {"item": p.lesson.item.title, "lesson": p.lesson.title, "position_seconds": p.position_seconds,
             "updated_at": p.updated_at.isoformat(),
             "completed_at": p.completed_at.isoformat() if p.completed_at else None}
            for p in LessonProgress.objects.filter(user=user).select_related("lesson__item").order_by("pk")
        ],
        "reviews": [
            {"item": r.item.title, "rating": r.rating, "body": r.body, "updated_at": r.updated_at.isoformat()}
            for r in Review.objects.filter(user=user).select_related("item")
        ],
        "creator_profile": [
            {"name": c.name, "slug": c.slug, "headline": c.headline, "bio": c.bio,
             "photo": c.avatar.name if c.avatar else None}
            for c in Creator.objects.filter(user=user)
        ],
    }


def _erase_deleted_review_words(user) -> None:
    """Empty the words of the person's reviews that the team deleted, which their audit entries keep; the rating and
    the fact of the moderation stay. Entries written before they named the reviewer (no "user" in their data) are
    not found: nothing in them says whose review it was."""
    for entry in AuditLog.objects.filter(action="catalog.review_deleted", data__user=user.pk):
        if entry.data.get("body"):
            entry.data = {**entry.data, "body": ""}
            entry.save(update_fields=["data"])


def erase(user, tenant) -> None:
    # Ratings stay in the item's totals (they are anonymous there); the words and the learning history go.
    Review.objects.filter(user=user).update(body="")
    _erase_deleted_review_words(user)
    LessonProgress.objects.filter(user=user).delete()
    ItemProgress.objects.filter(user=user).delete()
    _rename_address_named_profiles(user, tenant)
    # Item pages are cached per catalog generation: a new one, once this commits, drops the pages showing the
    # reviewer's name and words.
    catalog_changed(tenant.pk)


privacy.register("catalog", exporter=export, eraser=erase)
