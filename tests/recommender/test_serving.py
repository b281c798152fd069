"""What the storefront serves from a run's precomputed rows: the learner's picks and an item's neighbours, always
items on sale, and never fewer than the rows hold."""

from datetime import date

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from marketplace.tenancy import tenant_phase
from recommender.models import FitRun, Recommendation, SimilarItems
from recommender.selectors import item_neighbours, popular_ids, recommended_for
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def serving_run(tenant, *, popular=()) -> FitRun:
    with scopes_disabled():
        return FitRun.objects.create(tenant=tenant, run_date=date(2026, 1, 1), status=FitRun.Status.SUCCEEDED,
                                     started_at=timezone.now(), finished_at=timezone.now(), served=True,
                                     winner="itemknn", popular=[i.pk for i in popular])


def picks_row(tenant, run, user, items) -> Recommendation:
    with scopes_disabled():
        return Recommendation.objects.create(tenant=tenant, run=run, user=user, items={
            "ids": [i.pk for i in items], "scores": [1.0] * len(items), "why": "-" * len(items),
            "refs": [-1] * len(items)})


def test_personal_picks_after_a_head_of_items_gone_off_sale_are_still_served(tenant_a):
    learner = member(tenant_a)
    gone = [catalog_item(tenant_a, title=f"Gone {n}") for n in range(8)]
    mine = [catalog_item(tenant_a, title=f"Mine {n}") for n in range(4)]
    picks_row(tenant_a, serving_run(tenant_a), learner, gone + mine)
    with scopes_disabled():
        type(gone[0]).objects.filter(pk__in=[i.pk for i in gone]).update(status="archived")
    with tenant_phase(tenant_a):
        picks = recommended_for(user=learner, n=4)
    assert picks.personalised and [i.pk for i in picks.items] == [i.pk for i in mine]


def test_picks_all_bought_since_the_run_are_popular_ones_not_personal(tenant_a):
    learner = member(tenant_a)
    bought = [catalog_item(tenant_a, title=f"Bought {n}") for n in range(2)]
    popular = [catalog_item(tenant_a, title=f"Popular {n}") for n in range(3)]
    picks_row(tenant_a, serving_run(tenant_a, popular=bought + popular), learner, bought)
    for item in bought:
        grant(tenant_a, learner, item=item)
    with tenant_phase(tenant_a):
        picks = recommended_for(user=learner, n=3)
    assert [i.pk for i in picks.items] == [i.pk for i in popular] and not picks.personalised


def test_learners_also_bought_after_a_head_of_unpublished_neighbours_is_still_shown(tenant_a):
    item = catalog_item(tenant_a, title="Item")
    drafts = [catalog_item(tenant_a, title=f"Draft {n}", published=False) for n in range(12)]
    on_sale = [catalog_item(tenant_a, title=f"Live {n}") for n in range(3)]
    with scopes_disabled():
        SimilarItems.objects.create(tenant=tenant_a, run=serving_run(tenant_a), item=item,
                                    also_bought=[[i.pk, 0.9] for i in drafts] + [[i.pk, 0.5] for i in on_sale])
    with tenant_phase(tenant_a):
        neighbours = item_neighbours(item=item, user=member(tenant_a), n=6)
    assert [i.pk for i in neighbours.also_bought] == [i.pk for i in on_sale]


def test_editorial_picks_take_every_third_slot_of_the_popular_ones(tenant_a):
    """docs/recommender.md, Cold start: editorial picks (featured items) take every third slot, so a new storefront's
    own choices are seen beside the popular ones: slots 3, 6 and 9, not one in four. A featured item that is also
    popular is not listed twice."""
    popular = [catalog_item(tenant_a, title=f"Popular {n}") for n in range(8)]
    editorial = [catalog_item(tenant_a, title=f"Editorial {n}", is_featured=True) for n in range(3)]
    with scopes_disabled():
        for rank, item in enumerate(popular + editorial[:1]):
            type(item).objects.filter(pk=item.pk).update(learner_count=100 - rank)
    with tenant_phase(tenant_a):
        ids = popular_ids()
    assert len(ids) == len(set(ids)) == 11
    assert sorted(ids.index(item.pk) for item in editorial) == [2, 5, 8], ids
    assert [pk for pk in ids if pk not in {item.pk for item in editorial}] == [item.pk for item in popular]
