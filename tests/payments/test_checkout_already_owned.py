"""What a learner already has is not offered again: the bundle page opens a bundle they have everything in, and the
checkout page says at once (before any Pay button) what paying would refuse, with the way to what they have."""

import re

import pytest
from django_scopes import scope

from catalog.models import Bundle
from payments.models import Order, Subscription, SubscriptionPlan
from tests.conftest import host_client
from tests.factories import catalog_item, grant, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db

PAY_BUTTON = re.compile(r'<button type="submit" name="pay"')


@pytest.fixture
def bundle(tenant_a):
    one = catalog_item(tenant_a, title="Statistics One", price=3000)
    two = catalog_item(tenant_a, title="Statistics Two", kind="course", price=5000, lessons=1)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Statistics Pack", slug="stats", price=6000,
                                       is_published=True)
        bundle.items.set([one, two])
    return bundle, one, two


def assert_bundle_owned(client, bundle, one, two):
    page = client.get("/bundles/stats/").content.decode()
    assert "You have everything in this bundle." in page
    assert "Buy the bundle" not in page and "¥60.00" not in page
    # Each item opens from here, named for screen readers.
    assert f'href="/item/{one.slug}/learn/">Open<span class="skip"> Statistics One</span></a>' in page
    assert f'href="/item/{two.slug}/learn/">Open<span class="skip"> Statistics Two</span></a>' in page

    checkout = client.get("/checkout/?bundle=stats")
    body = checkout.content.decode()
    assert checkout.status_code == 200
    assert "You already have everything in this bundle." in body
    assert '<a href="/bundles/stats/">Open the items of this bundle</a>' in body
    assert not PAY_BUTTON.search(body) and "Pay ¥60.00" not in body


def test_a_bundle_bought_is_opened_not_offered_again(tenant_a, bundle):
    bundle, one, two = bundle
    learner = member(tenant_a)
    grant(tenant_a, learner, bundle=bundle)
    assert_bundle_owned(host_client("alpha.test", learner), bundle, one, two)


def test_a_bundle_whose_items_were_bought_one_by_one_is_opened_not_offered(tenant_a, bundle):
    bundle, one, two = bundle
    learner = member(tenant_a)
    grant(tenant_a, learner, item=one)
    grant(tenant_a, learner, item=two)
    assert_bundle_owned(host_client("alpha.test", learner), bundle, one, two)


def test_a_bundle_a_subscription_covers_is_opened_not_offered(tenant_a, bundle):
    bundle, one, two = bundle
    learner = member(tenant_a)
    grant(tenant_a, learner, whole_catalog=True, source="subscription")
    assert_bundle_owned(host_client("alpha.test", learner), bundle, one, two)


def test_a_bundle_partly_owned_is_still_sold(tenant_a, bundle):
    bundle, one, two = bundle
    learner = member(tenant_a)
    grant(tenant_a, learner, item=one)
    client = host_client("alpha.test", learner)
    page = client.get("/bundles/stats/").content.decode()
    assert "Buy the bundle" in page and "You have everything" not in page
    # What they own opens from the bundle's page; the rest is the bundle's to sell.
    assert f'href="/item/{one.slug}/learn/">Open' in page and f'href="/item/{two.slug}/learn/">Open' not in page
    assert PAY_BUTTON.search(client.get("/checkout/?bundle=stats").content.decode())


def test_checkout_for_an_item_owned_says_so_at_once_and_links_to_it(tenant_a, bundle):
    _, one, _ = bundle
    learner = member(tenant_a)
    grant(tenant_a, learner, item=one)
    client = host_client("alpha.test", learner)
    body = client.get(f"/checkout/?item={one.slug}").content.decode()
    assert "You already have this item." in body
    assert f'<a href="/item/{one.slug}/">Open the item</a>' in body
    assert not PAY_BUTTON.search(body)
    # Paying is refused as before.
    again = client.post("/checkout/", {"item": one.slug, "key": "again", "pay": "1"})
    assert again.status_code == 400 and "You already have this item." in again.content.decode()
    with scope(tenant=tenant_a):
        assert not Order.objects.exists()


def test_a_plan_is_not_offered_to_a_subscriber_whose_subscription_ends_at_the_period_end(tenant_a):
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900, interval="month")
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access yearly", slug="year", price=29000,
                                        interval="year")
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "plan=all")
    assert client.post("/subscription/", {"action": "cancel"}).status_code == 302
    with scope(tenant=tenant_a):
        assert Subscription.objects.get(user=learner).cancel_at_period_end

    body = client.get("/checkout/?plan=year").content.decode()
    assert "You already have a subscription." in body
    assert '<a href="/subscription/">See your subscription</a>' in body
    assert not PAY_BUTTON.search(body)
    refused = client.post("/checkout/", {"plan": "year", "key": "second", "pay": "1"})
    assert refused.status_code == 400 and "You already have a subscription." in refused.content.decode()


def test_someone_who_owns_nothing_still_sees_the_price_and_pay(tenant_a, bundle):
    _, one, _ = bundle
    client = host_client("alpha.test", member(tenant_a))
    body = client.get(f"/checkout/?item={one.slug}").content.decode()
    assert PAY_BUTTON.search(body) and "Pay ¥30.00" in body and "You already have" not in body
    assert "Buy the bundle" in client.get("/bundles/stats/").content.decode()
