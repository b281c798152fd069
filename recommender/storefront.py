"""What the catalog's storefront views call: the recommender's reads and the events they record, in one place."""

from __future__ import annotations

from .events import event_record
from .experiments import arm_for, experiment_active
from .forms import GoalForm
from .models import EventKind
from .paths import path_plan
from .selectors import Picks, item_neighbours, personalised, preference_for, recommended_for

__all__ = ["GoalForm", "EventKind", "event_record", "item_neighbours", "item_viewed", "path_plan", "picks_shown",
           "preference_for", "recommended_for"]


def picks_shown(*, user, picks: Picks, placement: str) -> None:
    """Count an impression of an experiment arm's picks (outside experiments nothing is recorded)."""
    picks.ref = placement if picks.experiment is None else f"{placement}.{picks.experiment}.{picks.arm}"
    if picks.experiment is not None and picks.items:
        event_record(user=user, item=picks.items[0], kind=EventKind.IMPRESSION,
                     context={"placement": placement, "experiment": picks.experiment, "arm": picks.arm,
                              "items": [item.pk for item in picks.items]})


def item_viewed(*, user, item, ref: str = "") -> None:
    """A signed-in learner opened an item page; ``ref`` ("home" or "home.<experiment>.<arm>") marks a click on a
    recommendation, counted for its experiment arm when the arm is still the learner's."""
    event_record(user=user, item=item, kind=EventKind.VIEW)
    if not ref:
        return
    placement, _sep, rest = ref.partition(".")
    context: dict = {"placement": placement[:20]}
    experiment = experiment_active() if personalised(user) else None
    if rest and experiment is not None:
        experiment_id, _sep, arm = rest.partition(".")
        if experiment_id == str(experiment.pk) and arm_for(experiment, user)["name"] == arm:
            context.update(experiment=experiment.pk, arm=arm)
    event_record(user=user, item=item, kind=EventKind.CLICK, context=context)
