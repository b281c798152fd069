"""A/B tests of recommendation strategies: stable arms, honest intervals, valid arms, and what each arm did."""

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope

from recommender.experiments import arm_for, experiment_results, wilson
from recommender.models import Event, Experiment
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db

TWO_ARMS = [{"name": "a", "strategy": "model", "weight": 50}, {"name": "b", "strategy": "popularity", "weight": 50}]


@dataclass
class Someone:
    pk: int


# --- arms ------------------------------------------------------------------------------------------------------------

def test_a_learner_keeps_their_arm():
    experiment = Experiment(pk=7, arms=TWO_ARMS)
    first = [arm_for(experiment, Someone(pk))["name"] for pk in range(1, 201)]
    again = [arm_for(Experiment(pk=7, arms=[dict(arm) for arm in TWO_ARMS]), Someone(pk))["name"]
             for pk in range(1, 201)]
    assert first == again
    assert set(first) == {"a", "b"}


@pytest.mark.parametrize("weights", [(50, 50), (70, 30), (1, 3), (60, 30, 10)])
def test_arms_split_learners_roughly_by_weight(weights):
    arms = [{"name": f"arm{n}", "strategy": "model", "weight": w} for n, w in enumerate(weights)]
    experiment = Experiment(pk=3, arms=arms)
    counts = Counter(arm_for(experiment, Someone(pk))["name"] for pk in range(1, 2001))
    assert sum(counts.values()) == 2000
    for arm in arms:
        share = counts[arm["name"]] / 2000
        # Four standard deviations of a binomial share over 2,000 learners is under 0.045.
        assert abs(share - arm["weight"] / sum(weights)) < 0.045, (arm, counts)


def test_each_experiment_splits_learners_afresh():
    one = [arm_for(Experiment(pk=1, arms=TWO_ARMS), Someone(pk))["name"] for pk in range(1, 2001)]
    two = [arm_for(Experiment(pk=2, arms=TWO_ARMS), Someone(pk))["name"] for pk in range(1, 2001)]
    agree = sum(a == b for a, b in zip(one, two, strict=True)) / 2000
    assert 0.45 < agree < 0.55  # independent halves agree about half the time


# --- intervals -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("successes, trials, expected", [
    (5, 10, (0.2366, 0.7634)),
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (1, 100, (0.0018, 0.0545)),
    (30, 200, (0.1071, 0.2061)),
])
def test_wilson_interval_matches_hand_computed_values(successes, trials, expected):
    low, high = wilson(successes, trials)
    assert (round(low, 4), round(high, 4)) == pytest.approx(expected, abs=1e-9)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_wilson_interval_of_nothing_is_zero():
    assert wilson(0, 0) == (0.0, 0.0)


# --- validation ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arms, message", [
    ([{"name": "a", "strategy": "model", "weight": 50}, {"name": "b", "strategy": "magic", "weight": 50}],
     "Unknown strategy"),
    ([{"name": "a", "strategy": "model", "weight": 50}, {"name": "a", "strategy": "popularity", "weight": 50}],
     "Arm names must differ."),
    ([{"name": "a", "strategy": "model", "weight": 0}, {"name": "b", "strategy": "popularity", "weight": 50}],
     "positive whole number"),
    ([{"name": "a", "strategy": "model", "weight": -5}, {"name": "b", "strategy": "popularity", "weight": 50}],
     "positive whole number"),
    ([{"name": "a", "strategy": "model", "weight": 0.5}, {"name": "b", "strategy": "popularity", "weight": 50}],
     "positive whole number"),
    ([{"name": "a", "strategy": "model", "weight": 100}], "at least two arms"),
    ([], "cannot be blank"),
    ([{"name": "a", "strategy": "model"}, {"name": "b", "strategy": "popularity", "weight": 50}],
     "Each arm is"),
    ([{"name": "a", "strategy": "model", "weight": 1, "note": "x"}, {"name": "b", "strategy": "popularity",
                                                                    "weight": 50}], "Each arm is"),
    ([{"name": "a", "strategy": "model", "weight": True}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "positive whole number"),
    ([{"name": "a", "strategy": "model", "weight": 10 ** 400}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "at most 1,000,000"),
    ([{"name": ["a"], "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "An arm's name"),
    ([{"name": {"x": 1}, "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "An arm's name"),
    ([{"name": "a.b", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "An arm's name"),
    ([{"name": "a\x00", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "An arm's name"),
    ([{"name": "", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "An arm's name"),
    ([{"name": "a", "strategy": ["model"], "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}],
     "Unknown strategy"),
])
def test_invalid_arms_are_refused(tenant_a, arms, message):
    with scope(tenant=tenant_a):
        experiment = Experiment(tenant=tenant_a, name="Test", arms=arms)
        with pytest.raises(ValidationError) as refused:
            experiment.full_clean()
    assert "arms" in refused.value.message_dict
    assert message in " ".join(refused.value.message_dict["arms"])


def test_valid_arms_pass(tenant_a):
    with scope(tenant=tenant_a):
        Experiment(tenant=tenant_a, name="Test", arms=TWO_ARMS + [
            {"name": "c", "strategy": "ease", "weight": 1}, {"name": "对照-2", "strategy": "als",
                                                             "weight": 1_000_000}]).full_clean()


@pytest.mark.parametrize("arms", [
    '[{"name": ["a"], "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}]',
    '[{"name": "a\\u0000", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "popularity", "weight": 1}]',
    '[{"name": "a", "strategy": "model", "weight": 1e400}, {"name": "b", "strategy": "popularity", "weight": 1}]',
])
def test_the_ab_test_admin_answers_bad_arms_with_a_form_error(tenant_a, arms):
    from accounts.models import Role

    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    client.raise_request_exception = False
    response = client.post("/admin/recommender/experiment/add/", {"name": "Test", "arms": arms, "is_active": "on"})
    assert response.status_code == 200  # the form again, with the error
    assert "errorlist" in response.content.decode()
    with scope(tenant=tenant_a):
        assert not Experiment.objects.exists()


def test_weights_stored_before_they_were_bounded_still_split_learners(tenant_a):
    """Arms are assigned in whole numbers: a weight far beyond a float's range neither breaks the home page nor
    loses its share."""
    catalog_item(tenant_a, title="Course")
    with scope(tenant=tenant_a):
        experiment = Experiment.objects.create(tenant=tenant_a, name="Huge", arms=[
            {"name": "a", "strategy": "model", "weight": 10 ** 400},
            {"name": "b", "strategy": "popularity", "weight": 1}])
    assert {arm_for(experiment, Someone(pk))["name"] for pk in range(1, 201)} == {"a"}
    client = host_client("alpha.test", member(tenant_a))
    client.raise_request_exception = False
    assert client.get("/").status_code == 200


# --- results ---------------------------------------------------------------------------------------------------------

def test_results_count_impressions_clicks_and_buyers_per_arm(tenant_a):
    item = catalog_item(tenant_a, title="Item", price=1000)
    with scope(tenant=tenant_a):
        experiment = Experiment.objects.create(tenant=tenant_a, name="Model vs popular", arms=TWO_ARMS)
        other = Experiment.objects.create(tenant=tenant_a, name="Older", arms=TWO_ARMS, is_active=False)
    by_arm: dict[str, list] = {"a": [], "b": []}
    n = 0
    while min(len(v) for v in by_arm.values()) < 3:
        n += 1
        learner = member(tenant_a, email=f"learner{n}@example.com")
        by_arm[arm_for(experiment, learner)["name"]].append(learner)
    a1, a2, a3 = by_arm["a"][:3]
    b1, b2, b3 = by_arm["b"][:3]
    start = timezone.now() - timedelta(days=3)

    def event(user, kind, hours, **context):
        return Event(tenant=tenant_a, user=user, item=item, kind=kind, occurred_at=start + timedelta(hours=hours),
                     context=context)

    feedback = {"experiment": experiment.pk}
    rows = [
        # Arm a: three learners shown picks (a1 twice), two clicks, a1 buys afterwards.
        event(a1, "impression", 1, arm="a", **feedback), event(a1, "impression", 5, arm="a", **feedback),
        event(a2, "impression", 2, arm="a", **feedback), event(a3, "impression", 2, arm="a", **feedback),
        event(a1, "click", 6, arm="a", **feedback), event(a2, "click", 3, arm="a", **feedback),
        event(a1, "purchase", 7), event(a1, "purchase", 8),  # one buyer, however many purchases
        # a2 bought before ever seeing the picks: not a conversion of the experiment.
        event(a2, "purchase", 1),
        # Arm b: two learners shown picks, one click; b1 buys afterwards, b2 never.
        event(b1, "impression", 1, arm="b", **feedback), event(b2, "impression", 1, arm="b", **feedback),
        event(b1, "click", 2, arm="b", **feedback), event(b1, "purchase", 30),
        # b3 bought but never saw the experiment's picks.
        event(b3, "purchase", 10),
        # Another experiment's feedback and plain clicks count for nothing here.
        event(b3, "impression", 1, experiment=other.pk, arm="b"), event(b3, "click", 2, experiment=other.pk, arm="b"),
        event(a3, "click", 3, placement="home"),
    ]
    with scope(tenant=tenant_a):
        Event.objects.bulk_create(rows)
        results = {r.name: r for r in experiment_results(experiment=experiment)}
    assert list(results) == ["a", "b"]
    a, b = results["a"], results["b"]
    assert (a.strategy, a.learners, a.impressions, a.clicks, a.buyers) == ("model", 3, 4, 2, 1)
    assert (b.strategy, b.learners, b.impressions, b.clicks, b.buyers) == ("popularity", 2, 2, 1, 1)
    assert a.ctr == pytest.approx(0.5) and b.ctr == pytest.approx(0.5)
    assert a.conversion == pytest.approx(1 / 3) and b.conversion == pytest.approx(0.5)
    assert a.conversion_interval == wilson(1, 3)


def test_results_of_an_experiment_nobody_saw_are_zero(tenant_a):
    with scope(tenant=tenant_a):
        experiment = Experiment.objects.create(tenant=tenant_a, name="Quiet", arms=TWO_ARMS)
        results = experiment_results(experiment=experiment)
    assert [(r.name, r.learners, r.impressions, r.clicks, r.buyers, r.ctr, r.conversion) for r in results] == [
        ("a", 0, 0, 0, 0, 0.0, 0.0), ("b", 0, 0, 0, 0, 0.0, 0.0)]


# --- on the storefront -----------------------------------------------------------------------------------------------

@pytest.fixture
def running(tenant_a):
    items = [catalog_item(tenant_a, title=f"Course {n}", price=1000 * (n + 1)) for n in range(4)]
    with scope(tenant=tenant_a):
        experiment = Experiment.objects.create(tenant=tenant_a, name="Model vs popular", arms=[
            {"name": "model", "strategy": "model", "weight": 50},
            {"name": "popularity", "strategy": "popularity", "weight": 50}])
    return experiment, items


def feedback_of(tenant, user, kind):
    with scope(tenant=tenant):
        return list(Event.objects.filter(user=user, kind=kind).order_by("id").values_list("item_id", "context"))


def test_the_home_page_records_an_impression_of_the_learners_arm_and_a_click_on_a_pick(tenant_a, running):
    experiment, items = running
    learner = member(tenant_a)
    arm = arm_for(experiment, learner)["name"]
    client = host_client("alpha.test", learner)

    page = client.get("/").content.decode()
    assert "Recommended for you" in page
    impressions = feedback_of(tenant_a, learner, "impression")
    assert len(impressions) == 1
    _item, context = impressions[0]
    assert (context["placement"], context["experiment"], context["arm"]) == ("home", experiment.pk, arm)
    assert set(context["items"]) <= {item.pk for item in items} and context["items"]

    ref = f"home.{experiment.pk}.{arm}"
    links = re.findall(r'href="(/item/[^"?]+/)\?rec=([^"]+)"', page)
    assert links and {rec for _url, rec in links} == {ref}
    url, _rec = links[0]
    assert client.get(f"{url}?rec={ref}").status_code == 200
    clicks = feedback_of(tenant_a, learner, "click")
    assert clicks == [(next(item.pk for item in items if url == f"/item/{item.slug}/"),
                       {"placement": "home", "experiment": experiment.pk, "arm": arm})]
    # The click is also a plain view of the item.
    assert len(feedback_of(tenant_a, learner, "view")) == 1

    with scope(tenant=tenant_a):
        results = {r.name: r for r in experiment_results(experiment=experiment)}
    assert (results[arm].impressions, results[arm].clicks, results[arm].learners) == (1, 1, 1)


def test_arms_learners_have_seen_cannot_change_but_the_test_can_stop(tenant_a, running):
    from accounts.models import Role

    experiment, _items = running
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    url = f"/admin/recommender/experiment/{experiment.pk}/change/"
    reweighted = json.dumps([{**experiment.arms[0], "weight": 90}, experiment.arms[1]])
    assert staff.post(url, {"name": "Renamed", "arms": reweighted, "is_active": "on"}).status_code == 302  # unseen
    host_client("alpha.test", member(tenant_a)).get("/")  # a learner is shown their arm's picks
    with scope(tenant=tenant_a):
        experiment.refresh_from_db()
        assert Event.objects.filter(kind="impression").exists()
    back = json.dumps([{**experiment.arms[0], "weight": 50}, experiment.arms[1]])
    refused = staff.post(url, {"name": "Renamed", "arms": back, "is_active": "on"})
    assert refused.status_code == 200 and "cannot change now" in refused.content.decode()
    stopped = staff.post(url, {"name": "Renamed", "arms": json.dumps(experiment.arms)})
    assert stopped.status_code == 302
    with scope(tenant=tenant_a):
        experiment.refresh_from_db()
        assert experiment.arms[0]["weight"] == 90 and not experiment.is_active


def test_both_arms_are_served_on_the_storefront(tenant_a, running):
    experiment, _items = running
    seen = set()
    n = 0
    while len(seen) < 2 and n < 40:
        n += 1
        learner = member(tenant_a, email=f"split{n}@example.com")
        host_client("alpha.test", learner).get("/")
        (_item, context), = feedback_of(tenant_a, learner, "impression")
        assert context["arm"] == arm_for(experiment, learner)["name"]
        seen.add(context["arm"])
    assert seen == {"model", "popularity"}


def test_a_forged_arm_is_not_attributed_to_the_experiment(tenant_a, running):
    experiment, items = running
    learner = member(tenant_a)
    arm = arm_for(experiment, learner)["name"]
    other_arm = "popularity" if arm == "model" else "model"
    client = host_client("alpha.test", learner)
    for forged in (f"home.{experiment.pk}.{other_arm}", f"home.{experiment.pk}.nonsense",
                   f"home.{experiment.pk + 1000}.{arm}"):
        assert client.get(f"/item/{items[0].slug}/", {"rec": forged}).status_code == 200
    clicks = feedback_of(tenant_a, learner, "click")
    assert [context for _item, context in clicks] == [{"placement": "home"}] * 3
    with scope(tenant=tenant_a):
        assert all(r.clicks == 0 for r in experiment_results(experiment=experiment))


def test_without_a_running_experiment_the_home_page_records_no_impression(tenant_a, running):
    experiment, items = running
    with scope(tenant=tenant_a):
        Experiment.objects.filter(pk=experiment.pk).update(is_active=False)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get("/").content.decode()
    assert "Recommended for you" in page and "?rec=home\"" in page
    assert feedback_of(tenant_a, learner, "impression") == []
    client.get(f"/item/{items[0].slug}/", {"rec": f"home.{experiment.pk}.model"})
    assert [context for _item, context in feedback_of(tenant_a, learner, "click")] == [{"placement": "home"}]


def test_a_learner_who_turned_personal_picks_off_takes_part_in_no_experiment(tenant_a, running):
    """They are shown popular picks whatever their arm: counting them in the model's arm would blur the comparison."""
    experiment, items = running
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.post("/recommendations/settings/", {"digest": "off"})  # "personalised" unticked
    page = client.get("/").content.decode()
    assert "?rec=home\"" in page and f"home.{experiment.pk}." not in page
    client.get(f"/item/{items[0].slug}/", {"rec": f"home.{experiment.pk}.{arm_for(experiment, learner)['name']}"})
    assert feedback_of(tenant_a, learner, "impression") == []
    assert [context for _item, context in feedback_of(tenant_a, learner, "click")] == [{"placement": "home"}]
    with scope(tenant=tenant_a):
        assert all(r.learners == r.impressions == r.clicks == 0 for r in experiment_results(experiment=experiment))
