"""The nightly fit and the retention compaction run twice at once (PostgreSQL, real transactions).

As in ``tests/payments/test_concurrency.py``: each thread opens its own connection and tenant scope. Which statement
waits for which is read from ``pg_stat_activity``, so each interleaving below happens on every run.
"""

import threading
import uuid
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from marketplace import tenancy
from recommender.fitting import fit_run
from recommender.models import Event, EventRollup, FitRun
from recommender.selectors import recommended_for
from recommender.services import RETENTION_DAYS, events_compact
from tests.conftest import clear_cache
from tests.factories import TenantFactory, catalog_item, member
from tests.payments.test_races import in_thread, wait_until, waiting_for_a_lock
from tests.recommender.test_fitting import _behave, _items

pytestmark = pytest.mark.postgres
RUN_DATE = date(2026, 11, 20)


@pytest.fixture
def storefront(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI always does)")
    return TenantFactory(slug=f"race{uuid.uuid4().hex[:8]}", domain=None)


@pytest.fixture
def tastes(storefront):
    """Data people and art people, 24 learners each, 8 items each: enough for a model to beat popularity."""
    data, art = _items(storefront, "Data", 8), _items(storefront, "Art", 8)
    data_people = [member(storefront) for _ in range(24)]
    _behave(storefront, data_people, data, seen=5)
    _behave(storefront, [member(storefront) for _ in range(24)], art, seen=5)
    return data_people


# --- two fits of one date ---------------------------------------------------------------------------------------------

def _overlapping_fits(tenant, *, second_force: bool, before_second=None) -> dict:
    """The nightly fit claims ``RUN_DATE``; then a second fit of that date starts. Both are held before their write
    until the second has either finished (it was refused) or reached its write too. If both write, they are made to
    overlap: this connection holds the run's row, so the first writer waits at the run's row while the second waits
    for the first's rows (or both wait for the row), then lets them go. Returns each fit's outcome."""
    claimed, go = threading.Event(), threading.Event()
    writers: list = []
    outcomes: dict = {}

    def steps(name):
        def step(stage):
            if stage == "read" and name == "nightly":
                claimed.set()
            if stage == "write":
                writers.append(name)
                assert go.wait(120)
        return step

    def fit(name, force):
        return lambda: fit_run(tenant=tenant, run_date=RUN_DATE, force=force, progress=steps(name))

    nightly = in_thread(outcomes, "nightly", fit("nightly", False))
    assert claimed.wait(60)
    if before_second:
        before_second()
    second = in_thread(outcomes, "second", fit("second", second_force))
    assert wait_until(lambda: "second" in outcomes or len(writers) == 2, timeout=120)
    if len(writers) == 2:
        with tenancy.activate(tenant):
            FitRun.objects.select_for_update().get(run_date=RUN_DATE)
            go.set()
            assert wait_until(lambda: waiting_for_a_lock(2), timeout=60)
    go.set()
    for thread in (nightly, second):
        thread.join(120)
        assert not thread.is_alive(), "a fit hung"
    return outcomes


def test_a_forced_fit_during_the_nightly_fit_of_the_same_date_leaves_it_alone(storefront, tastes):
    """``recommender_fit --force`` while beat's nightly fit of that date is running must not take the live claim
    over: both would write the same run's rows, the second writer would hit ``recommendation_unique``, and its error
    handler would mark FAILED the run the first writer completed (serving reads only succeeded runs: the storefront
    would lose its personalised picks until the next night). The forced fit is refused; the nightly one serves."""
    outcomes = _overlapping_fits(storefront, second_force=True)
    clear_cache()
    with tenancy.activate(storefront):
        run = FitRun.objects.get(run_date=RUN_DATE)
        picks = recommended_for(user=tastes[0], n=4)
    assert (run.status, run.served) == (FitRun.Status.SUCCEEDED, True), (run.status, run.note, outcomes)
    assert outcomes["second"] is None, outcomes  # refused: another worker is fitting this date
    assert isinstance(outcomes["nightly"], FitRun) and outcomes["nightly"].pk == run.pk, outcomes
    assert picks.personalised


def test_a_fit_that_took_a_stale_claim_over_and_the_fit_it_took_it_from_serve_one_run(storefront, tastes):
    """A claim older than ``STALE_AFTER`` is taken over (its worker is presumed dead). If that worker was only slow
    and comes to write as well, one of the two writes the run and the other leaves it be: the run is never marked
    FAILED by the writer that lost, over the rows of the one that won."""
    from recommender.fitting import STALE_AFTER

    def age_the_claim():
        with tenancy.activate(storefront):
            FitRun.objects.filter(run_date=RUN_DATE).update(started_at=timezone.now() - STALE_AFTER * 2)

    outcomes = _overlapping_fits(storefront, second_force=False, before_second=age_the_claim)
    clear_cache()
    with tenancy.activate(storefront):
        run = FitRun.objects.get(run_date=RUN_DATE)
        picks = recommended_for(user=tastes[0], n=4)
    assert (run.status, run.served) == (FitRun.Status.SUCCEEDED, True), (run.status, run.note, outcomes)
    assert not any(isinstance(o, Exception) for o in outcomes.values()), outcomes
    assert [o.pk for o in outcomes.values() if o is not None] == [run.pk], outcomes  # one of them wrote it
    assert picks.personalised


# --- two compactions at once ------------------------------------------------------------------------------------------

def test_two_compactions_at_once_fold_each_old_event_into_its_rollup_once(storefront):
    """``events_compact`` promises "an event is never counted twice nor lost". Two compactions of one storefront at
    once (a re-delivered or overlapping retention task) must not both read the same old events and both add them to
    the rollup. This connection holds the rollup's row until both compactions wait for a lock (the rollup's, or the
    first one's), so that without a lock taken before reading both have read the events before either writes."""
    item = catalog_item(storefront, title="Ink", price=1000)
    learner = member(storefront, "learner")
    old = timezone.now() - timedelta(days=RETENTION_DAYS + 10)

    def old_views(n):
        with scopes_disabled():
            for i in range(n):
                Event.objects.create(tenant=storefront, user=learner, item=item, kind="view",
                                     occurred_at=old - timedelta(hours=i))

    old_views(2)
    with tenancy.activate(storefront):
        assert events_compact() == 2  # the rollup exists: count 2
    old_views(3)
    outcomes: dict = {}

    def compact():
        with tenancy.activate(storefront):
            return events_compact()

    with tenancy.activate(storefront):
        EventRollup.objects.select_for_update().get(user=learner)
        threads = [in_thread(outcomes, name, compact) for name in ("first", "second")]
        assert wait_until(lambda: waiting_for_a_lock(2))
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a compaction hung"
    assert sorted(outcomes.values()) == [0, 3], outcomes
    with scope(tenant=storefront):
        assert not Event.objects.filter(occurred_at__lt=timezone.now() - timedelta(days=RETENTION_DAYS)).exists()
        assert EventRollup.objects.get(user=learner).count == 5, outcomes
