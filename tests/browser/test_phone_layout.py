"""A signed-in learner's pages on a phone (390 × 844), in Debian's Chromium: nothing runs off the side of the screen,
search results start on the first screen, and the account's links wait in a menu. Screenshots go to the test
artefacts."""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from tests.factories import TenantFactory, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def learner_with_orders(transactional_db):
    tenant = TenantFactory(slug="alpha", name="Alpha Academy", primary_color="#0f766e", domain="alpha.localhost")
    for n in range(6):
        catalog_item(tenant, title=f"Python for Data Analysis, part {n + 1}", kind="course", price=4900, lessons=2)
    learner = member(tenant, email="a.rather.long.address@example.com")
    client = Client(HTTP_HOST="alpha.localhost")
    client.force_login(learner)
    buy(client, "item=python-for-data-analysis-part-1-0")
    buy(client, "item=python-for-data-analysis-part-2-1", action="cancel")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def phone(browser, learner_with_orders):
    def open_phone(language: str = "en"):
        context = browser.new_context(viewport=PHONE, locale="en-US")
        context.add_cookies([
            {"name": settings.SESSION_COOKIE_NAME, "value": learner_with_orders, "domain": "alpha.localhost",
             "path": "/"},
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "domain": "alpha.localhost", "path": "/"},
        ])
        contexts.append(context)
        return context.new_page()

    contexts = []
    yield open_phone
    for context in contexts:
        context.close()


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_orders_fit_a_phone_with_each_status_on_one_line(phone, storefront_url, artifacts_dir, language):
    page = phone(language)
    page.goto(storefront_url("alpha.localhost", "/orders/"))
    assert _fits(page)
    statuses = page.locator("td.status")
    expect(statuses).to_have_count(2)
    for i in range(2):
        box = statuses.nth(i).bounding_box()
        line = page.evaluate("el => parseFloat(getComputedStyle(el).lineHeight) || 24",
                             statuses.nth(i).element_handle())
        assert box["x"] + box["width"] <= PHONE["width"]
        assert box["height"] < 2 * line, (language, box)
    page.screenshot(path=str(artifacts_dir / f"orders-phone-{language}.png"), full_page=True)


def test_search_results_start_on_the_first_screen_of_a_phone(phone, storefront_url, artifacts_dir):
    page = phone()
    page.goto(storefront_url("alpha.localhost", "/browse/?q=python&sort=newest"))
    assert _fits(page)
    first = page.locator("#results .item-card").first
    expect(first).to_be_visible()
    assert first.bounding_box()["y"] < PHONE["height"] - 100  # its picture and title, not just its top edge
    # The filters are folded, one tap away.
    expect(page.get_by_label("Type")).to_be_hidden()
    page.get_by_text("Filters and sort").click()
    expect(page.get_by_label("Type")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "browse-phone.png"), full_page=True)


def test_a_long_pasted_search_still_fits_a_phone(phone, storefront_url):
    """A link pasted into the search box is one long word: it wraps, and the page keeps to the screen's width."""
    page = phone()
    page.goto(storefront_url("alpha.localhost", "/browse/?q=https://example.com/some/very/long/pasted/link/"
                                                "that-a-learner-copied-from-a-chat"))
    expect(page.locator(".result-count")).to_contain_text("that-a-learner-copied")
    assert _fits(page)


def test_the_account_links_wait_in_a_menu_on_a_phone(phone, storefront_url, artifacts_dir):
    page = phone()
    page.goto(storefront_url("alpha.localhost", "/"))
    assert _fits(page)
    header = page.locator("header.site").bounding_box()
    assert header["height"] < 200, header
    sign_out = page.get_by_role("link", name="Sign out")
    expect(sign_out).to_be_hidden()
    page.get_by_text("a.rather.long.address@example.com").click()
    expect(sign_out).to_be_visible()
    expect(page.get_by_role("link", name="My orders")).to_be_visible()
    assert _fits(page)
    page.screenshot(path=str(artifacts_dir / "account-menu-phone.png"), full_page=True)


def test_the_filters_stay_open_on_a_wide_screen(browser, storefront_url, learner_with_orders):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        page.goto(storefront_url("alpha.localhost", "/browse/?q=python"))
        expect(page.get_by_label("Type")).to_be_visible()
        expect(page.get_by_text("Filters and sort")).to_be_hidden()
    finally:
        context.close()
