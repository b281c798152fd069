"""Personal learning paths: from a goal (a subject or an authored path) to an ordered list of what to learn next.

The plan is computed when it is shown, from the learner's current progress and ratings, so it re-plans by itself:

* candidates are the goal's items (an authored path's steps, or the subject's published items) plus every
  prerequisite they need that the learner has not finished, wherever it lives;
* finished items are skipped; so are items below the level the learner has shown in the goal (finished or rated
  four stars or more), unless a remaining item needs them;
* items much like one the learner rated one or two stars go to the end;
* the order respects prerequisites first; then an authored path's own order, or, for a subject, level (basics
  first), then what learners who took the learner's latest item went on to take (learned co-occurrence), then
  popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from catalog.models import LEVEL_ORDER, ContentItem, ItemProgress, PathStep, Review
from catalog.selectors import items_on_sale, with_card_data

from .models import LearnerPreference, SimilarItems
from .selectors import serving_runs


@dataclass
class PlanStep:
    item: ContentItem
    why: str  # "prerequisite", "path", "subject"


@dataclass
class Plan:
    goal: str
    steps: list[PlanStep]
    done: int


def path_plan(*, user, preference: LearnerPreference, limit: int = 10) -> Plan | None:
    """The learner's plan towards their goal, or None without one. A path the team unpublished after the learner
    chose it is no goal any more (``goal_set`` refuses an unpublished path; this keeps it refused afterwards)."""
    if preference.goal_path_id and preference.goal_path.is_published:
        steps = list(PathStep.objects.filter(path_id=preference.goal_path_id).order_by("position", "id")
                     .values_list("item_id", flat=True))
        goal, why = preference.goal_path.title, "path"
    elif preference.goal_category_id:
        steps = list(items_on_sale().filter(categories=preference.goal_category_id).values_list("pk", flat=True))
        goal, why = preference.goal_category.name, "subject"
    else:
        return None
    finished = set(ItemProgress.objects.filter(user=user, completed_at__isnull=False)
                   .values_list("item_id", flat=True))
    ratings = dict(Review.objects.filter(user=user).values_list("item_id", "rating"))

    # Close the candidates over unfinished prerequisites.
    prerequisites: dict[int, set[int]] = {}
    frontier, seen = list(steps), set(steps)
    through = ContentItem.prerequisites.through
    while frontier:
        pairs = list(through.objects.filter(from_contentitem__in=frontier).values_list(
            "from_contentitem_id", "to_contentitem_id"))
        frontier = []
        for item_id, needs in pairs:
            prerequisites.setdefault(item_id, set()).add(needs)
            if needs not in seen:
                seen.add(needs)
                frontier.append(needs)
    items = {item.pk: item for item in with_card_data(items_on_sale().filter(pk__in=seen)).prefetch_related(
        Prefetch("categories"))}
    goal_items = [pk for pk in steps if pk in items]
    shown_level = max((LEVEL_ORDER.get(items[pk].level, 0) for pk in goal_items
                       if pk in finished or ratings.get(pk, 0) >= 4), default=-1)
    # The goal's unfinished items at or above the level shown, then (transitively) their unfinished prerequisites.
    remaining = [pk for pk in goal_items if pk not in finished
                 and LEVEL_ORDER.get(items[pk].level, 0) >= shown_level]
    wanted, frontier = set(remaining), list(remaining)
    while frontier:
        for need in prerequisites.get(frontier.pop(), ()):
            if need in items and need not in finished and need not in wanted:
                wanted.add(need)
                frontier.append(need)
                remaining.append(need)
    disliked = {pk for pk, stars in ratings.items() if stars <= 2}
    demoted = _neighbours_of(disliked)
    follow = _follow_on(user, finished)
    authored = {pk: n for n, pk in enumerate(steps)}

    def rank(pk: int) -> tuple:
        item = items[pk]
        return (pk in demoted, authored.get(pk, -1) if why == "path" else LEVEL_ORDER.get(item.level, 0),
                -follow.get(pk, 0.0), -item.learner_count, pk)

    ordered = _topological(sorted(remaining, key=rank), prerequisites)
    plan_steps = [PlanStep(items[pk], "prerequisite" if pk not in goal_items else why) for pk in ordered]
    return Plan(goal=goal, steps=plan_steps[:limit], done=len([pk for pk in goal_items if pk in finished]))


def _topological(ordered: list[int], prerequisites: dict[int, set[int]]) -> list[int]:
    """Keep ``ordered``'s preference, pulling each item's unplaced prerequisites (in their own preferred order)
    forward to just before it. A cycle, which the catalog should not hold, is broken where it is met."""
    position = {pk: n for n, pk in enumerate(ordered)}
    out: list[int] = []
    placed: set[int] = set()

    def place(pk: int, visiting: frozenset[int]) -> None:
        if pk in placed or pk in visiting:
            return
        for need in sorted(prerequisites.get(pk, set()) & position.keys(), key=position.__getitem__):
            place(need, visiting | {pk})
        placed.add(pk)
        out.append(pk)

    for pk in ordered:
        place(pk, frozenset())
    return out


def _neighbours_of(item_ids: set[int]) -> set[int]:
    if not item_ids:
        return set()
    _serving, latest = serving_runs()
    if latest is None:
        return set()
    out = set()
    for similar in SimilarItems.objects.filter(run=latest, item_id__in=item_ids).values_list("similar", flat=True):
        out |= {pk for pk, score in similar[:5] if score >= 0.3}
    return out


def _follow_on(user, finished: set[int]) -> dict[int, float]:
    """What learners who took the learner's most recent item also took, with the learned strength."""
    latest = (ItemProgress.objects.filter(user=user).order_by("-updated_at").values_list("item_id", flat=True)
              .first())
    run, _latest = serving_runs()  # learned co-occurrence is written only for a run that serves
    if latest is None or run is None:
        return {}
    row = SimilarItems.objects.filter(run=run, item_id=latest).values_list("also_bought", flat=True).first()
    return {pk: score for pk, score in (row or [])}
