"""What learners do, what the nightly fit learned from it, and what the storefront serves.

``Event`` is the append-only behaviour store (deduplicated by ``event_id``); old raw events are folded into
``EventRollup`` by the retention job. A ``FitRun`` is one nightly fit of one storefront (unique per date): it keeps
every candidate model's holdout metrics and parameters, the winner, and whether the winner replaced the serving
model. The serving rows (``Recommendation`` per learner, ``SimilarItems`` per item, ``Persona`` per segment) belong
to a run, so a new run's rows are written beside the old ones and take over in one commit; serving is one indexed
read of the serving run's row.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned


class EventKind(models.TextChoices):
    VIEW = "view", _("View")
    PREVIEW = "preview", _("Preview")
    PURCHASE = "purchase", _("Purchase")
    PROGRESS = "progress", _("Progress")
    COMPLETE = "complete", _("Complete")
    RATE = "rate", _("Rating")
    SHARE = "share", _("Share")
    # Feedback on recommendations themselves: they measure experiments and digests, and weigh nothing in the fit.
    IMPRESSION = "impression", _("Impression")
    CLICK = "click", _("Click")


class EventSource(models.TextChoices):
    STOREFRONT = "storefront", _("Storefront")
    API = "api", _("Partner API")
    CHANNEL = "channel", _("Distribution channel")
    DIGEST = "digest", _("Digest email")


class Event(TenantOwned):
    """One thing a learner did with an item. Never updated; deleted only by retention (after a rollup) or erasure."""

    event_id = models.UUIDField(_("event ID"), default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("item"))
    kind = models.CharField(_("kind"), max_length=12, choices=EventKind.choices)
    source = models.CharField(_("source"), max_length=12, choices=EventSource.choices, default=EventSource.STOREFRONT)
    # A rating's stars, a progress percentage; empty for the other kinds.
    value = models.FloatField(_("stars or percent"), null=True, blank=True)
    # Where it happened: {"placement": "home", "experiment": 3, "arm": "b"} for recommendation feedback.
    context = models.JSONField(_("context"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=False)

    class Meta:
        verbose_name = _("behaviour event")
        verbose_name_plural = _("behaviour events")
        constraints = [models.UniqueConstraint(fields=["tenant", "event_id"], name="event_id_per_tenant")]
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="event_scan"),
            models.Index(fields=["tenant", "user", "-occurred_at"], name="event_by_user"),
        ]

    def __str__(self) -> str:
        return gettext("%(kind)s “%(item)s” by %(learner)s") % {
            "kind": self.get_kind_display(), "item": self.item.title, "learner": self.user}


class EventRollup(TenantOwned):
    """Raw events older than the retention period, folded per (learner, item, kind): what the fit still needs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("item"))
    kind = models.CharField(_("kind"), max_length=12, choices=EventKind.choices)
    count = models.PositiveIntegerField(_("count"), default=0)
    # The latest value (a rating, a percentage).
    value = models.FloatField(_("latest stars or percent"), null=True, blank=True)
    last_at = models.DateTimeField(_("last occurred at"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user", "item", "kind"], name="rollup_unique")]


class LearnerPreference(TenantOwned):
    """A learner's say over personalisation and the digest on one storefront, and the goal they learn towards."""

    class Digest(models.TextChoices):
        OFF = "off", _("Never")
        WEEKLY = "weekly", _("Weekly")
        DAILY = "daily", _("Daily")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    personalised = models.BooleanField(
        _("personalised recommendations"), default=True,
        help_text=_("Off: you see popular and editorial picks, and what you do is not used to recommend."))
    digest = models.CharField(_("recommendation digest"), max_length=8, choices=Digest.choices,
                              default=Digest.WEEKLY)
    last_digest_at = models.DateTimeField(_("last digest sent at"), null=True, blank=True, editable=False)
    goal_category = models.ForeignKey("catalog.Category", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+", verbose_name=_("goal: a subject"))
    goal_path = models.ForeignKey("catalog.LearningPath", on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+", verbose_name=_("goal: a learning path"))

    class Meta:
        verbose_name = _("learner preference")
        verbose_name_plural = _("learner preferences")
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="preference_per_learner")]


class FitRun(TenantOwned):
    """One nightly fit of one storefront. The unique date makes re-running a no-op and two beats one fit."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        # A context of their own: a payment's "Succeeded" and "Failed" say more (支付成功) than a fit's.
        SUCCEEDED = "succeeded", pgettext_lazy("recommender run", "Succeeded")
        FAILED = "failed", pgettext_lazy("recommender run", "Failed")

    run_date = models.DateField(_("date"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    learners = models.PositiveIntegerField(_("learners"), default=0)
    items = models.PositiveIntegerField(_("items"), default=0)
    interactions = models.PositiveIntegerField(_("interactions"), default=0)
    # [{"model", "params", "ndcg@10", "recall@20", "coverage@10", "popularity_bias", "fit_s"}, ...] on the holdout.
    results = models.JSONField(_("holdout results"), default=list, blank=True)
    winner = models.CharField(_("best model"), max_length=20, blank=True)
    winner_params = models.JSONField(_("best model's parameters"), default=dict, blank=True)
    served = models.BooleanField(_("serving"), default=False,
                                 help_text=_("The best model beat the popularity baseline and replaced the "
                                             "serving one."))
    note = models.TextField(_("note"), blank=True)
    stages = models.JSONField(_("stage timings"), default=dict, blank=True)
    # Time-decayed popularity, overall and per category: the fallback for cold learners and opted-out ones.
    popular = models.JSONField(_("popular items"), default=list, blank=True)
    popular_by_category = models.JSONField(_("popular items by category"), default=dict, blank=True)

    class Meta:
        ordering = ["-run_date"]
        verbose_name = _("recommender run")
        verbose_name_plural = _("recommender runs")
        constraints = [models.UniqueConstraint(fields=["tenant", "run_date"], name="one_fit_per_day")]
        indexes = [models.Index(fields=["tenant", "served", "-run_date"], name="fitrun_serving")]

    def __str__(self) -> str:
        return f"{self.run_date} {self.get_status_display()}"

    def metric(self, model: str, name: str) -> float | None:
        row = next((r for r in self.results if r.get("model") == model), None)
        return row.get(name) if row else None


class Recommendation(TenantOwned):
    """A learner's precomputed top-N from one run and one strategy ("" is the run's winner).

    ``items`` is columnar, best first: ``{"ids": [item_id, ...], "scores": [...], "why": "vvc...", "refs": [...]}``;
    ``why`` has one letter per pick ("-" no reason, "f" finished, "b" bought, "v" viewed: ``refs`` holds that item;
    "c" popular in a category: ``refs`` holds the category). Columns keep a 100,000-learner run quick to write.
    """

    run = models.ForeignKey(FitRun, on_delete=models.CASCADE, related_name="+", verbose_name=_("recommender run"))
    strategy = models.CharField(_("strategy"), max_length=20, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("learner"))
    items = models.JSONField(_("recommended items"), default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "strategy", "user"], name="recommendation_unique")]

    @property
    def item_ids(self) -> list[int]:
        return list(self.items.get("ids", []))

    def reasons(self) -> dict[int, tuple[str, int]]:
        """item id -> (reason letter, ref) for the picks that have a reason."""
        return {pk: (code, ref) for pk, code, ref in zip(self.items.get("ids", []), self.items.get("why", ""),
                                                         self.items.get("refs", []), strict=False) if code != "-"}


class SimilarItems(TenantOwned):
    """An item's neighbours from one run: learned from behaviour ("learners also bought") and from content."""

    run = models.ForeignKey(FitRun, on_delete=models.CASCADE, related_name="+", verbose_name=_("recommender run"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("item"))
    also_bought = models.JSONField(_("learners also bought"), default=list)  # [[item_id, score], ...]
    similar = models.JSONField(_("similar content"), default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="similar_items_unique")]


class Persona(TenantOwned):
    """A segment of learners found by K-Means over their behaviour, named after what sets it apart."""

    run = models.ForeignKey(FitRun, on_delete=models.CASCADE, related_name="personas",
                            verbose_name=_("recommender run"))
    number = models.PositiveSmallIntegerField(_("persona number"))
    name = models.CharField(_("name"), max_length=200)
    size = models.PositiveIntegerField(_("learners"))
    features = models.JSONField(_("centre"), default=dict)
    top_items = models.JSONField(_("top items"), default=list)  # [item_id, ...]

    class Meta:
        ordering = ["-size"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")

    def __str__(self) -> str:
        return self.name


ARM_NAME = re.compile(r"[\w-]{1,20}")
MAX_ARM_WEIGHT = 1_000_000


def validate_arms(value) -> None:
    """Arms as the storefront uses them: a name that fits in a pick's ``?rec=`` reference ("home.3.b") and an
    event's context, a known strategy, and a whole-number weight small enough to add up and split exactly."""
    from .strategies import STRATEGIES

    if not isinstance(value, list) or len(value) < 2:
        raise ValidationError(_("An experiment needs at least two arms."))
    names = set()
    for arm in value:
        if not isinstance(arm, dict) or set(arm) != {"name", "strategy", "weight"}:
            raise ValidationError(_('Each arm is {"name": ..., "strategy": ..., "weight": ...}.'))
        if not isinstance(arm["name"], str) or not ARM_NAME.fullmatch(arm["name"]):
            raise ValidationError(_("An arm's name is 1 to 20 letters, digits, “-” or “_”."))
        if not isinstance(arm["strategy"], str) or arm["strategy"] not in STRATEGIES:
            raise ValidationError(_("Unknown strategy “%(s)s”; choose from %(all)s."),
                                  params={"s": str(arm["strategy"])[:40], "all": ", ".join(STRATEGIES)})
        weight = arm["weight"]
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            raise ValidationError(_("An arm's weight is a positive whole number."))
        if weight > MAX_ARM_WEIGHT:
            raise ValidationError(_("An arm's weight is at most %(max)s."), params={"max": f"{MAX_ARM_WEIGHT:,}"})
        if arm["name"] in names:
            raise ValidationError(_("Arm names must differ."))
        names.add(arm["name"])


class Experiment(TenantOwned):
    """An A/B test of recommendation strategies on "Recommended for you": learners are split by a hash of their id,
    so each keeps their arm for the whole experiment."""

    name = models.CharField(_("name"), max_length=120)
    arms = models.JSONField(
        _("arms"), validators=[validate_arms],
        default=list,
        help_text=_('For example [{"name": "a", "strategy": "model", "weight": 50}, '
                    '{"name": "b", "strategy": "popularity", "weight": 50}].'))
    is_active = models.BooleanField(_("running"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("A/B test")
        verbose_name_plural = _("A/B tests")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Arms are fixed once learners have been shown them: a learner's arm is a hash over the arms, so new names
        or weights would move learners between arms mid-test and mix their results. A new test starts afresh."""
        if self.pk is None:
            return
        stored = Experiment.objects.filter(pk=self.pk).values_list("arms", flat=True).first()
        if stored != self.arms and Event.objects.filter(kind=EventKind.IMPRESSION,
                                                        context__experiment=self.pk).exists():
            raise ValidationError({"arms": _("Learners have seen these arms: they cannot change now. Stop this A/B "
                                             "test and start a new one to try other arms.")})
