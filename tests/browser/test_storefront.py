"""The storefront as a learner sees it, in Debian's Chromium."""

import re

import pytest

from accounts.models import User
from tests.factories import TenantFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def schools(transactional_db):
    # <slug>.localhost resolves to loopback in Chromium, so these need no DNS or hosts file.
    alpha = TenantFactory(slug="alpha", name="Alpha Academy", primary_color="#0f766e", domain="alpha.localhost")
    beta = TenantFactory(slug="beta", name="Beta 书院", primary_color="#be123c", domain="beta.localhost")
    return alpha, beta


def test_each_storefront_wears_its_own_brand(page, storefront_url, schools):
    page.goto(storefront_url("alpha.localhost"))
    assert page.title() == "Alpha Academy"
    assert page.locator("header .brand").inner_text().strip() == "Alpha Academy"
    brand = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()")
    assert brand == "#0f766e"
    assert "Beta" not in page.content()

    page.goto(storefront_url("beta.localhost"))
    assert page.locator("header .brand").inner_text().strip() == "Beta 书院"


def test_language_switch_to_simplified_chinese(page, storefront_url, schools):
    page.goto(storefront_url("alpha.localhost"))
    assert page.get_by_role("link", name="Sign in").is_visible()
    page.get_by_label("Language").select_option("zh-hans")
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.get_by_role("link", name="登录").is_visible()


def test_unknown_storefront_page(page, storefront_url, schools):
    response = page.goto(storefront_url("ghost.localhost"))
    assert response.status == 404
    assert page.get_by_role("heading", name="No such storefront").is_visible()


def test_learner_signs_up_with_the_keyboard_on_a_phone(browser, storefront_url, schools):
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(storefront_url("alpha.localhost"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_role("link", name="Create your free account").click()
        page.get_by_label("Email").fill("mei@example.com")
        page.get_by_label(re.compile(r"^Password:?$")).fill("a long and unusual passphrase 42")
        page.get_by_label("Password (again)").fill("a long and unusual passphrase 42")
        page.keyboard.press("Enter")
        page.wait_for_url(storefront_url("alpha.localhost"))
        assert page.get_by_role("navigation").get_by_text("mei@example.com").is_visible()
    finally:
        context.close()
    assert User.objects.filter(email="mei@example.com").exists()
