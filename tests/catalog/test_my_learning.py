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


def test_a_free_preview_alone_does_not_list_a_paid_course_and_a_free_item_started_is_listed(tenant_a):
    """My learning lists what the learner can open as a whole: a preview lesson of a course they have not bought would
    give a "Resume" that leads to the paywall."""
    sampled = catalog_item(tenant_a, title="Sampled Course", kind="course", price=4900, lessons=3, preview_lessons=1)
    free = catalog_item(tenant_a, title="Free Primer")
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    with scope(tenant=tenant_a):
        preview = sampled.lessons.get(is_preview=True)
    done = client.post(f"/item/{sampled.slug}/progress/", {"lesson": preview.id, "completed": "1"}, follow=True)
    assert "Marked complete." in done.content.decode()
    client.post(f"/item/{free.slug}/progress/", {"position": "30", "completed": "0"})

    page = client.get("/learn/").content.decode()
    assert "Free Primer" in page and "Sampled Course" not in page

    grant(tenant_a, learner, item=sampled)  # bought: now listed, with the preview's progress
    page = client.get("/learn/").content.decode()
    card = page[page.index("Sampled Course"):].split("</li>", 1)[0]
    assert "Resume" in card and f"/item/{sampled.slug}/learn/" in card


def test_a_live_session_opens_its_page_with_the_time_and_join_link_not_a_lesson(tenant_a):
    from datetime import timedelta

    from django.utils import timezone

    session = catalog_item(tenant_a, title="Live Workshop", kind="live", price=1900,
                           starts_at=timezone.now() + timedelta(days=2), join_url="https://meet.example/ws")
    learner = member(tenant_a)
    grant(tenant_a, learner, item=session)
    page = host_client("alpha.test", learner).get("/learn/").content.decode()
    card = page[page.index("Live Workshop"):].split("</li>", 1)[0]
    assert f'href="/item/{session.slug}/"' in card and "/learn/" not in card and "<time" in card
