"""Switching the language on a page that answers a refused form lands on a page that exists."""

import html
import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def _language_switch(page: str) -> str:
    """The address the header's language switch goes to, as a browser builds it from the form."""
    form = re.search(r'<form class="lang-switch" action="([^"]+)" method="get">(.*?)</form>', page, re.S)
    target = re.search(r'name="next" type="hidden" value="([^"]*)"', form.group(2)).group(1)
    return f"{form.group(1)}?language=zh-hans&next={html.unescape(target)}"


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

    response = client.get(_language_switch(refused.content.decode()), follow=True)

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
    assert _language_switch(page).endswith("next=/browse/?q=course&sort=newest")
