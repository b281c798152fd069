"""Counts read as English: one review, one learner; and a search with no words in it finds nothing."""

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("count", "total", "reviews", "learners"), [
    (1, 4, "4.0 out of 5 (1 review)", "Rated 4.0 out of 5 by 1 learner\""),
    (2, 9, "4.5 out of 5 (2 reviews)", "Rated 4.5 out of 5 by 2 learners\""),
])
def test_a_rating_counts_its_reviews_and_learners_in_the_singular_or_the_plural(tenant_a, count, total, reviews,
                                                                                 learners):
    item = catalog_item(tenant_a, title="Rated Course", rating_count=count, rating_sum=total)
    client = host_client("alpha.test")
    page = client.get(f"/item/{item.slug}/").content.decode()
    assert reviews in page
    assert learners in client.get("/browse/").content.decode()


@pytest.mark.parametrize("query", ["%", "%%", "!!", " ? ", "——", "。"])
def test_a_search_of_punctuation_alone_finds_nothing(tenant_a, query):
    catalog_item(tenant_a, title="Python for Data Analysis")
    catalog_item(tenant_a, title="Watercolour Basics")
    body = host_client("alpha.test").get("/browse/", {"q": query}).content.decode()
    results = body.split('class="results"')[1]
    assert "Python for Data Analysis" not in results and "Watercolour Basics" not in results
    assert f"0 results · “{query.strip()}”" in results
    assert "Nothing matches. Try fewer words or other filters." in results


def test_an_empty_search_still_lists_everything(tenant_a):
    catalog_item(tenant_a, title="Python for Data Analysis")
    body = host_client("alpha.test").get("/browse/", {"q": "  "}).content.decode()
    assert "Python for Data Analysis" in body.split('class="results"')[1]
