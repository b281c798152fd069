"""What learners do on the storefront lands in the event store: views, previews, progress, ratings, purchases."""

import json
import re
import uuid

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Membership
from catalog.models import Bundle
from payments import services as payments
from payments.models import Order, Payment
from payments.providers.sandbox import HEADER, SandboxProvider
from recommender.events import event_record, events_record, purchases_record
from recommender.models import Event
from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def events_of(tenant, user=None, kind=None) -> list[tuple]:
    with scope(tenant=tenant):
        rows = Event.objects.all()
        if user is not None:
            rows = rows.filter(user=user)
        if kind is not None:
            rows = rows.filter(kind=kind)
        return list(rows.order_by("occurred_at", "id").values_list("kind", "item_id", "value"))


def buy(client, query: str):
    """Checkout page → pay → the sandbox's hosted page → "pay". Returns the hosted page's address."""
    page = client.get(f"/checkout/?{query}")
    assert page.status_code == 200, page.content.decode()[:500]
    key = re.search(r'name="key" value="([0-9a-f]+)"', page.content.decode()).group(1)
    response = client.post("/checkout/", {**dict([query.split("=")]), "key": key, "pay": "1"})
    assert response.status_code == 302
    hosted = response.url
    assert client.post(hosted, {"action": "pay"}).status_code == 302
    return hosted


def test_a_signed_in_item_view_is_recorded_and_an_anonymous_one_is_not(tenant_a):
    item = catalog_item(tenant_a, title="Statistics Basics")
    learner = member(tenant_a)

    assert host_client("alpha.test").get(f"/item/{item.slug}/").status_code == 200
    assert events_of(tenant_a) == []

    assert host_client("alpha.test", learner).get(f"/item/{item.slug}/").status_code == 200
    assert events_of(tenant_a, learner) == [("view", item.pk, None)]
    with scope(tenant=tenant_a):
        event = Event.objects.get()
        assert event.source == "storefront" and event.tenant_id == tenant_a.pk


def test_opening_a_free_preview_lesson_of_an_item_not_owned_records_a_preview(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=3, preview_lessons=1)
    with scope(tenant=tenant_a):
        preview = course.lessons.get(is_preview=True)
    learner = member(tenant_a)
    assert host_client("alpha.test", learner).get(f"/item/{course.slug}/lesson/{preview.pk}/").status_code == 200
    assert events_of(tenant_a, learner) == [("preview", course.pk, None)]


def test_an_owner_opening_a_preview_lesson_is_not_a_preview(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=3, preview_lessons=1)
    with scope(tenant=tenant_a):
        preview = course.lessons.get(is_preview=True)
    owner = member(tenant_a)
    grant(tenant_a, owner, item=course)
    assert host_client("alpha.test", owner).get(f"/item/{course.slug}/lesson/{preview.pk}/").status_code == 200
    assert events_of(tenant_a, owner, kind="preview") == []


def test_progress_through_the_player_records_progress_then_one_completion(tenant_a):
    course = catalog_item(tenant_a, title="Two Lessons", kind="course", price=4900, lessons=2)
    with scope(tenant=tenant_a):
        first, second = course.lessons.order_by("position")
    learner = member(tenant_a)
    grant(tenant_a, learner, item=course)
    client = host_client("alpha.test", learner)
    url = f"/item/{course.slug}/progress/"
    json_reply = {"HTTP_ACCEPT": "application/json"}

    reply = client.post(url, {"lesson": first.pk, "position": "42.5"}, **json_reply)
    assert reply.json() == {"percent": 0, "completed": False}
    assert events_of(tenant_a, learner) == [("progress", course.pk, 0.0)]

    reply = client.post(url, {"lesson": first.pk, "position": "300", "completed": "1"}, **json_reply)
    assert reply.json() == {"percent": 50, "completed": False}
    # The position moving on alone says nothing new.
    client.post(url, {"lesson": first.pk, "position": "310"}, **json_reply)
    assert events_of(tenant_a, learner) == [("progress", course.pk, 0.0), ("progress", course.pk, 50.0)]

    reply = client.post(url, {"lesson": second.pk, "position": "60", "completed": "true"}, **json_reply)
    assert reply.json() == {"percent": 100, "completed": True}
    client.post(url, {"lesson": second.pk, "position": "61", "completed": "true"}, **json_reply)
    assert events_of(tenant_a, learner) == [("progress", course.pk, 0.0), ("progress", course.pk, 50.0),
                                            ("complete", course.pk, None)]


def test_marking_an_article_complete_records_a_completion(tenant_a):
    article = catalog_item(tenant_a, title="Free Article")
    learner = member(tenant_a)
    response = host_client("alpha.test", learner).post(f"/item/{article.slug}/progress/", {"completed": "on"})
    assert response.status_code == 302
    assert [kind for kind, _item, _value in events_of(tenant_a, learner)] == ["complete"]


def test_a_review_records_a_rating_with_its_stars(tenant_a):
    article = catalog_item(tenant_a, title="Free Article")
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    response = client.post(f"/item/{article.slug}/review/", {"rating": "4", "body": "Clear and short."})
    assert response.status_code == 302
    assert events_of(tenant_a, learner, kind="rate") == [("rate", article.pk, 4.0)]
    client.post(f"/item/{article.slug}/review/", {"rating": "2", "body": "On second thought."})
    assert events_of(tenant_a, learner, kind="rate") == [("rate", article.pk, 4.0), ("rate", article.pk, 2.0)]


def test_a_refused_review_records_nothing(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=4900, lessons=1)
    learner = member(tenant_a)
    response = host_client("alpha.test", learner).post(f"/item/{course.slug}/review/", {"rating": "5"})
    assert response.status_code == 400
    assert events_of(tenant_a, learner, kind="rate") == []


def test_a_paid_checkout_records_one_purchase_and_a_replayed_success_adds_none(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=10000, lessons=1)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, f"item={course.slug}")
    assert events_of(tenant_a, learner, kind="purchase") == [("purchase", course.pk, None)]
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        payment = Payment.objects.get(order=order)
        assert Event.objects.get(kind="purchase").context == {"order": order.number}

    # The provider reports the success again (a new event id, through the real webhook path) ...
    sandbox = SandboxProvider()
    body = sandbox.event_body(payment=payment, outcome="succeeded")
    response = client.post("/payments/webhooks/sandbox/", body, content_type="application/json",
                           headers={HEADER: sandbox.signature(body)})
    assert response.status_code == 200, response.content
    # ... and the same webhook is delivered twice.
    again = client.post("/payments/webhooks/sandbox/", body, content_type="application/json",
                        headers={HEADER: sandbox.signature(body)})
    assert again.status_code == 200 and json.loads(again.content)["result"] == "duplicate"
    # Even recording the paid order's purchases a second time adds nothing.
    with scope(tenant=tenant_a):
        order.refresh_from_db()
        purchases_record(user=learner, items=[course], order=order)
    assert events_of(tenant_a, learner, kind="purchase") == [("purchase", course.pk, None)]


def test_a_replayed_payment_success_service_call_adds_no_purchase(tenant_a):
    from marketplace.tenancy import tenant_phase

    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=10000, lessons=1)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with tenant_phase(tenant_a):
        payment = Payment.objects.get(order__user=learner)
        payments.payment_succeed(payment=payment)
    assert len(events_of(tenant_a, learner, kind="purchase")) == 1


def test_a_bundle_purchase_records_one_purchase_per_item_in_it(tenant_a):
    one = catalog_item(tenant_a, title="One", price=3000)
    two = catalog_item(tenant_a, title="Two", price=5000)
    other = catalog_item(tenant_a, title="Not In It", price=5000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one, two])
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), "bundle=both")
    purchases = events_of(tenant_a, learner, kind="purchase")
    assert sorted(purchases) == sorted([("purchase", one.pk, None), ("purchase", two.pk, None)])
    assert other.pk not in {item for _kind, item, _value in purchases}


def test_a_declined_payment_records_no_purchase(tenant_a):
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=10000, lessons=1)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get(f"/checkout/?item={course.slug}")
    key = re.search(r'name="key" value="([0-9a-f]+)"', page.content.decode()).group(1)
    hosted = client.post("/checkout/", {"item": course.slug, "key": key, "pay": "1"}).url
    client.post(hosted, {"action": "fail"})
    assert events_of(tenant_a, learner, kind="purchase") == []


def test_a_duplicate_event_id_is_stored_once(tenant_a):
    item = catalog_item(tenant_a, title="Item")
    learner = member(tenant_a)
    event_id = uuid.uuid4()

    def event(kind):
        return Event(tenant=tenant_a, user=learner, item=item, kind=kind, event_id=event_id,
                     occurred_at=timezone.now())

    with scope(tenant=tenant_a):
        events_record(events=[event("view")])
        events_record(events=[event("view"), Event(tenant=tenant_a, user=learner, item=item, kind="share",
                                                   occurred_at=timezone.now())])
        event_record(user=learner, item=item, kind="preview", event_id=event_id)
        assert sorted(Event.objects.values_list("kind", flat=True)) == ["share", "view"]
        assert Event.objects.filter(event_id=event_id).count() == 1


def test_the_same_event_id_on_two_storefronts_is_two_events(tenant_a, tenant_b):
    learner = member(tenant_a)
    alpha_item = catalog_item(tenant_a, title="Alpha Item")
    beta_item = catalog_item(tenant_b, title="Beta Item")
    event_id = uuid.uuid4()
    with scopes_disabled():
        events_record(events=[Event(tenant=tenant_a, user=learner, item=alpha_item, kind="view", event_id=event_id,
                                    occurred_at=timezone.now()),
                              Event(tenant=tenant_b, user=learner, item=beta_item, kind="view", event_id=event_id,
                                    occurred_at=timezone.now())])
        assert Event.objects.filter(event_id=event_id).count() == 2


def test_events_belong_to_their_storefront(tenant_a, tenant_b):
    alpha_item = catalog_item(tenant_a, title="Alpha Item")
    beta_item = catalog_item(tenant_b, title="Beta Item")
    learner = member(tenant_a)
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_b, user=learner, role="learner")
    host_client("alpha.test", learner).get(f"/item/{alpha_item.slug}/")
    host_client("beta.test", learner).get(f"/item/{beta_item.slug}/")
    assert events_of(tenant_a) == [("view", alpha_item.pk, None)]
    assert events_of(tenant_b) == [("view", beta_item.pk, None)]
    with scope(tenant=tenant_b):
        assert not Event.objects.filter(item=alpha_item).exists()
        assert not Event.objects.filter(tenant=tenant_a).exists()
    # An item of another storefront cannot be opened there, so nothing is recorded either.
    assert host_client("beta.test", learner).get(f"/item/{alpha_item.slug}/").status_code == 404
    assert events_of(tenant_b) == [("view", beta_item.pk, None)]


@pytest.mark.parametrize("query", [{"occurred_at__year": "99999999999"},
                                   {"occurred_at__year": "9999", "occurred_at__month": "12", "occurred_at__day": "31"}])
def test_the_event_admins_date_drilldown_out_of_a_dates_range_is_a_bad_lookup(tenant_a, query):
    from accounts.models import Role

    client = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    client.raise_request_exception = False
    response = client.get("/admin/recommender/event/", query)
    assert response.status_code == 302 and response.url.endswith("?e=1")
