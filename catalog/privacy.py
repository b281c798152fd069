"""What the catalog holds about a person: progress and reviews. Exported on request; erased with the account."""

from accounts import privacy

from .models import ItemProgress, LessonProgress, Review


def export(user, tenant) -> dict:
    return {
        "progress": [
            {"item": p.item.title, "percent": p.percent, "started_at": p.started_at.isoformat(),
             "completed_at": p.completed_at.isoformat() if p.completed_at else None}
            for p in ItemProgress.objects.filter(user=user).select_related("item")
        ],
        "reviews": [
            {"item": r.item.title, "rating": r.rating, "body": r.body, "updated_at": r.updated_at.isoformat()}
            for r in Review.objects.filter(user=user).select_related("item")
        ],
    }


def erase(user, tenant) -> None:
    # Ratings stay in the item's totals (they are anonymous there); the words and the learning history go.
    Review.objects.filter(user=user).update(body="")
    LessonProgress.objects.filter(user=user).delete()
    ItemProgress.objects.filter(user=user).delete()


privacy.register("catalog", exporter=export, eraser=erase)
