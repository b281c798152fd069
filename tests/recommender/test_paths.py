"""Personal learning paths: from a goal to an ordered plan that re-plans as the learner progresses."""

import re
from datetime import date

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from catalog.models import Category, ItemProgress, LearningPath, PathStep
from catalog.services import progress_record, review_save
from marketplace.errors import ApplicationError
from marketplace.tenancy import tenant_phase
from recommender.models import FitRun, LearnerPreference, SimilarItems
from recommender.paths import path_plan
from recommender.services import goal_set
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def subject(tenant, name: str) -> Category:
    with scopes_disabled():
        return Category.objects.create(tenant=tenant, name=name, slug=name.lower().replace(" ", "-"))


def course(tenant, title: str, level: str, *categories, needs=(), learners: int = 0, **fields):
    item = catalog_item(tenant, title=title, level=level, **fields)
    with scopes_disabled():
        item.categories.set(categories)
        item.prerequisites.set(needs)
        if learners:
            type(item).objects.filter(pk=item.pk).update(learner_count=learners)
    return item


def authored_path(tenant, title: str, items, *, published: bool = True) -> LearningPath:
    with scopes_disabled():
        path = LearningPath.objects.create(tenant=tenant, title=title, slug=title.lower().replace(" ", "-"),
                                           is_published=published)
        for position, item in items:
            PathStep.objects.create(tenant=tenant, path=path, item=item, position=position)
    return path


def set_goal(tenant, user, **goal) -> None:
    with tenant_phase(tenant):
        goal_set(user=user, **goal)


def plan_of(tenant, user) -> list[tuple[str, str]]:
    with tenant_phase(tenant):
        plan = path_plan(user=user, preference=LearnerPreference.objects.get(user=user))
        return [(step.item.title, step.why) for step in plan.steps]


def titles(steps) -> list[str]:
    return [title for title, _why in steps]


def complete(tenant, user, item) -> None:
    """Finish a free item the way the storefront does."""
    with tenant_phase(tenant):
        progress_record(user=user, item=item, completed=True)


def mark_completed(tenant, user, item) -> None:
    with scopes_disabled():
        ItemProgress.objects.create(tenant=tenant, user=user, item=item, percent=100, completed_at=timezone.now())


@pytest.fixture
def data_science(tenant_a):
    """A subject whose items span the levels, and a prerequisite filed under another subject."""
    data, maths = subject(tenant_a, "Data Science"), subject(tenant_a, "Mathematics")
    algebra = course(tenant_a, "Linear Algebra", "beginner", maths)
    course(tenant_a, "Calculus", "beginner", maths)  # in no goal, needed by nothing
    advanced = course(tenant_a, "Deep Learning", "advanced", data, needs=[algebra], learners=50)
    basics = course(tenant_a, "Data Basics", "beginner", data, learners=10)  # more popular than Linear Algebra
    middle = course(tenant_a, "Regression", "intermediate", data, needs=[basics])
    course(tenant_a, "Data Drafts", "beginner", data, published=False)  # not on sale: never planned
    return {"data": data, "maths": maths, "algebra": algebra, "advanced": advanced, "basics": basics,
            "middle": middle}


def test_no_goal_no_plan(tenant_a, data_science):
    learner = member(tenant_a)
    with tenant_phase(tenant_a):
        preference = goal_set(user=learner)
        assert path_plan(user=learner, preference=preference) is None


def test_a_subject_goal_plans_basics_to_advanced_with_outside_prerequisites_first(tenant_a, data_science):
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data_science["data"])
    steps = plan_of(tenant_a, learner)
    assert steps == [("Data Basics", "subject"), ("Linear Algebra", "prerequisite"), ("Regression", "subject"),
                     ("Deep Learning", "subject")]
    with tenant_phase(tenant_a):
        plan = path_plan(user=learner, preference=LearnerPreference.objects.get(user=learner))
    assert (plan.goal, plan.done) == ("Data Science", 0)


def test_a_prerequisite_above_the_next_level_still_comes_before_what_needs_it(tenant_a):
    data, maths = subject(tenant_a, "Data Science"), subject(tenant_a, "Mathematics")
    theory = course(tenant_a, "Measure Theory", "advanced", maths)
    course(tenant_a, "Data Basics", "beginner", data)
    course(tenant_a, "Probability", "intermediate", data, needs=[theory])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    steps = plan_of(tenant_a, learner)
    assert steps[0] == ("Data Basics", "subject")
    assert titles(steps).index("Measure Theory") < titles(steps).index("Probability")
    assert ("Measure Theory", "prerequisite") in steps


def test_waiting_for_a_prerequisite_does_not_put_advanced_before_intermediate(tenant_a):
    data, maths = subject(tenant_a, "Data Science"), subject(tenant_a, "Mathematics")
    theory = course(tenant_a, "Measure Theory", "advanced", maths)
    course(tenant_a, "Data Basics", "beginner", data)
    course(tenant_a, "Probability", "intermediate", data, needs=[theory])
    course(tenant_a, "Bayesian Deep Learning", "advanced", data, learners=10)
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    assert titles(plan_of(tenant_a, learner)) == ["Data Basics", "Measure Theory", "Probability",
                                                  "Bayesian Deep Learning"]


def test_finished_items_are_skipped(tenant_a, data_science):
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data_science["data"])
    mark_completed(tenant_a, learner, data_science["basics"])
    complete(tenant_a, learner, data_science["algebra"])
    steps = plan_of(tenant_a, learner)
    assert steps == [("Regression", "subject"), ("Deep Learning", "subject")]
    with tenant_phase(tenant_a):
        assert path_plan(user=learner, preference=LearnerPreference.objects.get(user=learner)).done == 1


def test_an_unfinished_item_is_not_skipped(tenant_a, data_science):
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data_science["data"])
    with tenant_phase(tenant_a):
        progress_record(user=learner, item=data_science["basics"], position_seconds=30)
    assert "Data Basics" in titles(plan_of(tenant_a, learner))


def test_the_plan_re_plans_when_the_learner_finishes_an_intermediate_item(tenant_a):
    data = subject(tenant_a, "Data Science")
    first = course(tenant_a, "Spreadsheets", "beginner", data, learners=10)
    needed = course(tenant_a, "SQL Basics", "beginner", data, learners=20)
    course(tenant_a, "Python Basics", "beginner", data, learners=30)
    middle = course(tenant_a, "Regression", "intermediate", data, needs=[first])
    course(tenant_a, "Pandas in Depth", "intermediate", data, learners=5)
    course(tenant_a, "Data Warehousing", "advanced", data, needs=[needed])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    # Level first, then the more popular within a level.
    assert titles(plan_of(tenant_a, learner)) == ["Python Basics", "SQL Basics", "Spreadsheets", "Pandas in Depth",
                                                  "Regression", "Data Warehousing"]

    complete(tenant_a, learner, middle)
    # The learner has shown the intermediate level: the beginner items nothing remaining needs are dropped, the
    # one the advanced item still needs stays, before it.
    assert plan_of(tenant_a, learner) == [("SQL Basics", "subject"), ("Pandas in Depth", "subject"),
                                          ("Data Warehousing", "subject")]


def test_a_prerequisite_of_a_finished_item_is_no_longer_planned(tenant_a):
    data, maths = subject(tenant_a, "Data Science"), subject(tenant_a, "Mathematics")
    algebra = course(tenant_a, "Linear Algebra", "beginner", maths)
    regression = course(tenant_a, "Regression", "intermediate", data, needs=[algebra])
    course(tenant_a, "Deep Learning", "advanced", data)
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    complete(tenant_a, learner, regression)  # finished without Linear Algebra
    assert plan_of(tenant_a, learner) == [("Deep Learning", "subject")]


def test_a_beginner_item_needed_only_by_a_dropped_item_is_dropped_too(tenant_a):
    data = subject(tenant_a, "Data Science")
    basics = course(tenant_a, "Data Basics", "beginner", data)
    course(tenant_a, "Regression", "intermediate", data, needs=[basics])
    advanced = course(tenant_a, "Deep Learning", "advanced", data)
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    complete(tenant_a, learner, advanced)
    # The advanced level is shown: Regression goes, and with it the only reason to keep Data Basics.
    assert plan_of(tenant_a, learner) == []


@pytest.mark.parametrize("stars, planned", [
    (4, ["Regression", "Deep Learning"]),
    (3, ["Data Basics", "Regression", "Deep Learning"]),
])
def test_rating_an_item_four_stars_or_more_shows_its_level(tenant_a, stars, planned):
    data = subject(tenant_a, "Data Science")
    course(tenant_a, "Data Basics", "beginner", data)
    middle = course(tenant_a, "Regression", "intermediate", data)
    course(tenant_a, "Deep Learning", "advanced", data)
    learner = member(tenant_a)
    set_goal(tenant_a, learner, category=data)
    with tenant_phase(tenant_a):
        review_save(user=learner, item=middle, rating=stars)
    # Rated, not finished: the item itself stays in the plan.
    assert titles(plan_of(tenant_a, learner)) == planned


def test_an_authored_path_keeps_its_order_with_prerequisites_moved_before(tenant_a):
    maths = subject(tenant_a, "Mathematics")
    algebra = course(tenant_a, "Linear Algebra", "beginner", maths)
    intro = course(tenant_a, "Tour of ML", "advanced")
    basics = course(tenant_a, "Python Basics", "beginner")
    models = course(tenant_a, "Models", "intermediate", needs=[algebra])
    nets = course(tenant_a, "Neural Nets", "advanced", needs=[basics])
    # Authored order: the tour first (whatever its level), then models, then the basics the nets need.
    path = authored_path(tenant_a, "Machine Learning", [(0, intro), (1, models), (2, basics), (3, nets)])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, path=path)
    assert plan_of(tenant_a, learner) == [("Linear Algebra", "prerequisite"), ("Tour of ML", "path"),
                                          ("Models", "path"), ("Python Basics", "path"), ("Neural Nets", "path")]

    complete(tenant_a, learner, algebra)
    assert plan_of(tenant_a, learner) == [("Tour of ML", "path"), ("Models", "path"), ("Python Basics", "path"),
                                          ("Neural Nets", "path")]
    # Finishing the advanced tour shows the level: the intermediate step goes, the basics the nets need stay.
    complete(tenant_a, learner, intro)
    assert plan_of(tenant_a, learner) == [("Python Basics", "path"), ("Neural Nets", "path")]


def test_a_path_step_needing_the_next_step_swaps_with_it(tenant_a):
    one = course(tenant_a, "One", "beginner")
    three = course(tenant_a, "Three", "beginner")
    two = course(tenant_a, "Two", "beginner", needs=[three])
    four = course(tenant_a, "Four", "beginner")
    path = authored_path(tenant_a, "Counting", [(10, one), (20, two), (30, three), (40, four)])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, path=path)
    assert titles(plan_of(tenant_a, learner)) == ["One", "Three", "Two", "Four"]


def test_a_path_step_needing_a_later_step_only_moves_that_prerequisite(tenant_a):
    one, two, three, four = (course(tenant_a, title, "beginner") for title in ("One", "Two", "Three", "Four"))
    with scopes_disabled():
        two.prerequisites.set([four])
    path = authored_path(tenant_a, "Counting", [(10, one), (20, two), (30, three), (40, four)])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, path=path)
    assert titles(plan_of(tenant_a, learner)) == ["One", "Four", "Two", "Three"]


def test_goals_are_set_and_refused_through_my_learning(tenant_a, data_science):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get("/learn/").content.decode()
    assert "Next in your path" in page and "Choose a goal" in page

    response = client.post("/recommendations/goal/", {"goal": f"c:{data_science['data'].pk}"})
    assert response.status_code == 302 and response.url.endswith("/learn/#next-in-path")
    page = client.get("/learn/").content.decode()
    assert "Towards Data Science: 0 finished so far." in page
    plan = re.search(r'<ol class="plan">(.*?)</ol>', page, re.S).group(1)
    assert re.findall(r">([^<>]+)</a>", plan) == ["Data Basics", "Linear Algebra", "Regression", "Deep Learning"]
    assert plan.count("needed first") == 1
    assert f'value="c:{data_science["data"].pk}" selected' in page

    path = authored_path(tenant_a, "Deep Dive", [(0, data_science["advanced"])])
    client.post("/recommendations/goal/", {"goal": f"p:{path.pk}"})
    with scope(tenant=tenant_a):
        preference = LearnerPreference.objects.get(user=learner)
        assert (preference.goal_path_id, preference.goal_category_id) == (path.pk, None)
    page = client.get("/learn/").content.decode()
    assert "Towards Deep Dive" in page
    plan = re.search(r'<ol class="plan">(.*?)</ol>', page, re.S).group(1)
    assert re.findall(r">([^<>]+)</a>", plan) == ["Linear Algebra", "Deep Learning"]

    # An empty choice clears the goal.
    client.post("/recommendations/goal/", {"goal": ""})
    with scope(tenant=tenant_a):
        preference.refresh_from_db()
        assert (preference.goal_path_id, preference.goal_category_id) == (None, None)


def test_an_unpublished_path_is_refused_with_a_message(tenant_a, data_science):
    learner = member(tenant_a)
    hidden = authored_path(tenant_a, "Hidden", [(0, data_science["basics"])], published=False)
    client = host_client("alpha.test", learner)
    client.post("/recommendations/goal/", {"goal": f"c:{data_science['maths'].pk}"})
    response = client.post("/recommendations/goal/", {"goal": f"p:{hidden.pk}"}, follow=True)
    assert response.status_code == 200
    assert "Choose a goal from the list." in response.content.decode()
    with scope(tenant=tenant_a):
        preference = LearnerPreference.objects.get(user=learner)
        assert (preference.goal_path_id, preference.goal_category_id) == (None, data_science["maths"].pk)


def test_goal_set_refuses_an_unpublished_path(tenant_a, data_science):
    learner = member(tenant_a)
    hidden = authored_path(tenant_a, "Hidden", [(0, data_science["basics"])], published=False)
    with tenant_phase(tenant_a), pytest.raises(ApplicationError) as refused:
        goal_set(user=learner, path=hidden)
    assert refused.value.message == "That learning path is not published."
    with scope(tenant=tenant_a):
        assert not LearnerPreference.objects.filter(user=learner, goal_path__isnull=False).exists()


def test_another_storefronts_subject_is_not_a_goal(tenant_a, tenant_b, data_science):
    elsewhere = subject(tenant_b, "Elsewhere")
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    response = client.post("/recommendations/goal/", {"goal": f"c:{elsewhere.pk}"}, follow=True)
    assert "Choose a goal from the list." in response.content.decode()
    with scope(tenant=tenant_a):
        assert not LearnerPreference.objects.filter(user=learner, goal_category__isnull=False).exists()


def test_the_goal_endpoint_needs_a_signed_in_post(tenant_a, data_science):
    anonymous = host_client("alpha.test")
    response = anonymous.post("/recommendations/goal/", {"goal": f"c:{data_science['data'].pk}"})
    assert response.status_code == 302 and "/accounts/login/" in response.url
    assert host_client("alpha.test", member(tenant_a)).get("/recommendations/goal/").status_code == 405


def test_a_goal_path_unpublished_after_it_was_chosen_is_no_longer_planned(tenant_a, data_science):
    path = authored_path(tenant_a, "Secret path", [(0, data_science["basics"])])
    learner = member(tenant_a)
    set_goal(tenant_a, learner, path=path)
    with scopes_disabled():
        LearningPath.objects.filter(pk=path.pk).update(is_published=False)
    page = host_client("alpha.test", learner).get("/learn/").content.decode()
    assert "Secret path" not in page
    with tenant_phase(tenant_a):
        assert path_plan(user=learner, preference=LearnerPreference.objects.get(user=learner)) is None


def test_ties_follow_what_learners_went_on_to_take_in_the_serving_run(tenant_a):
    """Learned co-occurrence ("learners also bought") is written only for a run that serves; a later run whose model
    did not beat popularity has none, so the plan keeps reading the serving run's."""
    ml = subject(tenant_a, "Machine Learning")
    started = course(tenant_a, "Started", "beginner", ml)
    popular = course(tenant_a, "Popular", "intermediate", ml, learners=50)
    followed = course(tenant_a, "Followed", "intermediate", ml)
    learner = member(tenant_a)
    with scopes_disabled():
        ItemProgress.objects.create(tenant=tenant_a, user=learner, item=started, percent=40)
        runs = [FitRun.objects.create(tenant=tenant_a, run_date=date(2026, 1, day), status=FitRun.Status.SUCCEEDED,
                                      started_at=timezone.now(), served=served)
                for day, served in ((1, True), (2, False))]
        SimilarItems.objects.create(tenant=tenant_a, run=runs[0], item=started, also_bought=[[followed.pk, 0.8]])
        SimilarItems.objects.create(tenant=tenant_a, run=runs[1], item=started, similar=[[popular.pk, 0.5]])
    set_goal(tenant_a, learner, category=ml)
    assert titles(plan_of(tenant_a, learner)) == ["Started", "Followed", "Popular"]
