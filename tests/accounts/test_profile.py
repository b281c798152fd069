"""A learner's profile page: the name their reviews show and the language storefronts use with them; and the account
pages' links that lead to a form."""

import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def field_with_error(html: str, name: str) -> str:
    """The field's block (label, input, help, errors), or "" if it shows no error."""
    block = re.search(rf'<div class="field"><label for="id_{name}">.*?</div>', html, re.S)
    return block.group(0) if block and 'class="errorlist"' in block.group(0) else ""


def test_a_learner_names_themselves_and_their_reviews_show_it(tenant_a):
    item = catalog_item(tenant_a, title="Free Course")
    learner = member(tenant_a, email="mei@example.com")
    client = host_client("alpha.test", learner)
    assert client.post(f"/item/{item.slug}/review/", {"rating": 5, "body": "Clear and kind."}).status_code == 302

    page = client.get("/account/profile/").content.decode()
    assert "<title>Profile · Alpha Academy</title>" in page and "<h1>Your profile</h1>" in page
    response = client.post("/account/profile/", {"display_name": "  Mei Chen ", "language": ""}, follow=True)
    assert response.redirect_chain == [("/account/profile/", 302)]
    assert "Your profile is saved." in response.content.decode()
    assert 'value="Mei Chen"' in response.content.decode()
    learner.refresh_from_db()
    assert (learner.display_name, learner.language) == ("Mei Chen", "")
    review = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert "Mei Chen" in review and "A learner" not in review


def test_a_new_name_replaces_the_old_one_on_cached_item_pages(tenant_a, django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Free Course")
    learner = member(tenant_a, display_name="Mei")
    client = host_client("alpha.test", learner)
    client.post(f"/item/{item.slug}/review/", {"rating": 5, "body": "Clear and kind."})
    visitor = host_client("alpha.test")
    assert "Mei" in visitor.get(f"/item/{item.slug}/").content.decode()  # the page's public part is cached now
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/profile/", {"display_name": "Mei Chen", "language": ""})
    assert "Mei Chen" in visitor.get(f"/item/{item.slug}/").content.decode()


def test_a_learner_may_go_back_to_no_name(tenant_a):
    learner = member(tenant_a, display_name="Mei")
    assert host_client("alpha.test", learner).post("/account/profile/", {"display_name": "   "}).status_code == 302
    learner.refresh_from_db()
    assert learner.display_name == ""


@pytest.mark.parametrize("name", ["mei@example.com", "Mei <mei@example.com>", "mei＠example．com"])
def test_an_email_address_is_refused_as_a_name_next_to_the_field(tenant_a, name):
    learner = member(tenant_a, display_name="Mei")
    response = host_client("alpha.test", learner).post("/account/profile/", {"display_name": name, "language": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "not an email address" in field_with_error(html, "display_name")
    assert not field_with_error(html, "language")
    learner.refresh_from_db()
    assert learner.display_name == "Mei"


def test_a_name_too_long_and_a_language_not_offered_are_refused_each_next_to_its_field(tenant_a):
    learner = member(tenant_a)
    response = host_client("alpha.test", learner).post("/account/profile/",
                                                       {"display_name": "名" * 151, "language": "fr"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most 150 characters" in field_with_error(html, "display_name")
    assert "fr is not one of the available choices" in field_with_error(html, "language")
    learner.refresh_from_db()
    assert (learner.display_name, learner.language) == ("", "")


def test_the_profile_is_for_signed_in_people(tenant_a):
    response = host_client("alpha.test").get("/account/profile/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_following_a_link_to_account_deletion_lands_on_the_page_with_its_form(tenant_a):
    learner = member(tenant_a)
    response = host_client("alpha.test", learner).get("/account/privacy/delete/", follow=True)
    assert response.redirect_chain == [("/account/privacy/", 302)]
    assert 'action="/account/privacy/delete/"' in response.content.decode()
    learner.refresh_from_db()
    assert learner.is_active
