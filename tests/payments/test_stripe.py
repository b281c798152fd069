"""Paying with Stripe Checkout against a local stand-in that speaks Stripe's API and signs webhooks as Stripe does.

The stand-in delivers its events over HTTP to the running app (``live_server``) on the storefront's host, so the
webhook view, the signature check, deduplication and the payment services all run as in production.
"""

import http.client
import json
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role
from catalog.access import can_access
from marketplace.errors import ApplicationError
from payments import services
from payments.ledger import balances, ledger_verify
from payments.models import Entitlement, JournalEntry, Order, Payment, Refund, WebhookEvent
from tests.factories import TenantFactory, catalog_creator, catalog_item, member
from tests.support.stripe_server import StripeServer

HOOK = "/payments/webhooks/stripe/"


@pytest.fixture
def stripe_api():
    with StripeServer() as server:
        yield server


def stripe_storefront(settings, stripe_api, live_server, **tenant):
    """A storefront (``TenantFactory`` fields, ``domain`` among them) selling through the Stripe stand-in, whose
    webhooks reach the running app on the storefront's host."""
    settings.STRIPE_SECRET_KEY = stripe_api.secret_key
    settings.STRIPE_WEBHOOK_SECRET = stripe_api.webhook_secret
    settings.STRIPE_API_BASE = stripe_api.url
    stripe_api.set_webhook(live_server.url + HOOK, host_header=tenant["domain"])
    return TenantFactory(**tenant)


@pytest.fixture
def alpha(transactional_db, settings, stripe_api, live_server):
    return stripe_storefront(settings, stripe_api, live_server, slug="alpha", name="Alpha Academy",
                             domain="alpha.localhost")


@pytest.fixture
def course(alpha):
    ada = catalog_creator(alpha, "Ada")
    return catalog_item(alpha, title="Paid Course", kind="course", price=10000, lessons=1, creators=[ada])


def start(tenant, learner, item, key="attempt-1"):
    with scope(tenant=tenant):
        return services.checkout_start(tenant=tenant, user=learner, idempotency_key=key, item=item,
                                       provider_name="stripe")


def state(tenant, learner):
    """What the sale left behind: order status, entitlements, sale entries, recorded events."""
    with scope(tenant=tenant):
        order = Order.objects.get(user=learner)
        return (order.status, Entitlement.objects.filter(user=learner, revoked_at=None).count(),
                JournalEntry.objects.filter(order=order, kind="sale").count(), WebhookEvent.objects.count())


@pytest.fixture
def paid(alpha, course, stripe_api):
    learner = member(alpha)
    started = start(alpha, learner, course)
    result = stripe_api.complete(started.payment.provider_ref)
    assert result["delivery"] == {"status": 200, "body": {"result": "applied"}}
    with scope(tenant=alpha):
        return Payment.objects.get(pk=started.payment.pk), result["event"]


def test_checkout_creates_a_checkout_session_and_sends_the_learner_to_it(alpha, course, stripe_api):
    learner = member(alpha)
    started = start(alpha, learner, course)

    session_id = started.payment.provider_ref
    assert session_id.startswith("cs_test_")
    assert started.redirect_url == f"{stripe_api.url}/pay/{session_id}"
    assert started.order.status == Order.Status.PENDING
    [call] = stripe_api.requests_to("POST", "/v1/checkout/sessions")
    assert call.header("Authorization") == f"Bearer {stripe_api.secret_key}"
    assert call.header("Idempotency-Key") == f"checkout-{started.payment.pk}-{started.order.number}"
    assert call.params["mode"] == "payment"
    assert call.params["line_items"] == [{"quantity": "1", "price_data": {
        "currency": "cny", "unit_amount": "10000", "product_data": {"name": "Paid Course"}}}]
    assert call.params["success_url"] == f"http://alpha.localhost/orders/{started.order.number}/"
    assert call.params["cancel_url"] == "http://alpha.localhost" + reverse("catalog:item", args=[course.slug])
    assert call.params["client_reference_id"] == str(started.payment.pk)
    assert call.params["metadata"] == {"payment": str(started.payment.pk), "order": started.order.number,
                                       "tenant": "alpha"}
    # The session closes when our checkout does: an hour after the payment started.
    assert call.params["expires_at"] == str(int(started.payment.created_at.timestamp()) + 3600)
    session = stripe_api.sessions[session_id]
    assert (session["amount_total"], session["status"], session["payment_status"]) == (10000, "open", "unpaid")


def test_a_half_hour_checkout_still_gives_stripe_its_half_hour(alpha, course, stripe_api, settings):
    # Stripe refuses a session closing less than 30 minutes after the request reaches it; counted from the
    # payment's creation, exactly 30 minutes would be refused whenever a second passed on the way.
    settings.CHECKOUT_EXPIRES_MINUTES = 30
    started = start(alpha, member(alpha), course)
    [call] = stripe_api.requests_to("POST", "/v1/checkout/sessions")
    assert call.params["expires_at"] == str(int(started.payment.created_at.timestamp()) + 31 * 60)
    assert started.redirect_url == f"{stripe_api.url}/pay/{started.payment.provider_ref}"


def test_a_repeated_checkout_sends_the_learner_back_to_the_same_session(alpha, course, stripe_api):
    learner = member(alpha)
    first = start(alpha, learner, course, key="double-click")
    again = start(alpha, learner, course, key="double-click")
    assert again.payment.pk == first.payment.pk and len(stripe_api.sessions) == 1
    assert again.redirect_url == first.redirect_url


def test_a_completed_session_pays_the_order_grants_access_and_books_the_sale(alpha, course, stripe_api):
    learner = member(alpha)
    started = start(alpha, learner, course)

    result = stripe_api.complete(started.payment.provider_ref)

    assert result["delivery"] == {"status": 200, "body": {"result": "applied"}}
    intent = stripe_api.sessions[started.payment.provider_ref]["payment_intent"]
    with scope(tenant=alpha):
        order = Order.objects.get(pk=started.order.pk)
        payment = Payment.objects.get(pk=started.payment.pk)
        assert order.status == Order.Status.PAID and order.paid_at is not None
        assert payment.status == Payment.Status.SUCCEEDED and payment.provider_charge_ref == intent
        assert Entitlement.objects.filter(user=learner, item=course, order=order, revoked_at=None).count() == 1
        entry = JournalEntry.objects.get(order=order, kind="sale")
        amounts = {p.account.code: p.amount for p in entry.postings.select_related("account")}
        assert amounts["clearing:stripe"] == 10000 and sum(amounts.values()) == 0
        assert ledger_verify(tenant=alpha).ok


def test_a_replayed_event_has_one_effect(paid, alpha, stripe_api):
    payment, event = paid
    learner = payment.order.user
    before = state(alpha, learner)
    assert before == (Order.Status.PAID, 1, 1, 1)

    for _ in range(10):
        assert stripe_api.deliver(event) == (200, {"result": "duplicate"})

    assert state(alpha, learner) == before
    with scope(tenant=alpha):
        assert ledger_verify(tenant=alpha).ok


@pytest.mark.parametrize("forge", ["tampered body", "wrong secret", "too old", "no signature"])
def test_an_event_that_does_not_verify_is_refused_and_changes_nothing(alpha, course, stripe_api, forge):
    learner = member(alpha)
    started = start(alpha, learner, course)
    event = stripe_api.complete(started.payment.provider_ref, deliver=False)["event"]
    genuine = stripe_api.sign(event.encode())
    if forge == "tampered body":
        body = event.replace('"amount_total": 10000', '"amount_total": 1')
        assert body != event
        delivered = stripe_api.deliver(body, signature=genuine)
    elif forge == "wrong secret":
        delivered = stripe_api.deliver(event, secret="whsec_someone_else")
    elif forge == "too old":
        delivered = stripe_api.deliver(event, timestamp=int(time.time()) - 301)
    else:
        delivered = stripe_api.deliver(event, signature="")

    status, body = delivered
    assert status == 400 and body["error"]["code"] == "signature_invalid"
    assert state(alpha, learner) == (Order.Status.PENDING, 0, 0, 0)
    # The genuine event still goes through afterwards: the refusals were about the signature alone.
    assert stripe_api.deliver(event) == (200, {"result": "applied"})
    assert state(alpha, learner) == (Order.Status.PAID, 1, 1, 1)


def test_another_storefronts_webhook_does_not_touch_this_storefronts_payment(alpha, course, stripe_api, live_server):
    TenantFactory(slug="beta", domain="beta.localhost")
    learner = member(alpha)
    started = start(alpha, learner, course)
    event = stripe_api.complete(started.payment.provider_ref, deliver=False)["event"]

    stripe_api.set_webhook(live_server.url + HOOK, host_header="beta.localhost")
    status, body = stripe_api.deliver(event)  # Stripe retries it, and its dashboard shows the misrouted endpoint
    assert (status, body["error"]["code"]) == (400, "event_for_another_storefront")
    assert state(alpha, learner) == (Order.Status.PENDING, 0, 0, 0)

    stripe_api.set_webhook(live_server.url + HOOK, host_header="alpha.localhost")
    assert stripe_api.deliver(event) == (200, {"result": "applied"})


def test_an_expired_session_cancels_the_order(alpha, course, stripe_api):
    learner = member(alpha)
    started = start(alpha, learner, course)

    result = stripe_api.expire(started.payment.provider_ref)

    assert result["delivery"] == {"status": 200, "body": {"result": "applied"}}
    assert state(alpha, learner) == (Order.Status.CANCELLED, 0, 0, 1)


def test_an_abandoned_checkout_is_expired_at_stripe_before_it_is_cancelled(alpha, course, stripe_api):
    learner = member(alpha)
    started = start(alpha, learner, course)
    with scope(tenant=alpha):
        assert services.checkouts_expire(tenant=alpha, now=timezone.now() + timedelta(minutes=61)) == 1

    session_id = started.payment.provider_ref
    assert len(stripe_api.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")) == 1
    assert stripe_api.sessions[session_id]["status"] == "expired"
    # Stripe then reports the expiry; it is recorded and changes nothing more.
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    assert state(alpha, learner) == (Order.Status.CANCELLED, 0, 0, 1)


def test_a_session_paid_at_stripe_is_never_cancelled_by_the_expiry(alpha, course, stripe_api):
    """The learner paid, Stripe's webhook is still on its way: the payment stays pending and then succeeds."""
    learner = member(alpha)
    started = start(alpha, learner, course)
    completed = stripe_api.complete(started.payment.provider_ref, deliver=False)
    with scope(tenant=alpha):
        assert services.checkouts_expire(tenant=alpha, now=timezone.now() + timedelta(minutes=61)) == 0
        assert Payment.objects.get(pk=started.payment.pk).status == Payment.Status.PENDING
    assert stripe_api.deliver(completed["event"]) == (200, {"result": "applied"})
    assert state(alpha, learner) == (Order.Status.PAID, 1, 1, 1)

    # Nor is it replaced by a new checkout while that webhook is on its way.
    other = catalog_item(alpha, title="Second Course", price=5000)
    second = start(alpha, learner, other, key="second")
    stripe_api.complete(second.payment.provider_ref, deliver=False)
    with pytest.raises(ApplicationError) as refused:
        start(alpha, learner, other, key="third")
    assert refused.value.code == "payment_in_progress" and refused.value.status == 409


def test_a_new_checkout_expires_the_open_session_so_it_cannot_be_paid(alpha, course, stripe_api):
    learner = member(alpha)
    first = start(alpha, learner, course, key="tab-1")
    second = start(alpha, learner, course, key="tab-2")

    assert stripe_api.sessions[first.payment.provider_ref]["status"] == "expired"
    with pytest.raises(AssertionError, match="checkout_session_not_open"):
        stripe_api.complete(first.payment.provider_ref)  # the learner's old tab: Stripe refuses to take payment
    stripe_api.complete(second.payment.provider_ref)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]  # the first session's expiry
    with scope(tenant=alpha):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"tab-1": "cancelled",
                                                                              "tab-2": "paid"}


def test_a_partial_refund_goes_to_stripe_and_a_refund_over_the_rest_is_refused_before_calling_it(
        paid, alpha, stripe_api):
    payment, _ = paid
    staff = member(alpha, role=Role.STAFF)
    with scope(tenant=alpha):
        refund = services.refund_create(payment=payment, amount=4000, actor=staff, reason="changed mind")

    [call] = stripe_api.requests_to("POST", "/v1/refunds")
    assert call.params["payment_intent"] == payment.provider_charge_ref
    assert call.params["amount"] == "4000"
    # The key is what a retry of this same refund reproduces: the payment, what was refunded before, how many of
    # its refunds failed, the amount.
    assert call.header("Idempotency-Key") == f"refund-{payment.provider_ref}-0-0-4000"
    assert refund.provider_ref in stripe_api.refunds and call.status == 200

    with scope(tenant=alpha), pytest.raises(ApplicationError) as refused:
        services.refund_create(payment=payment, amount=6001, actor=staff)
    assert refused.value.code == "refund_exceeds_captured"
    assert len(stripe_api.requests_to("POST", "/v1/refunds")) == 1  # Stripe was never asked
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert payment.refunded_amount == 4000
        assert payment.order.status == Order.Status.PARTIALLY_REFUNDED
        assert ledger_verify(tenant=alpha).ok


def test_stripes_refusal_of_a_refund_is_an_application_error_and_writes_nothing(paid, alpha, stripe_api):
    payment, _ = paid
    # Someone refunds 8000 in Stripe's dashboard; Zhiku does not know yet and still sees 10000 refundable.
    dashboard = stripe.StripeClient(stripe_api.secret_key, base_addresses={"api": stripe_api.url})
    dashboard.v1.refunds.create(params={"payment_intent": payment.provider_charge_ref, "amount": 8000})

    with scope(tenant=alpha), pytest.raises(ApplicationError) as refused:
        services.refund_create(payment=payment, amount=5000, actor=None)

    assert refused.value.code == "provider_refused"
    assert "greater than unrefunded amount" in refused.value.message
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert payment.refunded_amount == 0 and not Refund.objects.exists()
        assert not JournalEntry.objects.filter(kind="refund").exists()


def test_a_wrong_api_key_fails_checkout_clearly_and_leaves_no_order(alpha, course, stripe_api, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_not_ours"
    learner = member(alpha)

    with pytest.raises(ApplicationError) as failed:
        start(alpha, learner, course)

    assert failed.value.code == "provider_misconfigured"
    [call] = stripe_api.requests_to("POST", "/v1/checkout/sessions")
    assert call.status == 401
    with scope(tenant=alpha):
        # The order, its line and the payment are written in the transaction that called Stripe: all rolled back.
        assert not Order.objects.exists() and not Payment.objects.exists()
    assert not stripe_api.sessions


def test_the_stand_in_answers_as_stripe_does_without_a_key_and_for_a_replayed_key(stripe_api):
    """The stand-in itself: Stripe's error shape, and idempotent replays."""
    target = urlsplit(stripe_api.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    connection.request("POST", "/v1/checkout/sessions", body="mode=payment",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    unauthorized = connection.getresponse()
    assert unauthorized.status == 401
    assert json.loads(unauthorized.read())["error"]["type"] == "invalid_request_error"
    connection.close()

    client = stripe.StripeClient(stripe_api.secret_key, base_addresses={"api": stripe_api.url})
    params = {"mode": "payment", "success_url": "http://alpha.localhost/done/", "line_items": [
        {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Book"}}}]}
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "same"})
    again = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "same"})
    assert first.id == again.id and len(stripe_api.sessions) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params={**params, "mode": "payment", "client_reference_id": "x"},
                                           options={"idempotency_key": "same"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nothing")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404


def renewal_due(alpha, stripe_api, settings):
    """A learner subscribed through Stripe (3 grace days) and the period ended: (learner, plan, period end, the
    renewal's pending payment)."""
    from payments.models import Subscription, SubscriptionPlan
    from payments.subscriptions import subscriptions_sweep

    settings.PAYMENT_PROVIDER = "stripe"
    learner = member(alpha)
    with scope(tenant=alpha):
        plan = SubscriptionPlan.objects.create(tenant=alpha, name="All access", slug="all", price=2900, grace_days=3)
        started = services.checkout_start(tenant=alpha, user=learner, idempotency_key="subscribe", plan=plan)
    stripe_api.complete(started.payment.provider_ref)
    with scope(tenant=alpha):
        end = Subscription.objects.get(user=learner).current_period_end
        subscriptions_sweep(tenant=alpha, now=end)
        return learner, plan, end, Payment.objects.get(order__source="renewal")


def test_an_ended_subscription_closes_its_renewal_session_at_stripe(alpha, stripe_api, settings):
    """The grace period ran out with the renewal's session still open: Stripe expires it, so it takes no money."""
    from payments.models import Subscription
    from payments.subscriptions import subscriptions_sweep

    learner, _plan, end, renewal = renewal_due(alpha, stripe_api, settings)
    with scope(tenant=alpha):
        assert subscriptions_sweep(tenant=alpha, now=end + timedelta(days=3, seconds=1)) == {
            "renewals_opened": 0, "ended": 1}

    assert stripe_api.sessions[renewal.provider_ref]["status"] == "expired"
    with pytest.raises(AssertionError, match="checkout_session_not_open"):
        stripe_api.complete(renewal.provider_ref)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    with scope(tenant=alpha):
        renewal.refresh_from_db()
        assert (renewal.status, renewal.failure_reason) == ("cancelled", "subscription ended")
        assert Subscription.objects.get(user=learner).status == "ended"


def test_a_renewal_paid_at_stripe_as_its_subscription_ended_comes_back_instead_of_a_second_subscription(
        alpha, stripe_api, settings):
    """The learner paid the renewal at the last moment; Stripe's event is still on its way when the grace period
    runs out. Subscribing again meanwhile is refused while that payment is being confirmed, and the event brings the
    subscription back, so the learner never pays for two."""
    from payments.models import Subscription
    from payments.subscriptions import subscriptions_sweep

    learner, plan, end, renewal = renewal_due(alpha, stripe_api, settings)
    paid_late = stripe_api.complete(renewal.provider_ref, deliver=False)
    with scope(tenant=alpha):
        assert subscriptions_sweep(tenant=alpha, now=end + timedelta(days=3, seconds=1))["ended"] == 1
        with pytest.raises(ApplicationError) as refused:
            services.checkout_start(tenant=alpha, user=learner, idempotency_key="again", plan=plan)
        assert refused.value.code == "payment_in_progress"
        assert not Order.objects.filter(idempotency_key="again").exists()

    assert stripe_api.deliver(paid_late["event"]) == (200, {"result": "applied"})
    with scope(tenant=alpha):
        sub = Subscription.objects.get(user=learner)
        assert sub.status == Subscription.Status.ACTIVE and sub.current_period_end > timezone.now()
        assert Entitlement.objects.get(pk=sub.entitlement_id).ends_at == sub.current_period_end
        assert ledger_verify(tenant=alpha).ok


def test_one_endpoint_on_the_platform_host_serves_every_storefront(alpha, course, stripe_api, live_server):
    """A Stripe account has one webhook endpoint and one signing secret: each event goes to the storefront its
    session was started for, and an event that names no storefront of ours is answered and kept nowhere."""
    beta = TenantFactory(slug="beta", name="Beta School", domain="beta.localhost")
    other = catalog_item(beta, title="Beta Course", price=5000)
    stripe_api.set_webhook(live_server.url + HOOK)  # the platform host
    alpha_learner, beta_learner = member(alpha), member(beta)
    for tenant, learner, item in ((alpha, alpha_learner, course), (beta, beta_learner, other)):
        started = start(tenant, learner, item)
        assert stripe_api.complete(started.payment.provider_ref)["delivery"] == {
            "status": 200, "body": {"result": "applied"}}
    assert state(alpha, alpha_learner) == (Order.Status.PAID, 1, 1, 1)
    assert state(beta, beta_learner) == (Order.Status.PAID, 1, 1, 1)
    with scope(tenant=alpha):
        assert ledger_verify(tenant=alpha).ok

    foreign = json.loads(stripe_api.complete(start(beta, member(beta), other, key="third").payment.provider_ref,
                                             deliver=False)["event"])
    foreign["data"]["object"]["metadata"]["tenant"] = "gamma"  # another platform's sessions on the same account
    assert stripe_api.deliver(json.dumps(foreign)) == (200, {"result": "ignored"})
    with scope(tenant=beta):
        assert WebhookEvent.objects.count() == 1


def test_money_of_a_deactivated_storefront_is_still_booked(alpha, course, stripe_api, live_server):
    """The operator closes a storefront while a learner is on Stripe's page: the payment Stripe took is booked and
    opens the course, and a refund made afterwards in Stripe's dashboard is booked too."""
    learner = member(alpha)
    started = start(alpha, learner, course)
    alpha.is_active = False
    alpha.save(update_fields=["is_active"])
    stripe_api.set_webhook(live_server.url + HOOK)  # the platform host
    assert stripe_api.complete(started.payment.provider_ref)["delivery"] == {
        "status": 200, "body": {"result": "applied"}}
    assert state(alpha, learner) == (Order.Status.PAID, 1, 1, 1)
    with scope(tenant=alpha):
        payment = Payment.objects.get(pk=started.payment.pk)
    dashboard_refund(stripe_api, payment, 10000)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    with scope(tenant=alpha):
        assert Order.objects.get(user=learner).status == Order.Status.REFUNDED
        assert ledger_verify(tenant=alpha).ok


def test_a_stripe_event_timestamped_ahead_of_time_is_refused(alpha, course, stripe_api):
    from payments.providers import SignatureError
    from payments.providers.base import sign
    from payments.providers.stripe import SIGNATURE_HEADER, StripeProvider

    body = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {
        "id": "cs_1", "object": "checkout.session", "payment_status": "paid", "amount_total": 100}}}).encode()
    for seconds in (301, 10 * 365 * 24 * 3600):
        header = sign(stripe_api.webhook_secret, body, int(time.time()) + seconds)
        with pytest.raises(SignatureError):
            StripeProvider().parse_event(headers={SIGNATURE_HEADER: header}, body=body)
    header = sign(stripe_api.webhook_secret, body, int(time.time()) + 5)  # clocks a little apart are fine
    assert StripeProvider().parse_event(headers={SIGNATURE_HEADER: header}, body=body).type == "payment.succeeded"


# --- money returned at Stripe: refunds made in its dashboard, chargebacks -----------------------------------------

def dashboard_refund(stripe_api, payment, amount) -> str:
    """Someone refunds in Stripe's dashboard; Stripe sends ``refund.created`` as for any refund."""
    dashboard = stripe.StripeClient(stripe_api.secret_key, base_addresses={"api": stripe_api.url})
    return dashboard.v1.refunds.create(params={"payment_intent": payment.provider_charge_ref, "amount": amount}).id


def test_a_refund_made_in_stripes_dashboard_is_booked_once_and_a_full_one_ends_access(paid, alpha, stripe_api):
    payment, _ = paid
    first = dashboard_refund(stripe_api, payment, 4000)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status) == (4000, Order.Status.PARTIALLY_REFUNDED)
        refund = Refund.objects.get(payment=payment)
        assert (refund.amount, refund.provider_ref, refund.created_by) == (4000, first, None)
        assert JournalEntry.objects.filter(kind="refund", refund=refund).count() == 1
        assert Entitlement.objects.filter(revoked_at=None).count() == 1  # a part refunded keeps the access

    # Stripe delivers an event again, and sends refund.updated for the same refund: one booking.
    created = stripe_api.events[-1]
    assert stripe_api.deliver(json.dumps(created)) == (200, {"result": "duplicate"})
    updated = {**created, "id": "evt_updated_1", "type": "refund.updated"}
    assert stripe_api.deliver(json.dumps(updated))[0] == 200
    with scope(tenant=alpha):
        assert Refund.objects.count() == 1 and Payment.objects.get(pk=payment.pk).refunded_amount == 4000

    dashboard_refund(stripe_api, payment, 6000)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status) == (10000, Order.Status.REFUNDED)
        assert not Entitlement.objects.filter(revoked_at=None).exists()
        assert ledger_verify(tenant=alpha).ok
        # Zhiku now knows nothing is left: a refund from the admin is refused before Stripe is asked.
        with pytest.raises(ApplicationError) as refused:
            services.refund_create(payment=payment, amount=1, actor=None)
    assert refused.value.code == "refund_exceeds_captured"


def test_our_own_refund_coming_back_from_stripe_as_an_event_is_not_booked_again(paid, alpha, stripe_api):
    payment, _ = paid
    with scope(tenant=alpha):
        refund = services.refund_create(payment=payment, amount=2500, actor=None)
    [(status, body)] = stripe_api.deliver_queued()
    assert status == 200
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert payment.refunded_amount == 2500
        assert list(Refund.objects.values_list("provider_ref", flat=True)) == [refund.provider_ref]
        assert JournalEntry.objects.filter(kind="refund").count() == 1


def test_a_refund_event_reaches_its_storefront_through_the_platform_host_only(paid, alpha, stripe_api, live_server):
    payment, _ = paid
    beta = TenantFactory(slug="beta", name="Beta School", domain="beta.localhost")
    dashboard_refund(stripe_api, payment, 1000)
    body = stripe_api.queued.pop()

    stripe_api.set_webhook(live_server.url + HOOK, host_header="beta.localhost")  # alpha's refund at beta's host
    status, answer = stripe_api.deliver(body)
    assert (status, answer["error"]["code"]) == (400, "event_for_another_storefront")
    with scope(tenant=beta):
        assert not WebhookEvent.objects.exists()

    stripe_api.set_webhook(live_server.url + HOOK)  # the platform host finds the storefront by the PaymentIntent
    assert stripe_api.deliver(body) == (200, {"result": "applied"})
    with scope(tenant=alpha):
        assert Payment.objects.get(pk=payment.pk).refunded_amount == 1000

    # A refund of a charge that is no payment of ours is answered and kept nowhere.
    stranger = json.loads(body)
    stranger["id"], stranger["data"]["object"]["payment_intent"] = "evt_stranger", "pi_not_ours"
    assert stripe_api.deliver(json.dumps(stranger)) == (200, {"result": "ignored"})
    with scope(tenant=alpha):
        assert WebhookEvent.objects.count() == 2  # the payment's and the refund's


def test_a_chargeback_is_shown_when_opened_and_booked_as_a_refund_when_lost(paid, alpha, stripe_api):
    from marketplace.models import AuditLog

    payment, _ = paid
    opened = stripe_api.dispute(payment.provider_charge_ref, reason="fraudulent")
    assert opened["delivery"] == {"status": 200, "body": {"result": "applied"}}
    with scope(tenant=alpha):
        # Nothing is booked while the dispute is open; the team sees it beside the order.
        assert not Refund.objects.exists()
        alert = AuditLog.objects.get(action="payments.dispute_opened")
        assert alert.data["reason"] == "fraudulent" and alert.data["amount"] == 10000
    with scope(tenant=alpha), pytest.raises(ApplicationError) as refused:
        services.refund_create(payment=payment, amount=100, actor=None)  # Stripe refuses: charged back
    assert refused.value.code == "provider_refused"

    lost = stripe_api.dispute(payment.provider_charge_ref, status="lost")
    assert lost["delivery"] == {"status": 200, "body": {"result": "applied"}}
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status) == (10000, Order.Status.REFUNDED)
        refund = Refund.objects.get()
        assert refund.provider_ref == json.loads(lost["event"])["data"]["object"]["id"]
        assert "Chargeback" in refund.reason
        assert not Entitlement.objects.filter(revoked_at=None).exists()
        assert ledger_verify(tenant=alpha).ok


def test_a_chargeback_won_changes_no_money(paid, alpha, stripe_api):
    payment, _ = paid
    stripe_api.dispute(payment.provider_charge_ref)
    won = stripe_api.dispute(payment.provider_charge_ref, status="won")
    assert won["delivery"] == {"status": 200, "body": {"result": "ignored"}}
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert payment.refunded_amount == 0 and not Refund.objects.exists()
        assert Entitlement.objects.filter(revoked_at=None).count() == 1


def shares(tenant, order) -> dict[str, int]:
    """What each account holds of an order, by code (the clearing account's is what the provider holds of it)."""
    from django.db.models import Sum

    from payments.models import Posting

    with scope(tenant=tenant):
        return {code: total for code, total in Posting.objects.filter(entry__order=order).values_list(
            "account__code").annotate(total=Sum("amount")) if total}


def test_a_refund_stripe_could_not_pay_out_is_undone_and_the_team_refunds_again(paid, alpha, stripe_api):
    """A closed card refuses the refund and Stripe puts the money back: the books, the order and the access are as
    before the refund, the team is told, and refunding again (at Stripe or outside it) books as usual."""
    from marketplace.models import AuditLog

    payment, _ = paid
    sold = shares(alpha, payment.order)
    with scope(tenant=alpha):
        refund = services.refund_create(payment=payment, amount=10000, actor=None)
        assert not Entitlement.objects.filter(revoked_at=None).exists()
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]  # refund.created: already booked

    failed = stripe_api.fail_refund(refund.provider_ref)
    assert failed["delivery"] == {"status": 200, "body": {"result": "applied"}}
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status, payment.order.refunded) == (0, Order.Status.PAID, 0)
        refund.refresh_from_db()
        assert refund.failed_at is not None and refund.failure_reason == "expired_or_canceled_card"
        assert Entitlement.objects.filter(revoked_at=None).count() == 1  # the learner has not been paid back
        [reversal] = JournalEntry.objects.filter(kind=JournalEntry.Kind.REVERSAL)
        assert reversal.refund == refund
        alert = AuditLog.objects.get(action="payments.refund_failed")
        assert (alert.data["amount"], alert.data["provider_ref"]) == (10000, refund.provider_ref)
        assert ledger_verify(tenant=alpha).ok
    assert shares(alpha, payment.order) == sold  # every share holds what the sale gave it

    # The same failure again, or Stripe's refund.updated about it: nothing more changes.
    assert stripe_api.deliver(failed["event"]) == (200, {"result": "duplicate"})
    updated = {**json.loads(failed["event"]), "id": "evt_refund_updated", "type": "refund.updated"}
    assert stripe_api.deliver(json.dumps(updated)) == (200, {"result": "applied"})
    with scope(tenant=alpha):
        assert JournalEntry.objects.filter(kind=JournalEntry.Kind.REVERSAL).count() == 1
        assert Payment.objects.get(pk=payment.pk).refunded_amount == 0

        # Refunding the same amount again is a new refund at Stripe, not the failed one replayed.
        again = services.refund_create(payment=payment, amount=4000, actor=None)
    assert again.provider_ref != refund.provider_ref
    assert stripe_api.refunds[again.provider_ref]["status"] == "succeeded"
    stripe_api.queued.clear()

    # The rest is paid back by bank transfer: booked without asking Stripe, and the access ends.
    asked = len(stripe_api.requests_to("POST", "/v1/refunds"))
    with scope(tenant=alpha):
        outside = services.refund_create(payment=payment, amount=6000, actor=None, paid_outside=True)
        assert (outside.paid_outside, outside.provider_ref) == (True, "")
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status) == (10000, Order.Status.REFUNDED)
        assert not Entitlement.objects.filter(revoked_at=None).exists()
        assert ledger_verify(tenant=alpha).ok
    assert len(stripe_api.requests_to("POST", "/v1/refunds")) == asked
    assert all(total == 0 for code, total in shares(alpha, payment.order).items())


@pytest.mark.parametrize("subscribed_again", [False, True])
def test_a_subscription_a_failed_refund_had_ended_runs_on_unless_the_learner_subscribed_again(
        alpha, stripe_api, settings, subscribed_again):
    from payments.models import Subscription, SubscriptionPlan

    settings.PAYMENT_PROVIDER = "stripe"
    learner = member(alpha)
    with scope(tenant=alpha):
        plan = SubscriptionPlan.objects.create(tenant=alpha, name="All access", slug="all", price=2900)
        first = services.checkout_start(tenant=alpha, user=learner, idempotency_key="subscribe", plan=plan)
    stripe_api.complete(first.payment.provider_ref)
    with scope(tenant=alpha):
        sub = Subscription.objects.get(user=learner)
        refund = services.refund_create(payment=Payment.objects.get(pk=first.payment.pk), amount=2900, actor=None)
        assert Subscription.objects.get(pk=sub.pk).status == Subscription.Status.ENDED
        if subscribed_again:
            again = services.checkout_start(tenant=alpha, user=learner, idempotency_key="again", plan=plan)
    if subscribed_again:
        stripe_api.complete(again.payment.provider_ref)
    stripe_api.queued.clear()

    assert stripe_api.fail_refund(refund.provider_ref)["delivery"]["status"] == 200
    with scope(tenant=alpha):
        sub.refresh_from_db()
        live = Subscription.objects.exclude(status=Subscription.Status.ENDED)
        assert live.count() == 1  # never two at once
        if subscribed_again:
            assert sub.status == Subscription.Status.ENDED
        else:
            assert (sub.status, sub.ended_at) == (Subscription.Status.ACTIVE, None)
            assert Entitlement.objects.get(pk=sub.entitlement_id).ends_at == sub.current_period_end
            item = catalog_item(alpha, title="In the catalog", price=5000)
            assert can_access(learner, item)  # through the subscription's entitlement, as before the refund


def test_a_refund_reported_failed_before_it_was_reported_made_books_nothing(paid, alpha, stripe_api):
    payment, _ = paid
    ref = dashboard_refund(stripe_api, payment, 2500)
    created = stripe_api.queued.pop()  # Stripe's events may arrive in any order
    failed = stripe_api.fail_refund(ref, failure_reason="lost_or_stolen_card")
    assert failed["delivery"] == {"status": 200, "body": {"result": "applied"}}
    assert stripe_api.deliver(created) == (200, {"result": "applied"})
    with scope(tenant=alpha):
        payment.refresh_from_db()
        assert (payment.refunded_amount, payment.order.status) == (0, Order.Status.PAID)
        refund = Refund.objects.get()
        assert (refund.provider_ref, refund.failure_reason) == (ref, "lost_or_stolen_card")
        assert not JournalEntry.objects.exclude(kind__in=["sale", "publish"]).exists()
        assert Entitlement.objects.filter(revoked_at=None).count() == 1
        assert ledger_verify(tenant=alpha).ok


def test_a_partial_refund_that_failed_after_the_shares_were_released_returns_them_as_payable(
        paid, alpha, stripe_api):
    from payments.payouts import shares_release

    payment, _ = paid
    with scope(tenant=alpha):
        refund = services.refund_create(payment=payment, amount=3000, actor=None)
        assert shares_release(tenant=alpha, now=timezone.now() + timedelta(days=60)) == 1
    released = shares(alpha, payment.order)
    stripe_api.queued.clear()
    assert stripe_api.fail_refund(refund.provider_ref)["delivery"]["status"] == 200
    after = shares(alpha, payment.order)
    # What the refund took back from the creator's held share returns to their payable account, not to held.
    [creator] = [code for code in after if code.startswith("creator:")]
    assert creator.endswith(":payable") and after[creator] < released[creator]
    assert not any(code.endswith(":held") for code in after)
    assert after["clearing:stripe"] == 10000
    with scope(tenant=alpha):
        assert Payment.objects.get(pk=payment.pk).order.status == Order.Status.PAID
        assert ledger_verify(tenant=alpha).ok


def test_our_refund_reported_by_stripe_while_it_commits_is_booked_once(on_postgres, paid, alpha, stripe_api):
    """Stripe may deliver ``refund.created`` before our call has read its answer: the webhook waits for the payment
    row the refund holds, then finds the refund by Stripe's id."""
    payment, _ = paid
    stripe_api.send_at_once = True
    with scope(tenant=alpha):
        services.refund_create(payment=payment, amount=2500, actor=None)
    [sender] = stripe_api.sending
    sender.join(timeout=30)
    assert stripe_api.sent == [(200, {"result": "applied"})]
    with scope(tenant=alpha):
        assert Payment.objects.get(pk=payment.pk).refunded_amount == 2500
        assert Refund.objects.count() == 1 and JournalEntry.objects.filter(kind="refund").count() == 1
        assert ledger_verify(tenant=alpha).ok


def test_a_dashboard_refund_delivered_before_the_payments_own_event_books_the_sale_and_its_refund(alpha, course,
                                                                                                  stripe_api):
    # Stripe does not order its events and retries a failed delivery for days: the refund can come first.
    learner = member(alpha)
    started = start(alpha, learner, course)
    completed = stripe_api.complete(started.payment.provider_ref, deliver=False)  # its delivery failed
    intent = stripe_api.sessions[started.payment.provider_ref]["payment_intent"]
    dashboard_refund(stripe_api, Payment(provider_charge_ref=intent), 10000)
    assert stripe_api.deliver_queued() == [(200, {"result": "applied"})]
    assert stripe_api.deliver(completed["event"]) == (200, {"result": "applied"})  # Stripe's retry: no effect
    with scope(tenant=alpha):
        payment = Payment.objects.get(pk=started.payment.pk)
        assert (payment.status, payment.provider_charge_ref, payment.refunded_amount) == ("succeeded", intent, 10000)
        assert payment.order.status == Order.Status.REFUNDED
        held = {account.code: value for account, value in balances(tenant=alpha).items()}
        assert held.get("clearing:stripe", 0) == 0
        assert not Entitlement.objects.filter(user=learner, revoked_at=None).exists()
        assert ledger_verify(tenant=alpha).ok
    assert [r.path for r in stripe_api.requests_to("GET", f"/v1/payment_intents/{intent}")]


def test_an_event_about_a_charge_that_is_not_ours_is_ignored(alpha, stripe_api):
    other = stripe.StripeClient(stripe_api.secret_key, base_addresses={"api": stripe_api.url})
    session = other.v1.checkout.sessions.create(params={  # made by another system on the same Stripe account
        "mode": "payment", "success_url": "https://elsewhere.example/ok",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                      "product_data": {"name": "Elsewhere"}}}]})
    stripe_api.complete(session.id, deliver=False)
    dashboard_refund(stripe_api, Payment(provider_charge_ref=stripe_api.sessions[session.id]["payment_intent"]), 500)
    assert stripe_api.deliver_queued() == [(200, {"result": "ignored"})]


def test_an_item_paid_at_stripe_after_its_bundle_is_refunded_at_stripe(alpha, course, stripe_api):
    """Both of a learner's tabs were paid at Stripe before either event arrived: the item's checkout could not be
    closed any more, so its payment is given back in full through Stripe, and the bundle keeps the item open."""
    from catalog.models import Bundle

    with scope(tenant=alpha):
        bundle = Bundle.objects.create(tenant=alpha, title="All", slug="all", price=15000, is_published=True)
        bundle.items.set([course, catalog_item(alpha, title="Second Course", price=8000)])
    learner = member(alpha)
    item_tab = start(alpha, learner, course, key="tab-item")
    with scope(tenant=alpha):
        bundle_tab = services.checkout_start(tenant=alpha, user=learner, idempotency_key="tab-bundle", bundle=bundle,
                                             provider_name="stripe")
    item_paid = stripe_api.complete(item_tab.payment.provider_ref, deliver=False)
    bundle_paid = stripe_api.complete(bundle_tab.payment.provider_ref, deliver=False)

    assert stripe_api.deliver(bundle_paid["event"]) == (200, {"result": "applied"})
    assert stripe_api.deliver(item_paid["event"]) == (200, {"result": "applied"})
    stripe_api.deliver_queued()  # Stripe's own news of the refund: already booked

    [call] = stripe_api.requests_to("POST", "/v1/refunds")
    intent = stripe_api.sessions[item_tab.payment.provider_ref]["payment_intent"]
    assert (call.status, call.params["payment_intent"], call.params["amount"]) == (200, intent, "10000")
    with scope(tenant=alpha):
        assert dict(Order.objects.values_list("idempotency_key", "status")) == {"tab-item": "refunded",
                                                                              "tab-bundle": "paid"}
        assert Refund.objects.get().reason == Refund.PAID_TWICE
        assert {account.code: value for account, value in balances(tenant=alpha).items()}["clearing:stripe"] == 15000
        assert ledger_verify(tenant=alpha).ok
        assert can_access(learner, course)
