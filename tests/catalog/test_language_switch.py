"""The header's language menu: a POST that switches and, for a signed-in person, saves; switching on a page that
answers a refused form lands on a page that exists."""

import html
import re

import pytest
from django.conf import settings

from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def _language_switch(page: str) -> tuple[str, dict]:
    """The address and the fields the header's language switch posts, as a browser builds them from the form."""
    form = re.search(r'<form class="lang-switch" action="([^"]+)" method="post">(.*?)</form>', page, re.S)
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2))}
    return form.group(1), {**fields, "language": "zh-hans"}


@pytest.mark.parametrize(("form", "lands_on"), [("review", "item"), ("delete-account", "privacy")])
def test_switching_language_after_a_refused_form_shows_its_page_in_the_new_language(tenant_a, form, lands_on):
    item = catalog_item(tenant_a, title="Course", price=990, kind="course", lessons=1)
    learner = member(tenant_a)
    grant(tenant_a, learner, item=item)
    client = host_client("alpha.test", learner)
    if form == "review":
        refused = client.post(f"/item/{item.slug}/review/", {"body": "no rating"})
    else:
        refused = client.post("/account/privacy/delete/", {"password": "wrong"})
    assert refused.status_code == 400

    action, fields = _language_switch(refused.content.decode())
    client.handler.enforce_csrf_checks = True  # the form's own token passes, as in a browser
    response = client.post(action, fields, follow=True)

    assert response.status_code == 200
    expected = {"item": f"/item/{item.slug}/", "privacy": "/account/privacy/"}[lands_on]
    assert response.redirect_chain[-1][0] == expected
    assert '<html lang="zh-hans">' in response.content.decode()


def test_the_review_address_opened_directly_goes_to_the_item(tenant_a):
    item = catalog_item(tenant_a, title="Course", price=990)
    learner = member(tenant_a)
    grant(tenant_a, learner, item=item)
    response = host_client("alpha.test", learner).get(f"/item/{item.slug}/review/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/item/{item.slug}/", 302)]


def test_an_ordinary_page_switches_back_to_itself_with_its_query(tenant_a):
    catalog_item(tenant_a, title="Course", price=990)
    page = host_client("alpha.test").get("/browse/?q=course&sort=newest").content.decode()
    assert _language_switch(page)[1]["next"] == "/browse/?q=course&sort=newest"


def _enforcing(client):
    client.handler.enforce_csrf_checks = True
    return client


def test_a_visitor_switches_by_posting_the_menu_and_goes_back_to_the_page(tenant_a):
    client = _enforcing(host_client("alpha.test"))
    action, fields = _language_switch(client.get("/browse/?q=x").content.decode())
    assert "csrfmiddlewaretoken" not in fields  # pages for visitors are cached whole, a token would stop that
    response = client.post(action, fields)
    assert response.status_code == 302 and response.url == "/browse/?q=x"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert '<html lang="zh-hans">' in client.get("/browse/?q=x").content.decode()


def test_a_signed_in_persons_choice_is_posted_with_a_token_and_kept_on_their_account(tenant_a):
    learner = member(tenant_a, language="en")
    client = _enforcing(host_client("alpha.test", learner))
    action, fields = _language_switch(client.get("/browse/").content.decode())
    assert fields["csrfmiddlewaretoken"]
    response = client.post(action, fields)
    assert response.status_code == 302 and response.url == "/browse/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    learner.refresh_from_db()
    assert learner.language == "zh-hans"


def test_a_forged_post_without_the_token_saves_nothing_on_the_account(tenant_a):
    learner = member(tenant_a, language="en")
    client = _enforcing(host_client("alpha.test", learner))
    response = client.post("/language/", {"language": "zh-hans", "next": "/browse/"})
    assert response.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    learner.refresh_from_db()
    assert learner.language == "en"


def test_a_post_from_another_site_leaves_a_visitors_language_alone(tenant_a):
    client = _enforcing(host_client("alpha.test"))
    response = client.post("/language/", {"language": "zh-hans", "next": "/browse/"},
                           HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 302 and response.url == "/browse/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    same_site = client.post("/language/", {"language": "zh-hans"}, HTTP_ORIGIN="http://alpha.test")
    assert same_site.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_get_changes_nothing_and_still_lands_on_the_page(tenant_a, signed_in):
    """An old link or bookmark of the former GET menu, or a forged one: no cookie, nothing saved, no error page."""
    learner = member(tenant_a, language="en")
    client = host_client("alpha.test", learner if signed_in else None)
    response = client.get("/language/", {"language": "zh-hans", "next": "/browse/?q=x"})
    assert response.status_code == 302 and response.url == "/browse/?q=x"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    learner.refresh_from_db()
    assert learner.language == "en"
    assert client.get("/language/", {"language": "zh-hans"}).url == "/"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_next_on_another_site_is_refused_for_the_home_page(tenant_a, method):
    client = host_client("alpha.test")
    for target in ("https://evil.example/", "//evil.example/", "http://beta.test/"):
        response = getattr(client, method)("/language/", {"language": "zh-hans", "next": target})
        assert response.status_code == 302 and response.url == "/", target
