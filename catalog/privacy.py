"""What the catalog holds about a person: progress, reviews and their creator profile. Exported on request; the
learning history and the words of reviews are erased with the account."""

from accounts import privacy

from .models import Creator, ItemProgress, LessonProgress, Review


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


def erase(user, tenant) -> None:
    # Ratings stay in the item's totals (they are anonymous there); the words and the learning history go.
    Review.objects.filter(user=user).update(body="")
    LessonProgress.objects.filter(user=user).delete()
    ItemProgress.objects.filter(user=user).delete()


privacy.register("catalog", exporter=export, eraser=erase)
