"""What the recommender holds about a person: events, preferences and precomputed picks. Exported; erased."""

from accounts import privacy

from .models import Event, EventRollup, LearnerPreference, Recommendation


def export(user, tenant) -> dict:
    preference = LearnerPreference.objects.filter(user=user).first()
    return {
        "events": [
            {"kind": e.kind, "item": e.item.title, "source": e.source, "value": e.value,
             "occurred_at": e.occurred_at.isoformat()}
            for e in Event.objects.filter(user=user).select_related("item").order_by("occurred_at")
        ],
        "older_events": [
            {"kind": r.kind, "item": r.item.title, "count": r.count, "value": r.value,
             "last_at": r.last_at.isoformat()}
            for r in EventRollup.objects.filter(user=user).select_related("item")
        ],
        "recommendations": [
            {"strategy": r.strategy or "model", "items": r.item_ids}
            for r in Recommendation.objects.filter(user=user)
        ],
        "preferences": {
            "personalised": preference.personalised, "digest": preference.digest,
            "goal": (preference.goal_path.title if preference.goal_path_id else
                     preference.goal_category.name if preference.goal_category_id else None),
        } if preference else None,
    }


def erase(user, tenant) -> None:
    Event.objects.filter(user=user).delete()
    EventRollup.objects.filter(user=user).delete()
    Recommendation.objects.filter(user=user).delete()
    LearnerPreference.objects.filter(user=user).delete()


privacy.register("recommender", exporter=export, eraser=erase)
