"""What the recommender holds about a learner: in their data export, gone on erasure, and folded after retention."""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Membership, Role
from marketplace.tenancy import tenant_phase
from recommender.dataset import dataset_load
from recommender.models import Event, EventRollup, FitRun, LearnerPreference, Recommendation
from recommender.services import RETENTION_DAYS, events_compact
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def record(tenant, user, item, kind, days: float, value=None, **context) -> Event:
    with scopes_disabled():
        return Event.objects.create(tenant=tenant, user=user, item=item, kind=kind, value=value,
                                    occurred_at=days_ago(days), context=context)


def compact(tenant) -> int:
    with tenant_phase(tenant):
        return events_compact()


def rollups(tenant) -> dict:
    with scope(tenant=tenant):
        return {(r.user_id, r.item_id, r.kind): (r.count, r.value, r.last_at) for r in EventRollup.objects.all()}


# --- export and erasure ----------------------------------------------------------------------------------------------

@pytest.fixture
def learner(tenant_a, tenant_b):
    person = member(tenant_a, email="lin@example.com")
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_b, user=person, role=Role.LEARNER)
    return person


def storefront_entry(export: dict, slug: str) -> dict:
    return next(entry for entry in export["storefronts"] if entry["storefront"] == slug)


def test_the_data_export_holds_the_learners_events_and_preferences(tenant_a, tenant_b, learner):
    course = catalog_item(tenant_a, title="Statistics", price=2000)
    beta_course = catalog_item(tenant_b, title="Beta Course")
    someone_else = member(tenant_a)
    record(tenant_a, learner, course, "view", 3)
    record(tenant_a, learner, course, "rate", 1, value=4.0)
    record(tenant_a, someone_else, course, "view", 1)
    record(tenant_b, learner, beta_course, "preview", 2)
    with scopes_disabled():
        LearnerPreference.objects.create(tenant=tenant_a, user=learner, personalised=False, digest="daily")

    response = host_client("alpha.test", learner).get("/account/privacy/export/")
    assert response.status_code == 200
    export = json.loads(response.content)
    alpha = storefront_entry(export, "alpha")["recommender"]
    assert [(e["kind"], e["item"], e["value"], e["source"]) for e in alpha["events"]] == [
        ("view", "Statistics", None, "storefront"), ("rate", "Statistics", 4.0, "storefront")]
    assert all(e["occurred_at"] for e in alpha["events"])
    assert alpha["preferences"] == {"personalised": False, "digest": "daily", "goal": None}
    beta = storefront_entry(export, "beta")["recommender"]
    assert [(e["kind"], e["item"]) for e in beta["events"]] == [("preview", "Beta Course")]
    assert beta["preferences"] is None


def test_behaviour_folded_by_retention_is_still_in_the_export(tenant_a, tenant_b, learner):
    course = catalog_item(tenant_a, title="Statistics", price=2000)
    record(tenant_a, learner, course, "purchase", RETENTION_DAYS + 20)
    compact(tenant_a)
    export = json.loads(host_client("alpha.test", learner).get("/account/privacy/export/").content)
    alpha = storefront_entry(export, "alpha")["recommender"]
    assert "Statistics" in json.dumps(alpha)


def test_erasure_deletes_events_rollups_recommendations_and_preferences(tenant_a, tenant_b, learner):
    course = catalog_item(tenant_a, title="Statistics", price=2000)
    beta_course = catalog_item(tenant_b, title="Beta Course")
    someone_else = member(tenant_a)
    for person in (learner, someone_else):
        record(tenant_a, person, course, "view", 1)
        record(tenant_a, person, course, "complete", RETENTION_DAYS + 10)
    record(tenant_b, learner, beta_course, "view", 1)
    compact(tenant_a)
    with scopes_disabled():
        run = FitRun.objects.create(tenant=tenant_a, run_date=timezone.localdate(), started_at=timezone.now(),
                                    status=FitRun.Status.SUCCEEDED, served=True)
        for person in (learner, someone_else):
            Recommendation.objects.create(tenant=tenant_a, run=run, user=person, items=[[course.pk, 1.0, None, None]])
            LearnerPreference.objects.create(tenant=tenant_a, user=person, digest="daily")
        LearnerPreference.objects.create(tenant=tenant_b, user=learner)
        assert EventRollup.objects.filter(user=learner).exists()

    response = host_client("alpha.test", learner).post("/account/privacy/delete/",
                                                       {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 200
    with scopes_disabled():
        for model in (Event, EventRollup, Recommendation, LearnerPreference):
            assert not model.objects.filter(user=learner).exists(), model.__name__
            assert model.objects.filter(user=someone_else).exists(), model.__name__
        assert FitRun.objects.filter(pk=run.pk).exists()


# --- retention -------------------------------------------------------------------------------------------------------

def test_compaction_folds_old_events_into_rollups_and_keeps_recent_ones(tenant_a):
    one, two = catalog_item(tenant_a, title="One"), catalog_item(tenant_a, title="Two")
    ada, bo = member(tenant_a), member(tenant_a)
    old = RETENTION_DAYS + 1
    newest_view = record(tenant_a, ada, one, "view", old + 5)
    record(tenant_a, ada, one, "view", old + 40)
    record(tenant_a, ada, one, "view", old + 90)
    progress = record(tenant_a, ada, one, "progress", old + 10, value=50.0)
    record(tenant_a, ada, one, "progress", old + 20, value=20.0)
    bought = record(tenant_a, bo, two, "purchase", old)
    recent = [record(tenant_a, ada, one, "view", 2), record(tenant_a, bo, two, "complete", RETENTION_DAYS - 1),
              record(tenant_a, bo, one, "impression", 1, experiment=1, arm="a")]

    assert compact(tenant_a) == 6
    folded = rollups(tenant_a)
    assert set(folded) == {(ada.pk, one.pk, "view"), (ada.pk, one.pk, "progress"), (bo.pk, two.pk, "purchase")}
    count, _value, last_at = folded[(ada.pk, one.pk, "view")]
    assert (count, last_at) == (3, newest_view.occurred_at)
    count, value, last_at = folded[(ada.pk, one.pk, "progress")]
    assert (count, value, last_at) == (2, 50.0, progress.occurred_at)
    assert folded[(bo.pk, two.pk, "purchase")] == (1, None, bought.occurred_at)
    with scope(tenant=tenant_a):
        assert sorted(Event.objects.values_list("pk", flat=True)) == sorted(e.pk for e in recent)
        assert set(EventRollup.objects.values_list("tenant_id", flat=True)) == {tenant_a.pk}

    # A second run finds nothing more to fold.
    assert compact(tenant_a) == 0
    assert rollups(tenant_a) == folded
    with scope(tenant=tenant_a):
        assert Event.objects.count() == 3


def test_a_later_compaction_adds_to_the_existing_rollups(tenant_a):
    item = catalog_item(tenant_a, title="One")
    ada = member(tenant_a)
    first = record(tenant_a, ada, item, "view", RETENTION_DAYS + 30)
    assert compact(tenant_a) == 1
    # Time passes: a newer event ages past the retention period, and a late-arriving one older than the rollup.
    newer = record(tenant_a, ada, item, "view", RETENTION_DAYS + 10)
    record(tenant_a, ada, item, "view", RETENTION_DAYS + 60)
    assert compact(tenant_a) == 2
    assert rollups(tenant_a) == {(ada.pk, item.pk, "view"): (3, None, newer.occurred_at)}
    assert newer.occurred_at > first.occurred_at
    assert compact(tenant_a) == 0


def test_compaction_leaves_other_storefronts_alone(tenant_a, tenant_b):
    alpha_item, beta_item = catalog_item(tenant_a, title="A"), catalog_item(tenant_b, title="B")
    ada = member(tenant_a)
    record(tenant_a, ada, alpha_item, "view", RETENTION_DAYS + 5)
    record(tenant_b, ada, beta_item, "view", RETENTION_DAYS + 5)
    assert compact(tenant_a) == 1
    with scopes_disabled():
        assert list(Event.objects.values_list("tenant_id", flat=True)) == [tenant_b.pk]
        assert list(EventRollup.objects.values_list("tenant_id", flat=True)) == [tenant_a.pk]


def test_a_rollup_keeps_the_latest_rating(tenant_a):
    item = catalog_item(tenant_a, title="One")
    ada = member(tenant_a)
    record(tenant_a, ada, item, "rate", RETENTION_DAYS + 40, value=5.0)
    latest = record(tenant_a, ada, item, "rate", RETENTION_DAYS + 5, value=2.0)
    compact(tenant_a)
    assert rollups(tenant_a)[(ada.pk, item.pk, "rate")] == (2, 2.0, latest.occurred_at)


# --- the fit's matrix is the same after compaction -------------------------------------------------------------------

def matrix(tenant, now: float):
    with tenant_phase(tenant):
        dataset = dataset_load(tenant=tenant, now=now)

    def by_cell(m) -> dict:
        m = m.tocoo()
        return {(int(dataset.user_ids[r]), int(dataset.item_ids[c])): float(v)
                for r, c, v in zip(m.row, m.col, m.data, strict=True)}

    return dataset, by_cell(dataset.X), by_cell(dataset.T)


def assert_same_matrix(before, after):
    (data_before, cells_before, times_before), (data_after, cells_after, times_after) = before, after
    assert np.array_equal(data_before.user_ids, data_after.user_ids)
    assert np.array_equal(data_before.item_ids, data_after.item_ids)
    assert set(cells_before) == set(cells_after)
    for cell, weight in cells_before.items():
        assert cells_after[cell] == pytest.approx(weight, rel=1e-5), cell
    assert set(times_before) == set(times_after)
    for cell, at in times_before.items():
        assert times_after[cell] == pytest.approx(at, abs=1e-3), cell
    assert data_before.events == data_after.events


@pytest.fixture
def behaviour(tenant_a):
    """Learners' behaviour across the retention boundary; each (learner, item, kind) lies wholly on one side."""
    items = [catalog_item(tenant_a, title=f"Course {n}", price=1000 * n) for n in range(5)]
    people = [member(tenant_a) for _n in range(4)]
    old = RETENTION_DAYS + 3
    ada, bo, cy, di = people
    record(tenant_a, ada, items[0], "view", old + 50)
    record(tenant_a, ada, items[0], "view", old + 10)
    record(tenant_a, ada, items[0], "purchase", old + 9)
    record(tenant_a, ada, items[0], "complete", 20)
    record(tenant_a, ada, items[1], "rate", old, value=5.0)
    record(tenant_a, ada, items[2], "rate", old, value=1.0)  # one star alone weighs nothing: no cell
    record(tenant_a, bo, items[1], "preview", old + 100)
    record(tenant_a, bo, items[1], "progress", 3, value=40.0)
    record(tenant_a, bo, items[3], "share", old + 1)
    record(tenant_a, cy, items[3], "view", 1)
    record(tenant_a, cy, items[4], "purchase", old + 30)
    record(tenant_a, cy, items[4], "impression", old + 31, experiment=1, arm="a")  # weighs nothing, either side
    record(tenant_a, di, items[2], "click", old + 1)
    return items, people


def test_the_fit_sees_the_same_matrix_after_compaction(tenant_a, behaviour):
    now = timezone.now().timestamp()
    before = matrix(tenant_a, now)
    assert len(before[1]) == 6  # ada x {0, 1}, bo x {1, 3}, cy x {3, 4}; di only clicked; ada's one star is nothing
    assert compact(tenant_a) == 10
    after = matrix(tenant_a, now)
    assert_same_matrix(before, after)
    assert compact(tenant_a) == 0
    assert_same_matrix(before, matrix(tenant_a, now))


def test_the_fit_sees_the_same_matrix_when_a_kind_spans_the_retention_boundary(tenant_a):
    item = catalog_item(tenant_a, title="Course")
    ada = member(tenant_a)
    for days in (RETENTION_DAYS + 40, RETENTION_DAYS + 20, 30, 10):
        record(tenant_a, ada, item, "view", days)
    now = timezone.now().timestamp()
    before = matrix(tenant_a, now)
    assert compact(tenant_a) == 2
    assert_same_matrix(before, matrix(tenant_a, now))
