"""The personalised digest: new and recommended items by email, with a frequency cap, quiet hours, one-click
unsubscribe and tracked links whose clicks come back as events.

The hourly beat task lists the learners who are due on each storefront, longest waiting first, and sends each one's
digest in its own task, which checks again that it is due (so a repeated task sends nothing twice) and that the
learner is still there. Nothing goes out in the quiet hours (``RECOMMENDER_QUIET_HOURS`` in the storefront's time
zone), nor with nothing new to say; such a check still counts as the period's digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.adapter import from_address
from accounts.models import Membership, Role, in_use
from accounts.selectors import email_language
from catalog.selectors import items_on_sale

from .models import LearnerPreference
from .selectors import owned_item_ids, recommended_for

PERIODS = {LearnerPreference.Digest.DAILY: timedelta(days=1), LearnerPreference.Digest.WEEKLY: timedelta(days=7)}
TRACK_SALT = "recommender.track"
UNSUBSCRIBE_SALT = "recommender.unsubscribe"
TRACK_MAX_AGE = 60 * 24 * 3600
PER_RUN = 500  # learners per storefront per hour: a large storefront's digests spread over the day
# The beat lists learners at minute 10 and each learner's task stamps its own, later time, so a period after the
# stamp falls a little after the same beat: a learner is due this much before a whole period has passed, or every
# digest would slip by an hour. Under an hour (the beat's interval), so no digest ever comes a beat early.
SLACK = timedelta(minutes=45)


def quiet_now(now: datetime | None = None) -> bool:
    """Whether it is night for the open storefront's learners: its scope makes its time zone the active one."""
    start, end = settings.RECOMMENDER_QUIET_HOURS
    hour = timezone.localtime(now).hour
    return (start <= hour or hour < end) if start > end else start <= hour < end


def recipients():
    """The open storefront's learners who can get a digest: members as learners, with an account still in use."""
    return Membership.objects.filter(in_use("user__"), role=Role.LEARNER)


def learners_due(*, now: datetime | None = None, limit: int = PER_RUN) -> list[int]:
    """Learners of the open storefront whose digest is due: weekly unless they chose otherwise, never when off.

    Longest waiting first (never sent one, then the oldest digest), so that when more are due than ``limit`` the
    ones left out lead the next hour's list.
    """
    now = now or timezone.now()
    if quiet_now(now):
        return []
    preferences = LearnerPreference.objects.filter(user=OuterRef("user"))
    due = Q(~Exists(preferences))  # never chose: weekly, first digest now
    for digest, period in PERIODS.items():
        due |= Q(Exists(preferences.filter(digest=digest).filter(
            Q(last_digest_at__isnull=True) | Q(last_digest_at__lte=now - period + SLACK))))
    waiting = recipients().filter(due).annotate(last_digest_at=Subquery(preferences.values("last_digest_at")[:1]))
    return list(waiting.order_by(F("last_digest_at").asc(nulls_first=True), "user_id")
                .values_list("user_id", flat=True)[:limit])


def track_token(*, user, item, source: str = "digest") -> str:
    return signing.dumps({"u": user.pk, "i": item.pk, "s": source}, salt=TRACK_SALT, compress=True)


def track_read(token: str) -> dict:
    return signing.loads(token, salt=TRACK_SALT, max_age=TRACK_MAX_AGE)


def unsubscribe_token(*, user, tenant) -> str:
    return signing.dumps({"u": user.pk, "t": tenant.pk}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_read(token: str) -> dict:
    return signing.loads(token, salt=UNSUBSCRIBE_SALT)


def digest_send(*, tenant, user, now: datetime | None = None) -> bool:
    """Send the learner's digest if it is due and has something in it; returns whether a message went out.

    Call in the tenant's scope and transaction (the task does): the "last sent" mark commits with the decision.
    A learner who erased their account, was switched off or left the storefront since the beat listed them gets
    nothing, and nothing is written about them. A due digest with nothing in it is not sent but still marked: the
    learner is next due a period later instead of taking a place in every hourly batch. It is written in the
    learner's language (``accounts.selectors.email_language``).
    """
    now = now or timezone.now()
    if not recipients().filter(user=user).exists():
        return False
    preference, _created = LearnerPreference.objects.select_for_update().get_or_create(
        user=user, defaults={"tenant": tenant})
    period = PERIODS.get(preference.digest)
    if period is None or quiet_now(now) or (
            preference.last_digest_at and preference.last_digest_at > now - period + SLACK):
        return False
    since = preference.last_digest_at or now - period
    owned = owned_item_ids(user)
    new = [item for item in items_on_sale().filter(published_at__gt=since).order_by("-published_at")[:6]
           if item.pk not in owned][:3]
    picks = [item for item in recommended_for(user=user, n=8).items if item not in new][:5]
    if not new and not picks:
        # Checked, with nothing to say: that is this period's digest, and the next one counts new items from now.
        preference.last_digest_at = now
        preference.save(update_fields=["last_digest_at"])
        return False
    with translation.override(email_language(user=user, tenant=tenant)):
        unsubscribe = tenant.url(reverse("recommender:unsubscribe", args=[unsubscribe_token(user=user,
                                                                                            tenant=tenant)]))

        def link(item):
            return tenant.url(reverse("recommender:track", args=[track_token(user=user, item=item)]))

        context = {"tenant": tenant, "user": user, "new": [(i, link(i)) for i in new],
                   "picks": [(i, link(i)) for i in picks], "unsubscribe": unsubscribe,
                   "settings_url": tenant.url(reverse("recommender:preferences"))}
        message = EmailMultiAlternatives(
            subject=render_to_string("recommender/email/digest_subject.txt", context).strip(),
            body=render_to_string("recommender/email/digest_message.txt", context),
            to=[user.email], from_email=from_address(tenant),
            # RFC 8058: mail clients offer their own unsubscribe button, which POSTs to the link.
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )
        message.attach_alternative(render_to_string("recommender/email/digest_message.html", context), "text/html")
        message.send()
    preference.last_digest_at = now
    preference.save(update_fields=["last_digest_at"])
    return True
