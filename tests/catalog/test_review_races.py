"""Reviews written and deleted twice at once keep the item's rating totals right (PostgreSQL, real transactions).

As in ``tests/payments/test_concurrency.py``: each thread opens its own connection and tenant scope. Which statement
waits for which is read from ``pg_stat_activity``, so each interleaving below happens on every run.
"""

import threading

import pytest
from django_scopes import scope

from catalog import services as catalog_services
from catalog.models import ContentItem, Review
from marketplace import tenancy
from payments import services
from tests.factories import member
from tests.payments.test_concurrency import shop  # noqa: F401 (fixture)
from tests.payments.test_races import in_thread, wait_until, waiting_for_a_lock

pytestmark = pytest.mark.postgres


def _buyer(tenant, item):
    learner = member(tenant, "learner")
    with scope(tenant=tenant):
        services.entitlement_grant(tenant=tenant, user=learner, actor=None, item=item)
    return learner


def test_a_learners_review_sent_twice_at_once_is_saved_once_without_an_error(shop):  # noqa: F811 (the fixture imported above)
    """The review form submitted twice (a double click, two tabs). Looking the learner's review up with SELECT ...
    FOR UPDATE locks nothing while there is none, so both requests would create one and the second would fail on
    ``one_review_per_learner_item`` (an IntegrityError: a 500 page). This connection holds the item's row (as
    another learner's review updating the totals would) until both requests wait for a lock, so that neither has
    committed when the other looks its review up."""
    tenant, item = shop
    learner = _buyer(tenant, item)
    outcomes: dict = {}

    def submit(rating):
        def work():
            with tenancy.activate(tenant):
                return catalog_services.review_save(user=learner, item=ContentItem.objects.get(pk=item.pk),
                                                    rating=rating, body="Good").rating
        return work

    with tenancy.activate(tenant):
        ContentItem.objects.select_for_update().get(pk=item.pk)
        threads = [in_thread(outcomes, name, submit(rating)) for name, rating in (("first", 4), ("second", 5))]
        assert wait_until(lambda: waiting_for_a_lock(2))
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a request hung"
    assert [o for o in outcomes.values() if isinstance(o, Exception)] == [], outcomes
    assert sorted(outcomes.values()) == [4, 5], outcomes  # both saved
    with scope(tenant=tenant):
        review = Review.objects.get(item=item, user=learner)
        item.refresh_from_db()
        assert (item.rating_count, item.rating_sum) == (1, review.rating)


def test_one_review_deleted_by_two_moderators_at_once_is_taken_out_of_the_totals_once(shop):  # noqa: F811 (the fixture imported above)
    """Two moderators (or the admin's bulk action and a single delete) remove the same abusive review at once, each
    from the review they loaded: its stars must leave the item's totals once, not once per moderator."""
    tenant, item = shop
    fan, troll = _buyer(tenant, item), _buyer(tenant, item)
    with tenancy.activate(tenant):
        catalog_services.review_save(user=fan, item=item, rating=5)
        catalog_services.review_save(user=troll, item=item, rating=1, body="spam")
    with scope(tenant=tenant):
        review_pk = Review.objects.get(user=troll).pk
    loaded = threading.Barrier(2, timeout=30)
    outcomes: dict = {}

    def moderator():
        with tenancy.activate(tenant):
            review = Review.objects.get(pk=review_pk)  # the page or queryset the moderator acted on
            loaded.wait()  # both have loaded it before either deletes it
            catalog_services.review_delete(review=review, actor=None)
        return "deleted"

    threads = [in_thread(outcomes, name, moderator) for name in ("first", "second")]
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a moderator hung"
    assert list(outcomes.values()) == ["deleted", "deleted"], outcomes
    with scope(tenant=tenant):
        item = ContentItem.objects.get(pk=item.pk)
        assert not Review.objects.filter(pk=review_pk).exists()
        assert (item.rating_count, item.rating_sum) == (1, 5), outcomes
