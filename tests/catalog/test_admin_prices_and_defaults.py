"""The team's catalog lists show prices as money in the storefront's currency, the price inputs say how to type
them, and a new item starts in the storefront's language."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from catalog.models import Bundle
from payments.models import SubscriptionPlan
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def owner(tenant):
    return host_client("alpha.test", member(tenant, Role.OWNER, mfa=True))


def price_cell(page) -> str:
    return re.search(r'<td class="field-price_display">([^<]*)</td>', page.content.decode()).group(1)


@pytest.mark.parametrize(("currency", "price", "shown"), [
    ("CNY", 9900, "¥99.00"), ("JPY", 1200, "¥1,200"), ("KWD", 12500, "KD 12.500")])
def test_the_teams_item_list_shows_prices_as_money_not_minor_units(tenant_a, currency, price, shown):
    tenant_a.currency = currency
    tenant_a.save(update_fields=["currency"])
    catalog_item(tenant_a, title="Priced course", price=price)
    assert price_cell(owner(tenant_a).get(reverse("admin:catalog_contentitem_changelist"))) == shown


def test_bundle_and_plan_lists_show_prices_as_money(tenant_a):
    with scope(tenant=tenant_a):
        Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=19900)
        SubscriptionPlan.objects.create(tenant=tenant_a, name="Monthly", slug="monthly", price=3000)
    client = owner(tenant_a)
    assert price_cell(client.get(reverse("admin:catalog_bundle_changelist"))) == "¥199.00"
    assert price_cell(client.get(reverse("admin:payments_subscriptionplan_changelist"))) == "¥30.00"


@pytest.mark.parametrize(("currency", "help_text"), [
    ("CNY", "In CNY as prices are shown: 99.00 is ¥99.00."), ("JPY", "In whole JPY: 99 is ¥99."),
    ("KWD", "In KWD as prices are shown: 99.000 is KD 99.000.")])
def test_price_inputs_say_how_to_type_the_storefronts_currency(tenant_a, currency, help_text):
    tenant_a.currency = currency
    tenant_a.save(update_fields=["currency"])
    client = owner(tenant_a)
    for name in ("admin:catalog_contentitem_add", "admin:catalog_bundle_add", "admin:payments_subscriptionplan_add"):
        form = client.get(reverse(name)).context["adminform"].form
        assert form.fields["price"].help_text.startswith(help_text), (name, form.fields["price"].help_text)


def test_a_new_item_starts_in_the_storefronts_language(tenant_a):
    assert tenant_a.default_language == "en"  # the item model's own default is Chinese
    form = owner(tenant_a).get(reverse("admin:catalog_contentitem_add")).context["adminform"].form
    assert form["language"].value() == "en"
    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    form = owner(tenant_a).get(reverse("admin:catalog_contentitem_add") + "?language=en").context["adminform"].form
    assert form["language"].value() == "en"  # a link that chooses the language still does


@pytest.mark.parametrize(("currency", "typed", "stored"), [
    ("CNY", "99.5", 9950), ("CNY", "1299", 129900), ("JPY", "1200", 1200), ("KWD", "12.5", 12500)])
def test_the_team_types_prices_as_they_are_shown_and_they_are_stored_in_minor_units(tenant_a, currency, typed,
                                                                                  stored):
    """As refunds, imports and the storefront's price filters take them: a price typed in yuan is not read as fen."""
    tenant_a.currency = currency
    tenant_a.save(update_fields=["currency"])
    client = owner(tenant_a)
    course = catalog_item(tenant_a, title="Course", price=stored * 2)
    response = client.post(reverse("admin:catalog_bundle_add"), {
        "title": "Pack", "slug": "pack", "description": "", "price": typed, "items": [course.pk]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.get(slug="pack")
    assert bundle.price == stored
    form = client.get(reverse("admin:catalog_bundle_change", args=[bundle.pk])).context["adminform"].form
    assert str(form["price"].value()) == {9950: "99.50", 129900: "1299.00", 1200: "1200", 12500: "12.500"}[stored]


@pytest.mark.parametrize(("currency", "typed", "error"), [
    ("CNY", "99.999", "Ensure that there are no more than 2 decimal places."),
    ("JPY", "12.5", "Ensure that there are no more than 0 decimal places."),
    ("CNY", "-1", "Ensure this value is greater than or equal to 0."),
    ("CNY", "abc", "Enter a number.")])
def test_a_price_the_currency_cannot_hold_is_refused_at_its_field(tenant_a, currency, typed, error):
    tenant_a.currency = currency
    tenant_a.save(update_fields=["currency"])
    response = owner(tenant_a).post(reverse("admin:catalog_bundle_add"), {
        "title": "Pack", "slug": "pack", "description": "", "price": typed})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["price"] == [error]
    with scope(tenant=tenant_a):
        assert not Bundle.objects.exists()
