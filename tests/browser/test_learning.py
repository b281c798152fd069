"""A learner's journey through a storefront's catalog, in Debian's Chromium: sign up, search in Chinese and in
English, filter, open an item, play a free preview, come back to where they stopped, confirm their email, buy the
course with the sandbox provider and resume learning. Screenshots of the home,
item and lesson pages at desktop and phone widths are written to the test artefacts."""

import io
import math
import re
import struct
import wave
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django_scopes import scope
from playwright.sync_api import expect

from catalog.models import Category, LessonProgress
from tests.factories import TenantFactory, catalog_creator, catalog_item

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _tone(seconds: int = 6, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                 for i in range(seconds * rate)))
    return buffer.getvalue()


@pytest.fixture
def shop(transactional_db):
    tenant = TenantFactory(slug="alpha", name="Alpha Academy", primary_color="#0f766e", domain="alpha.localhost")
    ada = catalog_creator(tenant, "Ada Lovelace")
    course = catalog_item(tenant, title="Python for Data Analysis", subtitle="Python 数据分析", kind="course",
                          price=4900, lessons=3, preview_lessons=1, creators=[ada], is_featured=True,
                          description="Learn **pandas** and plotting.\n\n- Load data\n- Clean it\n- Chart it")
    catalog_item(tenant, title="数据科学入门", subtitle="从零开始的数据思维", kind="article", price=0,
                 language="zh-hans", body="数据科学是……")
    catalog_item(tenant, title="Watercolour Basics", kind="video", price=1900)
    with scope(tenant=tenant):
        category = Category.objects.create(tenant=tenant, name="Data Science", slug="data-science")
        course.categories.add(category)
        preview = course.lessons.order_by("position").first()
        preview.kind = "audio"
        preview.media.save("preview.wav", ContentFile(_tone()), save=False)
        preview.save()
    return tenant, course, preview


def test_learner_searches_filters_and_plays_a_free_preview(browser, storefront_url, shop, artifacts_dir):
    tenant, course, preview = shop
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(storefront_url("alpha.localhost"))
        page.get_by_role("link", name="Create your free account").click()
        page.get_by_label("Email").fill("lin@example.com")
        page.get_by_label(re.compile(r"^Password:?$")).fill("a long and unusual passphrase 42")
        page.get_by_label("Password (again)").fill("a long and unusual passphrase 42")
        page.keyboard.press("Enter")
        page.wait_for_url(storefront_url("alpha.localhost"))

        # Search in Chinese, then in English, from the header's search box.
        search = page.get_by_role("search").first.get_by_label("Search")
        search.fill("数据")
        search.press("Enter")
        results = page.locator("#results")
        expect(results.get_by_role("link", name="数据科学入门")).to_be_visible()
        expect(results.get_by_role("link", name="Watercolour Basics")).to_have_count(0)
        search = page.get_by_role("search").first.get_by_label("Search")
        search.fill("python")
        search.press("Enter")
        expect(page.locator("#results").get_by_role("link", name="Python for Data Analysis")).to_be_visible()

        # Filter by type.
        page.goto(storefront_url("alpha.localhost", "/browse/"))
        page.get_by_label("Type").select_option("video")
        page.get_by_role("button", name="Apply").click()
        results = page.locator("#results")
        expect(results.get_by_role("link", name="Watercolour Basics")).to_be_visible()
        expect(results.get_by_role("link", name="Python for Data Analysis")).to_have_count(0)

        # The item page: a paid course with one free preview lesson.
        page.goto(storefront_url("alpha.localhost", "/browse/?category=data-science"))
        page.locator("#results").get_by_role("link", name="Python for Data Analysis").click()
        expect(page.get_by_role("heading", level=1, name="Python for Data Analysis")).to_be_visible()
        expect(page.get_by_text("This item is for learners who have bought it")).to_be_visible()
        expect(page.get_by_role("link", name="Lesson 2")).to_have_count(0)  # locked lessons are not links
        page.get_by_role("link", name="Lesson 1").click()

        # Play the preview; the position is saved and the next visit resumes there.
        player = page.locator("#player")
        player.wait_for()
        page.evaluate("document.getElementById('player').play()")
        page.wait_for_function("document.getElementById('player').currentTime > 2.5")
        with page.expect_response(re.compile(r"/progress/$")):
            page.evaluate("document.getElementById('player').pause()")
        with scope(tenant=tenant):
            saved = LessonProgress.objects.get(lesson=preview, user__email="lin@example.com").position_seconds
        assert saved >= 2
        page.reload()
        page.wait_for_function(f"document.getElementById('player').currentTime >= {saved}")

        # Confirm the email address from the message the sign-up sent, then buy the course with the sandbox.
        link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[-1].body).group(0)
        page.goto(storefront_url("alpha.localhost", urlsplit(link).path))
        page.get_by_role("button", name="Confirm").click()
        page.goto(storefront_url("alpha.localhost", f"/item/{course.slug}/"))
        page.get_by_role("link", name="Buy now").click()
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
        page.get_by_role("button", name="Pay", exact=True).click()
        expect(page.get_by_text("Payment received")).to_be_visible()
        page.get_by_role("link", name="Start learning").click()
        # The resume point is the preview lesson; the paid lessons are open now.
        expect(page.locator("h1")).to_have_text("Lesson 1")
        page.get_by_role("link", name="Lesson 2").first.click()
        page.get_by_role("button", name="Mark complete and continue").click()
        page.goto(storefront_url("alpha.localhost", "/learn/"))
        expect(page.get_by_role("link", name="Python for Data Analysis")).to_be_visible()
        page.get_by_role("link", name="Resume").click()
        expect(page.locator("h1")).to_have_text("Lesson 3")
    finally:
        context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_pages_fit_the_screen_and_are_captured(browser, storefront_url, shop, artifacts_dir, viewport):
    _tenant, course, preview = shop
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-US")
    page = context.new_page()
    try:
        for name, path in (("home", "/"), ("item", f"/item/{course.slug}/"),
                           ("lesson", f"/item/{course.slug}/lesson/{preview.id}/")):
            response = page.goto(storefront_url("alpha.localhost", path))
            assert response.status == 200
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (name, viewport)
            # Every image says what it shows (or is marked decorative).
            assert page.locator("img:not([alt])").count() == 0
            page.screenshot(path=str(artifacts_dir / f"{name}-{viewport}.png"), full_page=True)
            assert (artifacts_dir / f"{name}-{viewport}.png").stat().st_size > 1000
    finally:
        context.close()
