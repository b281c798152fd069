"""The nightly fit on a storefront, and what the storefront serves from it."""

import threading
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog.models import Category
from marketplace.tenancy import tenant_phase
from recommender.events import events_record
from recommender.fitting import fit_run
from recommender.models import Event, Experiment, FitRun, Persona, Recommendation, SimilarItems
from recommender.selectors import item_neighbours, recommended_for
from tests.conftest import clear_cache, host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db

RUN_DATE = date(2026, 11, 20)


def _items(tenant, subject: str, n: int, *, price: int = 990) -> list:
    with scopes_disabled():
        category, _ = Category.objects.get_or_create(tenant=tenant, slug=subject.lower(), defaults={"name": subject})
    items = []
    for i in range(n):
        item = catalog_item(tenant, title=f"{subject} {i}", price=price,
                            level=["beginner", "intermediate", "advanced"][i % 3])
        with scopes_disabled():
            item.categories.add(category)
        items.append(item)
    return items


def _behave(tenant, learners: list, items: list, *, seen: int, start_days: int = 60) -> None:
    """Each learner views ``seen`` of ``items`` in a rotating order, one a day, oldest first."""
    now = timezone.now()
    events = []
    for n, user in enumerate(learners):
        for step in range(seen):
            item = items[(n + step) % len(items)]
            events.append(Event(tenant=tenant, user=user, item=item, kind="view",
                                occurred_at=now - timedelta(days=start_days - step)))
            if step % 2 == 0:
                events.append(Event(tenant=tenant, user=user, item=item, kind="preview",
                                    occurred_at=now - timedelta(days=start_days - step, hours=-1)))
    events_record(events=events)


@pytest.fixture
def world(tenant_a, tenant_b):
    """Two tastes on one storefront: data people and art people, 24 learners each, 8 items each."""
    data = _items(tenant_a, "Data", 8)
    art = _items(tenant_a, "Art", 8)
    data_people = [member(tenant_a) for _ in range(24)]
    art_people = [member(tenant_a) for _ in range(24)]
    _behave(tenant_a, data_people, data, seen=5)
    _behave(tenant_a, art_people, art, seen=5)
    other = _items(tenant_b, "Data", 4)
    _behave(tenant_b, [member(tenant_b) for _ in range(6)], other, seen=3)
    return {"data": data, "art": art, "data_people": data_people, "art_people": art_people, "other": other}


def _fit(tenant, **kwargs):
    return fit_run(tenant=tenant, run_date=kwargs.pop("run_date", RUN_DATE), **kwargs)


def test_fit_learns_tastes_and_serves_them(world, tenant_a):
    run = _fit(tenant_a)
    assert run.status == FitRun.Status.SUCCEEDED and run.served, run.note
    models = {row["model"] for row in run.results}
    assert {"popularity", "itemknn", "als", "content", "hybrid"} <= models
    baseline = run.metric("popularity", "ndcg@10")
    assert run.metric(run.winner, "ndcg@10") > baseline
    assert run.learners == 48 and run.items == 16  # the other storefront's learners and items are not here
    assert set(run.stages) >= {"read", "select", "refit", "top_n", "write"}

    learner = world["data_people"][0]
    with tenant_phase(tenant_a):
        picks = recommended_for(user=learner, n=4)
    assert picks.personalised
    data_ids = {item.pk for item in world["data"]}
    assert {item.pk for item in picks.items} <= data_ids  # a data person is shown data items
    assert any(text.startswith("Because you") for text in picks.reasons.values())


def test_the_team_browsing_its_own_storefront_is_not_behaviour(world, tenant_a):
    """Owners, staff and creators open their items while they work on them: those views say nothing about what
    learners like, and the team is left out of the fit as learners who turned personalisation off are."""
    team = [member(tenant_a, role) for role in (Role.OWNER, Role.STAFF, Role.CREATOR)]
    _behave(tenant_a, team, world["art"], seen=8)
    run = _fit(tenant_a)
    assert run.status == FitRun.Status.SUCCEEDED and run.learners == 48, run.note
    with tenant_phase(tenant_a):
        assert not Recommendation.objects.filter(user__in=team).exists()


def test_never_owned_unpublished_or_other_storefront_items(world, tenant_a):
    learner = world["data_people"][0]
    owned = world["data"][6]
    grant(tenant_a, learner, item=owned)
    archived = world["data"][7]
    with tenant_phase(tenant_a):
        from catalog.services import item_archive

        item_archive(item=archived, actor=member(tenant_a, Role.STAFF))
    run = _fit(tenant_a)
    assert run.served
    with tenant_phase(tenant_a):
        rows = list(Recommendation.objects.filter(run=run))
        listed = {pk for row in rows for pk in row.item_ids}
        mine = next(row for row in rows if row.user_id == learner.pk)
        picks = recommended_for(user=learner, n=20)
    assert owned.pk not in set(mine.item_ids)
    assert archived.pk not in listed
    assert not listed & {item.pk for item in world["other"]}
    assert owned.pk not in {i.pk for i in picks.items} and archived.pk not in {i.pk for i in picks.items}


def test_bought_after_the_run_is_dropped_when_served(world, tenant_a):
    learner = world["data_people"][1]
    _fit(tenant_a)
    with tenant_phase(tenant_a):
        first = recommended_for(user=learner, n=3).items[0]
    grant(tenant_a, learner, item=first)
    with tenant_phase(tenant_a):
        assert first not in recommended_for(user=learner, n=3).items


def test_popularity_serves_before_the_first_run(world, tenant_a):
    learner = world["art_people"][0]
    with tenant_phase(tenant_a):
        assert not FitRun.objects.exists()
        picks = recommended_for(user=learner, n=4)
    assert len(picks.items) == 4 and not picks.personalised
    page = host_client("alpha.test", learner).get("/").content.decode()
    assert "Recommended for you" in page


def test_the_nightly_job_is_idempotent_for_a_date(world, tenant_a):
    first = _fit(tenant_a)
    with tenant_phase(tenant_a):
        rows = sorted(Recommendation.objects.filter(run=first).values_list("user_id", "items"))
    assert _fit(tenant_a) is None  # the date is done
    with tenant_phase(tenant_a):
        assert FitRun.objects.count() == 1
        assert sorted(Recommendation.objects.filter(run=first).values_list("user_id", "items")) == rows
    again = _fit(tenant_a, force=True)  # a forced refit replaces the date's rows with equivalent ones
    assert again.pk == first.pk

    def picks(rows):
        return {user: set(items["ids"]) for user, items in rows}

    with tenant_phase(tenant_a):
        assert picks(Recommendation.objects.filter(run=first).values_list("user_id", "items")) == picks(rows)


def test_a_new_days_run_replaces_the_serving_rows(world, tenant_a):
    old = _fit(tenant_a)
    new = _fit(tenant_a, run_date=RUN_DATE + timedelta(days=1))
    with tenant_phase(tenant_a):
        assert list(FitRun.objects.filter(served=True)) == [new]
        assert not Recommendation.objects.filter(run=old).exists()
        assert not SimilarItems.objects.filter(run=old).exists()
        assert FitRun.objects.get(pk=old.pk).results  # the history keeps its metrics


def test_a_failed_run_is_marked_and_serving_stays(world, tenant_a):
    good = _fit(tenant_a)

    def crash(stage):
        if stage == "write":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _fit(tenant_a, run_date=RUN_DATE + timedelta(days=1), progress=crash)
    with tenant_phase(tenant_a):
        failed = FitRun.objects.get(run_date=RUN_DATE + timedelta(days=1))
        assert failed.status == FitRun.Status.FAILED and "disk full" in failed.note
        assert list(FitRun.objects.filter(served=True)) == [good]
        assert Recommendation.objects.filter(run=good).exists()
    # The failed date can be fitted again.
    assert _fit(tenant_a, run_date=RUN_DATE + timedelta(days=1)).status == FitRun.Status.SUCCEEDED


@pytest.mark.postgres
def test_two_workers_on_the_same_date_fit_once(transactional_db, world, tenant_a, on_postgres):
    """Two beats (or a beat and a re-delivered task) fitting one date at once: one fits, the other backs off."""
    outcomes, errors = [], []
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            outcomes.append(_fit(tenant_a, run_date=RUN_DATE + timedelta(days=5)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(o is None for o in outcomes) == [False, True]
    with tenant_phase(tenant_a):
        assert FitRun.objects.filter(run_date=RUN_DATE + timedelta(days=5)).count() == 1


def test_opted_out_learners_get_popular_picks_and_are_left_out(world, tenant_a):
    learner = world["data_people"][2]
    client = host_client("alpha.test", learner)
    response = client.post("/recommendations/settings/", {"digest": "weekly"})  # personalised unchecked
    assert response.status_code == 302
    run = _fit(tenant_a)
    assert run.learners == 47
    with tenant_phase(tenant_a):
        picks = recommended_for(user=learner, n=4)
        assert not picks.personalised and not picks.reasons
        assert not Recommendation.objects.filter(user=learner).exists()
    assert "Because you" not in client.get("/").content.decode()


def test_storefront_shows_recommendations_and_neighbours(world, tenant_a):
    _fit(tenant_a)
    learner = world["data_people"][3]
    client = host_client("alpha.test", learner)
    home = client.get("/").content.decode()
    assert "Recommended for you" in home and "Because you" in home
    item = world["data"][0]
    page = client.get(f"/item/{item.slug}/").content.decode()
    assert "Learners also bought" in page and "Similar" in page
    with tenant_phase(tenant_a):
        neighbours = item_neighbours(item=item)
    assert {i.pk for i in neighbours.also_bought} <= {i.pk for i in world["data"]}
    # Visitors who are not signed in see the neighbours too (the page is the same for all of them).
    assert "Learners also bought" in host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()


def test_personas_and_admin_history(world, tenant_a, tenant_b):
    _fit(tenant_a)
    _fit(tenant_a, run_date=RUN_DATE + timedelta(days=1))
    with scope(tenant=tenant_a):
        personas = list(Persona.objects.all())
    assert personas and sum(p.size for p in personas if p.run.run_date == RUN_DATE + timedelta(days=1)) == 48
    owner = member(tenant_a, Role.OWNER, mfa=True)
    client = host_client("alpha.test", owner)
    page = client.get("/admin/recommender/fitrun/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "NDCG@10" in body
    assert client.get("/admin/recommender/persona/").status_code == 200
    run = FitRun.objects.with_scopes_disabled().filter(tenant=tenant_a).first()
    detail = client.get(f"/admin/recommender/fitrun/{run.pk}/change/").content.decode()
    assert "itemknn" in detail and "popularity" in detail
    # Another storefront's team cannot open this run.
    beta_owner = member(tenant_b, Role.OWNER, mfa=True)
    assert host_client("beta.test", beta_owner).get(f"/admin/recommender/fitrun/{run.pk}/change/").status_code == 404


def test_command_prints_the_holdout_table(world, tenant_a, capsys):
    call_command("recommender_fit", "--tenant", "alpha", "--date", RUN_DATE.isoformat(), verbosity=0)
    out = capsys.readouterr().out
    assert "alpha: 48 learners x 16 items" in out and "NDCG@10" in out
    call_command("recommender_fit", "--tenant", "alpha", "--date", RUN_DATE.isoformat(), verbosity=0)
    assert "it is fitted already (--force refits it)" in capsys.readouterr().out


def test_command_says_when_another_worker_is_fitting_the_date(world, tenant_a, capsys):
    with tenant_phase(tenant_a):
        FitRun.objects.create(tenant=tenant_a, run_date=RUN_DATE, started_at=timezone.now())
    call_command("recommender_fit", "--tenant", "alpha", "--date", RUN_DATE.isoformat(), "--force", verbosity=0)
    out = capsys.readouterr().out
    assert "not fitted now: another worker has been fitting it since" in out and "fitted already" not in out


def test_a_run_that_serves_no_model_keeps_learners_also_bought_from_the_serving_run(world, tenant_a):
    """A model replaces the serving one only if it wins: a run that does not (here, too little behaviour once most
    learners turned personalisation off) refreshes "Similar" but leaves "Learners also bought" as it was."""
    from recommender.models import LearnerPreference

    first = _fit(tenant_a)
    item = world["data"][0]
    with tenant_phase(tenant_a):
        before = [i.pk for i in item_neighbours(item=item).also_bought]
        for user in world["data_people"][2:] + world["art_people"]:
            LearnerPreference.objects.create(tenant=tenant_a, user=user, personalised=False)
    assert before
    second = _fit(tenant_a, run_date=RUN_DATE + timedelta(days=1))
    assert second.status == FitRun.Status.SUCCEEDED and not second.served
    with tenant_phase(tenant_a):
        assert list(FitRun.objects.filter(served=True)) == [first]
        neighbours = item_neighbours(item=item)
        assert [i.pk for i in neighbours.also_bought] == before
        assert neighbours.similar  # from the latest run
        assert set(SimilarItems.objects.values_list("run", flat=True)) == {first.pk, second.pk}
    third = _fit(tenant_a, run_date=RUN_DATE + timedelta(days=2))  # another run serving nothing replaces the second
    with tenant_phase(tenant_a):
        assert not third.served
        assert set(SimilarItems.objects.values_list("run", flat=True)) == {first.pk, third.pk}


# --- a forced refit ---------------------------------------------------------------------------------------------------

def test_a_forced_refit_keeps_the_date_serving_while_it_computes_and_when_it_fails(world, tenant_a):
    """``recommender_fit --force`` on the serving date refits that date's own run: until the new fit commits the
    old picks serve, and a refit that fails leaves them serving (the run stays succeeded, with a note)."""
    learner = world["data_people"][0]
    run = _fit(tenant_a)
    with tenant_phase(tenant_a):
        before = [i.pk for i in recommended_for(user=learner, n=4).items]
    seen_while_fitting = []

    def crash(stage):
        if stage == "similar items":
            clear_cache()  # the serving cache lives 10 minutes
            with tenant_phase(tenant_a):
                seen_while_fitting.append(recommended_for(user=learner, n=4).personalised)
        if stage == "write":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _fit(tenant_a, force=True, progress=crash)
    assert seen_while_fitting == [True]
    clear_cache()
    with tenant_phase(tenant_a):
        again = FitRun.objects.get(pk=run.pk)
        assert again.status == FitRun.Status.SUCCEEDED and again.served
        assert "disk full" in again.note
        picks = recommended_for(user=learner, n=4)
    assert picks.personalised and [i.pk for i in picks.items] == before


def test_a_forced_refit_of_the_serving_date_that_does_not_win_keeps_its_picks(world, tenant_a):
    """A run whose best model does not beat popularity changes no behavioural pick, also when it is a refit of the
    serving run's own date."""
    from recommender.models import LearnerPreference

    first = _fit(tenant_a)
    learner, item = world["data_people"][0], world["data"][0]
    with tenant_phase(tenant_a):
        before = [i.pk for i in recommended_for(user=learner, n=4).items]
        also_bought = [i.pk for i in item_neighbours(item=item).also_bought]
        for user in world["data_people"][2:] + world["art_people"]:
            LearnerPreference.objects.create(tenant=tenant_a, user=user, personalised=False)
    again = _fit(tenant_a, force=True)
    assert again.pk == first.pk and again.served and again.winner == first.winner
    assert "did not beat popularity" in again.note
    with tenant_phase(tenant_a):
        picks = recommended_for(user=learner, n=4)
        assert picks.personalised and [i.pk for i in picks.items] == before
        assert [i.pk for i in item_neighbours(item=item).also_bought] == also_bought


# --- what changes while the fit computes ------------------------------------------------------------------------------

def test_a_learner_erased_while_the_fit_computes_gets_no_picks_written(world, tenant_a):
    """The fit reads behaviour, computes outside any transaction, then writes: a learner erased in between gets no
    ``Recommendation`` derived from their deleted events."""
    from accounts.privacy import user_erase

    learner = world["data_people"][0]

    def step(name):
        if name == "reasons":  # after the read, before the write
            user_erase(user=learner)

    run = _fit(tenant_a, progress=step)
    assert run.served, run.note
    with scope(tenant=tenant_a):
        assert not Event.objects.filter(user=learner).exists()  # the erasure did happen
        assert not Recommendation.objects.filter(user=learner).exists()
        assert Recommendation.objects.filter(user=world["data_people"][1]).exists()


def test_a_learner_who_turns_personalisation_off_while_the_fit_computes_gets_no_picks_written(world, tenant_a):
    learner = world["data_people"][0]

    def step(name):
        if name == "reasons":
            with tenant_phase(tenant_a):
                from recommender.services import preference_update

                preference_update(user=learner, personalised=False)

    run = _fit(tenant_a, progress=step)
    assert run.served, run.note
    with scope(tenant=tenant_a):
        assert not Recommendation.objects.filter(user=learner).exists()


@pytest.mark.postgres
def test_a_draft_deleted_while_the_fit_computes_does_not_fail_the_run(transactional_db, world, tenant_a, on_postgres):
    """The team's views of a draft are behaviour events, so the draft is a column of the fit; deleting it (allowed
    while it has no version) while the fit computes must not make the write break its foreign key."""
    draft = catalog_item(tenant_a, title="Data draft", published=False)
    staff = member(tenant_a, Role.STAFF)
    events_record(events=[Event(tenant=tenant_a, user=staff, item=item, kind="view", occurred_at=timezone.now())
                          for item in [draft, *world["data"][:3]]])

    def step(name):
        if name == "reasons":
            with scope(tenant=tenant_a):
                type(draft).objects.filter(pk=draft.pk).delete()

    run = _fit(tenant_a, progress=step)
    assert run.status == FitRun.Status.SUCCEEDED and run.served, run.note
    with scope(tenant=tenant_a):
        assert not SimilarItems.objects.filter(item_id=draft.pk).exists()


def test_items_not_on_sale_are_nobodys_neighbour(world, tenant_a):
    """A draft the team looked at is a column of the fit, but never takes a place in another item's "Learners also
    bought" or "Similar" list."""
    draft = catalog_item(tenant_a, title="Data 99", published=False)
    staff = member(tenant_a, Role.STAFF)
    events_record(events=[Event(tenant=tenant_a, user=staff, item=item, kind=kind, occurred_at=timezone.now())
                          for item in [draft, *world["data"][:3]] for kind in ("view", "preview")])
    run = _fit(tenant_a)
    assert run.served, run.note
    with scope(tenant=tenant_a):
        rows = list(SimilarItems.objects.filter(run=run))
    listed = {pk for row in rows for pk, _score in row.also_bought + row.similar}
    assert listed and draft.pk not in listed


# --- A/B tests --------------------------------------------------------------------------------------------------------

def test_every_model_a_run_can_serve_can_be_an_arm():
    from recommender.engine.registry import MODEL_CLASSES
    from recommender.strategies import STRATEGIES

    assert set(MODEL_CLASSES) <= set(STRATEGIES)


def test_an_arm_of_the_runs_winning_strategy_gets_the_winners_picks(world, tenant_a):
    """The winner's picks are stored once (as the run's own); an arm naming the winner's strategy is served them,
    not popular picks."""
    from recommender.experiments import arm_for
    from recommender.strategies import STRATEGIES

    arms = [{"name": name, "strategy": name, "weight": 1} for name in STRATEGIES if name != "popularity"]
    with scopes_disabled():
        experiment = Experiment.objects.create(tenant=tenant_a, name="Every model", arms=arms)
    run = _fit(tenant_a)
    assert run.served, run.note
    assert run.winner in STRATEGIES, f"the winner {run.winner} cannot be an arm"
    learners = world["data_people"] + world["art_people"]
    in_winner_arm = [u for u in learners if arm_for(experiment, u)["strategy"] == run.winner]
    assert in_winner_arm
    with tenant_phase(tenant_a):
        assert all(recommended_for(user=u, n=4).personalised for u in in_winner_arm)


def test_an_arm_strategy_a_large_storefront_leaves_out_is_fitted_with_defaults(world, tenant_a, monkeypatch):
    """Above ``LARGE`` learners the selection skips the slower candidates (no "svd", no "content"); an A/B test arm
    using one is fitted with the model's defaults instead of failing the night's run. (``LARGE`` is lowered to
    stand for a 20,000-learner storefront.)"""
    from recommender import fitting

    monkeypatch.setattr(fitting, "LARGE", 10)
    with scopes_disabled():
        Experiment.objects.create(tenant=tenant_a, name="SVD vs model", arms=[
            {"name": "a", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "svd", "weight": 1},
            {"name": "c", "strategy": "content", "weight": 1}])
    run = _fit(tenant_a)
    assert run.status == FitRun.Status.SUCCEEDED and run.served, run.note
    assert "svd" not in {row["model"] for row in run.results}
    with scope(tenant=tenant_a):
        assert {"svd", "content"} <= set(Recommendation.objects.filter(run=run).values_list("strategy", flat=True))


def test_an_arm_strategy_that_cannot_run_here_is_left_out_with_a_note(world, tenant_a, monkeypatch):
    """EASE needs a dense items x items inverse and is skipped above its item limit (lowered here): its arm's
    learners get popular picks, not personal ones, and the run says why."""
    from recommender.engine import EASE
    from recommender.experiments import arm_for

    monkeypatch.setattr(EASE, "MAX_ITEMS", 10)
    with scopes_disabled():
        experiment = Experiment.objects.create(tenant=tenant_a, name="EASE vs model", arms=[
            {"name": "a", "strategy": "model", "weight": 1}, {"name": "b", "strategy": "ease", "weight": 1}])
    run = _fit(tenant_a)
    assert run.status == FitRun.Status.SUCCEEDED and run.served
    assert "ease" in run.note
    in_ease_arm = [u for u in world["data_people"] if arm_for(experiment, u)["strategy"] == "ease"]
    assert in_ease_arm
    with tenant_phase(tenant_a):
        picks = recommended_for(user=in_ease_arm[0], n=4)
    assert len(picks.items) == 4 and not picks.personalised and not picks.reasons


@pytest.mark.postgres
def test_the_fit_writes_its_rows_as_productions_row_level_security_role(world, tenant_a, on_postgres):
    from django.conf import settings

    with connection.cursor() as cursor:  # what marketplace.tenancy.set_rls_role does on each production connection
        cursor.execute(f"SET ROLE {connection.ops.quote_name(settings.DATABASE_RLS_ROLE)}")
    run = _fit(tenant_a)
    assert run.status == FitRun.Status.SUCCEEDED and run.served, run.note
    with tenant_phase(tenant_a):
        assert recommended_for(user=world["data_people"][0], n=4).personalised
        assert SimilarItems.objects.filter(run=run).exists()
