"""A checkbox sits before its label on the same line, on the sign-in page (allauth's form) and on a learner's
recommendation settings (our own), on a desktop and on a phone."""

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import TenantFactory, member

pytestmark = pytest.mark.browser


def assert_beside(page, label_text: str) -> None:
    label = page.get_by_text(label_text, exact=True).bounding_box()
    box = page.get_by_label(label_text).bounding_box()
    middle = box["y"] + box["height"] / 2
    assert label["y"] <= middle <= label["y"] + label["height"], (label, box)  # one line
    assert box["x"] + box["width"] <= label["x"], (label, box)  # the box first


@pytest.mark.parametrize("width", [1280, 390])
def test_checkboxes_sit_before_their_labels(browser, storefront_url, transactional_db, width):
    TenantFactory(slug="alpha", name="Alpha Academy", domain="alpha.localhost")
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(storefront_url("alpha.localhost", "/accounts/login/"))
        assert_beside(page, "Remember Me:")

        from marketplace.models import Tenant

        client = Client(HTTP_HOST="alpha.localhost")
        client.force_login(member(Tenant.objects.get(slug="alpha")))
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[
            settings.SESSION_COOKIE_NAME].value, "domain": "alpha.localhost", "path": "/"}])
        page.goto(storefront_url("alpha.localhost", "/recommendations/settings/"))
        assert_beside(page, "Personalised recommendations:")
    finally:
        context.close()
