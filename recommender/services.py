"""Writes of the recommender app other than events (see ``events``) and fits (see ``fitting``)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import Category, LearningPath
from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write
from marketplace.tenancy import current_tenant

from .models import Event, EventRollup, LearnerPreference

RETENTION_DAYS = 180


def preference_get(*, user) -> LearnerPreference:
    preference, _created = LearnerPreference.objects.get_or_create(user=user, defaults={"tenant": current_tenant()})
    return preference


def preference_update(*, user, personalised: bool | None = None, digest: str | None = None) -> LearnerPreference:
    """Change the learner's say over personalisation and the digest; turning personalisation off is audited."""
    with transaction.atomic():
        preference = preference_get(user=user)
        fields = []
        if personalised is not None and personalised != preference.personalised:
            preference.personalised = personalised
            fields.append("personalised")
            audit_log_write(tenant=current_tenant(), actor=user, action="recommender.personalisation_changed",
                            target=user, data={"personalised": personalised})
        if digest is not None:
            if digest not in LearnerPreference.Digest.values:
                raise ApplicationError(_("Choose how often to get the digest."), code="bad_digest",
                                       extra={"field": "digest"})
            preference.digest = digest
            fields.append("digest")
        if fields:
            preference.save(update_fields=fields)
    return preference


def goal_set(*, user, category: Category | None = None, path: LearningPath | None = None) -> LearnerPreference:
    """Set what the learner works towards: a subject (category) or an authored path; neither clears the goal."""
    if category is not None and path is not None:
        raise ApplicationError(_("Choose a subject or a learning path, not both."), code="bad_goal")
    if path is not None and not path.is_published:
        raise ApplicationError(_("That learning path is not published."), code="bad_goal")
    with transaction.atomic():
        preference = preference_get(user=user)
        preference.goal_category, preference.goal_path = category, path
        preference.save(update_fields=["goal_category", "goal_path"])
    return preference


def events_compact(*, older_than_days: int = RETENTION_DAYS) -> int:
    """Fold raw events older than the retention period into rollups, then delete them; returns events folded.

    Call inside the tenant's scope and transaction (the retention task does): the rollups and the deletion commit
    together, so an event is never counted twice nor lost. Compactions of one storefront take turns (a lock taken
    before the events are read), so a second one at once reads only what the first left.
    """
    tenant = current_tenant()
    if connection.vendor == "postgresql":  # held until the caller's transaction ends
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('recommender.events_compact'), %s)",
                           [tenant.pk & 0x7FFFFFFF])
    cutoff = timezone.now() - timedelta(days=older_than_days)
    old = Event.objects.filter(occurred_at__lt=cutoff)
    latest_value = (Event.objects.filter(user_id=OuterRef("user_id"), item_id=OuterRef("item_id"),
                                         kind=OuterRef("kind"), occurred_at__lt=cutoff, value__isnull=False)
                    .order_by("-occurred_at").values("value")[:1])
    groups = list(old.values("user_id", "item_id", "kind").annotate(n=Count("id"), last=Max("occurred_at"),
                                                                      value=Subquery(latest_value)))
    if not groups:
        return 0
    existing = {(r.user_id, r.item_id, r.kind): r for r in EventRollup.objects.select_for_update().filter(
        user_id__in={g["user_id"] for g in groups})}
    new, changed = [], []
    for group in groups:
        key = (group["user_id"], group["item_id"], group["kind"])
        rollup = existing.get(key)
        if rollup is None:
            new.append(EventRollup(tenant=tenant, user_id=key[0], item_id=key[1], kind=key[2], count=group["n"],
                                   value=group["value"], last_at=group["last"]))
        else:
            rollup.count += group["n"]
            if group["last"] > rollup.last_at:
                rollup.last_at = group["last"]
                rollup.value = group["value"] if group["value"] is not None else rollup.value
            changed.append(rollup)
    EventRollup.objects.bulk_create(new, batch_size=1000)
    EventRollup.objects.bulk_update(changed, ["count", "last_at", "value"], batch_size=1000)
    folded = sum(group["n"] for group in groups)
    old.delete()
    return folded
