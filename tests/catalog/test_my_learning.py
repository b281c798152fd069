"""My learning: what the learner bought or started, also once a subscription opens the whole catalog."""

import pytest
from django_scopes import scope

from catalog.models import Bundle
from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def test_subscribing_to_the_whole_catalog_keeps_what_was_bought_and_started(tenant_a):
    bought = catalog_item(tenant_a, title="Bought Course", price=4900, kind="course", lessons=2)
    in_bundle = catalog_item(tenant_a, title="Bundled Article", price=900)
    started = catalog_item(tenant_a, title="Started Through The Subscription", price=1900)
    catalog_item(tenant_a, title="Never Opened", price=2900)
    learner = member(tenant_a)
    grant(tenant_a, learner, item=bought)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Pack", slug="pack", price=500, is_published=True)
        bundle.items.add(in_bundle)
    grant(tenant_a, learner, bundle=bundle)
    grant(tenant_a, learner, whole_catalog=True, source="subscription")
    client = host_client("alpha.test", learner)
    client.post(f"/item/{started.slug}/progress/", {"position": "30", "completed": "0"})

    page = client.get("/learn/").content.decode()

    assert "Nothing here yet." not in page
    for title in ("Bought Course", "Bundled Article", "Started Through The Subscription"):
        assert title in page
    # The subscription opens everything; the list stays what the learner chose.
    assert "Never Opened" not in page


def test_a_finished_item_offers_to_open_it_again_not_to_resume(tenant_a):
    done = catalog_item(tenant_a, title="Finished Article", price=900)
    going = catalog_item(tenant_a, title="Half Read", kind="course", price=900, lessons=2)
    learner = member(tenant_a)
    grant(tenant_a, learner, item=done)
    grant(tenant_a, learner, item=going)
    client = host_client("alpha.test", learner)
    client.post(f"/item/{done.slug}/progress/", {"completed": "1"})
    with scope(tenant=tenant_a):
        first = going.lessons.order_by("position").first()
    client.post(f"/item/{going.slug}/progress/", {"lesson": first.id, "completed": "1"})

    page = client.get("/learn/").content.decode()
    cards = {title: page[page.index(title):].split("</li>", 1)[0] for title in ("Finished Article", "Half Read")}
    assert "Open again" in cards["Finished Article"] and "Resume" not in cards["Finished Article"]
    assert "Resume" in cards["Half Read"]
