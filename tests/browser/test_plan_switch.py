"""A subscriber switches from the monthly plan to the yearly one in Debian's Chromium, on a phone: the plans page
offers the switch, and their subscription page says what happens when the month ends. Screenshot in the test
artefacts."""

import pytest
from django.conf import settings
from django.test import Client
from django_scopes import scope
from playwright.sync_api import expect

from payments.models import Subscription, SubscriptionPlan
from tests.factories import TenantFactory, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.browser


@pytest.fixture
def subscriber(transactional_db):
    tenant = TenantFactory(slug="alpha", name="Alpha Academy", domain="alpha.localhost")
    with scope(tenant=tenant):
        SubscriptionPlan.objects.create(tenant=tenant, name="Monthly", slug="monthly", price=2900, interval="month")
        SubscriptionPlan.objects.create(tenant=tenant, name="Yearly", slug="yearly", price=29000, interval="year")
    learner = member(tenant)
    client = Client(HTTP_HOST="alpha.localhost")
    client.force_login(learner)
    buy(client, "plan=monthly")
    return tenant, learner, client.cookies[settings.SESSION_COOKIE_NAME].value


def test_a_subscriber_switches_to_the_yearly_plan(browser, storefront_url, subscriber, artifacts_dir):
    tenant, learner, session = subscriber
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "domain": "alpha.localhost",
                          "path": "/"}])
    page = context.new_page()
    try:
        page.goto(storefront_url("alpha.localhost", "/plans/"))
        monthly = page.locator(".card").filter(has_text="Monthly")
        expect(monthly.get_by_text("Your plan")).to_be_visible()
        expect(monthly.get_by_role("button")).to_have_count(0)
        page.locator(".card").filter(has_text="Yearly").get_by_role(
            "button", name="Switch at the end of the period").click()

        expect(page.get_by_text("From the end of this period you will be on Yearly.")).to_be_visible()
        expect(page.get_by_text("Switches to Yearly on")).to_contain_text("its first period costs ¥290.00")
        expect(page.locator(".card").filter(has_text="Yearly")).to_contain_text("Chosen for the next period")
        page.screenshot(path=artifacts_dir / "subscription-switch-phone.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        page.get_by_role("button", name="Stay on Monthly").click()
        expect(page.get_by_text("Your next period, ¥29.00, is due on")).to_be_visible()
        with scope(tenant=tenant):
            assert Subscription.objects.get(user=learner).switch_to is None
    finally:
        context.close()
