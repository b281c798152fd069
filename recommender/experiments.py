"""A/B tests of recommendation strategies: deterministic arms, and what each arm did.

A learner's arm is a hash of (experiment, learner) into the arms' weights, so it never changes while the experiment
runs and needs no stored assignment. The storefront records an impression each time it shows an arm's picks and a
click when a pick is opened; conversions are learners who bought after their first impression. Rates carry 95 %
Wilson intervals, which stay sensible with few learners.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from django.db.models import Count, Min
from django.db.models.fields.json import KT

from .models import Event, EventKind, Experiment


def experiment_active() -> Experiment | None:
    return Experiment.objects.filter(is_active=True).order_by("-created_at").first()


def arm_for(experiment: Experiment, user) -> dict:
    """The learner's arm. Whole-number arithmetic, so no weight (validated or stored before validation) overflows."""
    digest = hashlib.sha256(f"{experiment.pk}:{user.pk}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") * sum(arm["weight"] for arm in experiment.arms) >> 64
    for arm in experiment.arms:
        point -= arm["weight"]
        if point < 0:
            return arm
    return experiment.arms[-1]


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class ArmResult:
    name: str
    strategy: str
    learners: int
    impressions: int
    clicks: int
    buyers: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def ctr_interval(self) -> tuple[float, float]:
        return wilson(self.clicks, self.impressions)

    @property
    def conversion(self) -> float:
        return self.buyers / self.learners if self.learners else 0.0

    @property
    def conversion_interval(self) -> tuple[float, float]:
        return wilson(self.buyers, self.learners)


def experiment_results(*, experiment: Experiment) -> list[ArmResult]:
    """Per arm: learners shown its picks, impressions, clicks on picks, and learners who bought afterwards."""
    feedback = Event.objects.filter(context__experiment=experiment.pk)
    impressions = _count_per_arm(feedback.filter(kind=EventKind.IMPRESSION))
    clicks = _count_per_arm(feedback.filter(kind=EventKind.CLICK))
    first_seen = dict(feedback.filter(kind=EventKind.IMPRESSION).values("user")
                      .annotate(at=Min("occurred_at")).values_list("user", "at"))
    arm_of = {user: arm["name"] for user in first_seen
              for arm in [arm_for(experiment, _UserKey(user))]}
    purchases = Event.objects.filter(kind=EventKind.PURCHASE, user__in=list(first_seen)).values_list(
        "user", "occurred_at")
    buyers: dict[str, set[int]] = {}
    for user, at in purchases:
        if at >= first_seen[user]:
            buyers.setdefault(arm_of[user], set()).add(user)
    learners: dict[str, int] = {}
    for arm_name in arm_of.values():
        learners[arm_name] = learners.get(arm_name, 0) + 1
    return [ArmResult(name=arm["name"], strategy=arm["strategy"], learners=learners.get(arm["name"], 0),
                      impressions=impressions.get(arm["name"], 0), clicks=clicks.get(arm["name"], 0),
                      buyers=len(buyers.get(arm["name"], ()))) for arm in experiment.arms]


def _count_per_arm(events) -> dict[str, int]:
    return {row["arm"]: row["n"] for row in events.values(arm=KT("context__arm")).annotate(n=Count("id"))}


@dataclass
class _UserKey:
    pk: int
