"""The signed-in learner's account menu leads to their own pages: orders, subscription, the promoter programme."""

import pytest
from django_scopes import scope

from payments.models import PaymentSettings, SubscriptionPlan
from tests.conftest import host_client
from tests.factories import member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db

PAGES = ("/", "/learn/", "/orders/", "/plans/")


def _menu(client, path: str) -> str:
    page = client.get(path).content.decode()
    return page[page.index('<details class="account-menu">'):page.index("</details>")]


def test_the_promoter_programme_is_in_the_menu_while_it_is_open(tenant_a):
    client = host_client("alpha.test", member(tenant_a))
    assert all('href="/promote/"' not in _menu(client, path) for path in PAGES)
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
    assert all('href="/promote/"' in _menu(client, path) for path in PAGES)
    assert client.get("/promote/").status_code == 200


def test_the_subscription_is_in_the_menu_once_the_learner_has_one(tenant_a, django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900, interval="month")
    client = host_client("alpha.test", member(tenant_a))
    assert 'href="/subscription/"' not in _menu(client, "/")
    with django_capture_on_commit_callbacks(execute=True):
        buy(client, "plan=all")
    assert all('href="/subscription/"' in _menu(client, path) for path in PAGES)
    assert 'href="/orders/"' in _menu(client, "/")


def test_a_visitor_who_is_not_signed_in_has_no_account_menu(tenant_a):
    page = host_client("alpha.test").get("/").content.decode()
    assert "account-menu" not in page and 'href="/accounts/login/"' in page
