"""The review form on an item page: its answer shows next to it, and each rating has a name a screen reader says."""

import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(tenant_a):
    item = catalog_item(tenant_a, title="Rated thing", price=500)
    learner = member(tenant_a)
    grant(tenant_a, learner, item=item)
    return item, host_client("alpha.test", learner)


def test_a_saved_review_is_confirmed_next_to_the_form_the_page_opens_at(reviewer):
    item, client = reviewer
    response = client.post(f"/item/{item.slug}/review/", {"rating": "4", "body": "Clear."})
    assert response.status_code == 302 and response.url == f"/item/{item.slug}/#your-review"
    page = client.get(response.url).content.decode()
    section = page[page.index('<section id="your-review"'):]
    assert "Thank you: your review is saved." in section.split("<form", 1)[0]
    assert "Thank you: your review is saved." not in page[:page.index('<section id="your-review"')]


def test_a_refused_review_opens_at_the_form_with_its_errors(reviewer):
    item, client = reviewer
    page = client.post(f"/item/{item.slug}/review/", {"body": "no rating"}).content.decode()
    assert f'action="/item/{item.slug}/review/#your-review"' in page
    assert "This field is required." in page[page.index('<section id="your-review"'):]


def test_each_star_rating_choice_says_how_many_stars(reviewer):
    item, client = reviewer
    page = client.get(f"/item/{item.slug}/").content.decode()
    labels = re.findall(r'<label for="id_rating_\d">.*?</label>', page, re.S)
    spoken = [re.sub(r"<span aria-hidden=\"true\">.*?</span>|<[^>]+>", "", label).strip() for label in labels]
    assert spoken == ["5 stars", "4 stars", "3 stars", "2 stars", "1 star"]


def test_the_ratings_of_reviews_and_cards_are_images_with_a_name(reviewer, tenant_a):
    item, client = reviewer
    client.post(f"/item/{item.slug}/review/", {"rating": "4", "body": "Clear."})
    page = client.get(f"/item/{item.slug}/").content.decode()
    assert '<span class="rating" role="img" aria-label="4 stars">' in page
    browse = host_client("alpha.test").get("/browse/").content.decode()
    assert re.search(r'<span class="rating" role="img" aria-label="Rated 4(\.0)? out of 5 by 1 learner">', browse)


def test_the_review_form_follows_the_reviews_before_what_else_is_offered(reviewer, tenant_a):
    from django_scopes import scope

    from catalog.models import Category

    item, client = reviewer
    other = catalog_item(tenant_a, title="Another thing", price=700)
    with scope(tenant=tenant_a):
        category = Category.objects.create(tenant=tenant_a, name="Things", slug="things")
        item.categories.add(category)
        other.categories.add(category)
    page = client.get(f"/item/{item.slug}/").content.decode()
    headings = re.findall(r'<h2 id="([\w-]+)-heading"', page)
    assert headings.index("reviews") + 1 == headings.index("your-review") < headings.index("related")
