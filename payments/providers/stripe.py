"""Stripe Checkout: Stripe's hosted payment page, a signed webhook with the outcome, refunds of the PaymentIntent.

Stripe endpoints used (https://docs.stripe.com/api):

- ``POST /v1/checkout/sessions`` (``start``): one Checkout Session per Payment, ``mode=payment``.
- ``POST /v1/checkout/sessions/:id/expire`` (``expire``): closes an abandoned or replaced session; and
  ``GET /v1/checkout/sessions/:id`` to tell an expired session from a completed one, and for ``checkout_url``.
- ``POST /v1/refunds`` (``refund``): refunds the PaymentIntent the session captured.
- ``GET /v1/payment_intents/:id`` (``capture_lookup``): which payment a refund or a dispute is about, when its event
  arrives before the session's own (Stripe does not promise the order of events).

Events read by ``parse_event`` (https://docs.stripe.com/checkout/fulfillment): ``checkout.session.completed``,
``checkout.session.async_payment_succeeded``, ``checkout.session.async_payment_failed`` and
``checkout.session.expired``; ``refund.created``, ``refund.updated`` and ``refund.failed`` (since API version
2024-10-28 sent for every refund, so also for one made in Stripe's dashboard); ``charge.dispute.created`` and
``charge.dispute.closed`` (a chargeback). Any other type is passed on as "ignored".

Every session carries ``metadata.tenant`` (the storefront's slug): the one webhook endpoint of the Stripe account, on
the platform host, hands each event to its storefront. A refund or a dispute names only its PaymentIntent, which the
storefront's payment recorded when the session was paid.

Configuration: ``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET`` and ``STRIPE_API_BASE`` (empty for Stripe itself,
a Stripe-compatible server in tests). A client is built per call from settings, so nothing global is changed.
"""

from __future__ import annotations

import json
import logging

import stripe
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from marketplace.errors import ApplicationError

from .base import Capture, PaymentProvider, ProviderEvent, SignatureError, check_timestamp

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE = 300  # seconds; Stripe's own default for webhook timestamps
# Stripe lets a Checkout Session live 30 minutes to 24 hours (``expires_at``); ours follows CHECKOUT_EXPIRES_MINUTES.
SESSION_MINUTES = (30, 24 * 60)
TIMEOUT = 30  # seconds per HTTP request; checkout holds a transaction open while it waits
RETRIES = 2  # the library retries connection errors and 409/5xx answers, reusing our idempotency key

SUCCEEDED_TYPES = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_TYPES = ("refund.created", "refund.updated", "refund.failed")
DISPUTE_TYPES = ("charge.dispute.created", "charge.dispute.closed")


def client() -> stripe.StripeClient:
    """A Stripe client for this call, configured from settings (no module-level ``stripe.api_key``)."""
    if not settings.STRIPE_SECRET_KEY:
        raise ApplicationError(_("Card payments are not set up for this storefront."),
                               code="provider_not_configured")
    base = settings.STRIPE_API_BASE.rstrip("/")
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses={"api": base} if base else None,
                               max_network_retries=RETRIES, http_client=stripe.RequestsClient(timeout=TIMEOUT))


def _unavailable(what: str, exc: stripe.StripeError) -> ApplicationError:
    """Stripe did not answer (or not usably): logged, and the learner or the team is asked to try again."""
    logger.warning("stripe %s: %s", what, exc)
    return ApplicationError(_("The payment service cannot be reached. Please try again in a moment."),
                            code="provider_unavailable", status=502)


class StripeProvider(PaymentProvider):
    """Payments through Stripe Checkout.

    ``provider_ref`` is the Checkout Session id (``cs_...``); the PaymentIntent (``pi_...``) arrives with the
    success event and is kept as ``provider_charge_ref`` for refunds.
    """

    name = "stripe"

    def start(self, *, payment, request) -> tuple[str, str]:
        """Create a Checkout Session (``POST /v1/checkout/sessions``) for the payment's amount.

        The idempotency key is fixed per payment, so the library's retries (and any other retry of this payment)
        never create a second session.
        """
        order = payment.order
        tenant = order.tenant
        lines = list(order.lines.select_related("item"))
        item = next((line.item for line in lines if line.item_id), None)
        cancel_path = reverse("catalog:item", args=[item.slug]) if item else reverse("storefront:home")
        metadata = {"payment": str(payment.pk), "order": order.number, "tenant": tenant.slug}
        params = {
            "mode": "payment",
            "line_items": [{
                "quantity": 1,
                "price_data": {
                    "currency": payment.currency.lower(),
                    "unit_amount": payment.amount,
                    # Stripe caps a product name; the order page lists the lines in full.
                    "product_data": {"name": ", ".join(line.title for line in lines)[:250] or order.number},
                },
            }],
            # From the payment's creation, so a retry of this request sends the same parameters; a minute over
            # Stripe's least, since Stripe counts from when the request reaches it.
            "expires_at": int(payment.created_at.timestamp()) + 60 * min(
                max(settings.CHECKOUT_EXPIRES_MINUTES, SESSION_MINUTES[0] + 1), SESSION_MINUTES[1]),
            "success_url": tenant.url(reverse("payments:order", args=[order.number])),
            "cancel_url": tenant.url(cancel_path),
            "client_reference_id": str(payment.pk),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},  # so a refund in Stripe's dashboard shows the order
        }
        if getattr(order.user, "email", ""):
            params["customer_email"] = order.user.email
        try:
            # The order number makes the key unique across databases sharing one Stripe account (a reset
            # development database starts its payment ids at 1 again; Stripe keeps keys for 24 hours).
            session = client().v1.checkout.sessions.create(
                params=params, options={"idempotency_key": f"checkout-{payment.pk}-{order.number}"})
        except stripe.APIConnectionError as exc:
            raise _unavailable("checkout session not created", exc) from exc
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            logger.error("stripe rejected our credentials: %s", exc)
            raise ApplicationError(_("Card payments are not available right now. Please try again later."),
                                   code="provider_misconfigured", status=502,
                                   extra={"provider_status": exc.http_status}) from exc
        except stripe.StripeError as exc:
            logger.error("stripe refused a checkout session: %s", exc)
            raise ApplicationError(_("The payment service refused this checkout. Please try again later."),
                                   code="provider_refused", status=502,
                                   extra={"provider_status": exc.http_status, "provider_code": exc.code}) from exc
        return session.id, session.url or ""

    def checkout_url(self, *, payment) -> str:
        """The open Checkout Session's URL (``GET /v1/checkout/sessions/:id``), for a repeated checkout."""
        try:
            session = client().v1.checkout.sessions.retrieve(payment.provider_ref)
        except stripe.StripeError as exc:
            logger.warning("stripe checkout session %s not retrieved: %s", payment.provider_ref, exc)
            return ""
        return session.url or "" if session.status == "open" else ""

    def expire(self, *, payment) -> bool:
        """Expire the Checkout Session (``POST /v1/checkout/sessions/:id/expire``).

        Stripe expires only an open session. When it refuses, the session's status decides: ``expired`` is closed
        already; ``complete`` means the learner paid (or a delayed payment method is still settling) and the
        outcome's webhook is on its way.
        """
        stripe_client = client()
        try:
            stripe_client.v1.checkout.sessions.expire(payment.provider_ref)
            return True
        except stripe.InvalidRequestError:
            pass
        except stripe.StripeError as exc:
            raise _unavailable("checkout session not expired", exc) from exc
        try:
            session = stripe_client.v1.checkout.sessions.retrieve(payment.provider_ref)
        except stripe.StripeError as exc:
            raise _unavailable("checkout session not expired", exc) from exc
        return session.status == "expired"

    def parse_event(self, *, headers, body: bytes) -> ProviderEvent:
        """Verify the ``Stripe-Signature`` header (HMAC-SHA256, at most 5 minutes old or ahead) and translate the event.

        A paid ``checkout.session.completed`` or an ``async_payment_succeeded`` is a success; a completed session
        still ``unpaid`` (a delayed payment method) waits for its async event and is "ignored" meanwhile.
        """
        header = headers.get(SIGNATURE_HEADER, "")
        try:
            stripe.Webhook.construct_event(body, header, settings.STRIPE_WEBHOOK_SECRET, tolerance=TOLERANCE)
            check_timestamp(header, tolerance=TOLERANCE)  # the library refuses old timestamps; not ones from ahead
            data = json.loads(body)
            event_id, event_type, session = str(data["id"]), str(data["type"]), data["data"]["object"]
            if not isinstance(session, dict):
                raise TypeError("data.object is not an object")
        except stripe.SignatureVerificationError as exc:
            raise SignatureError(exc.user_message or "signature does not verify") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SignatureError("not a Stripe event") from exc
        kind = session.get("object")
        if kind == "refund" or (kind == "dispute" and event_type in DISPUTE_TYPES):
            return _charge_event(event_id, event_type, session, data)
        is_session = kind == "checkout.session"
        kind = "ignored"
        if is_session and event_type in SUCCEEDED_TYPES and session.get("payment_status") == "paid":
            kind = "payment.succeeded"
        elif is_session and event_type == "checkout.session.async_payment_failed":
            kind = "payment.failed"
        elif is_session and event_type == "checkout.session.expired":
            kind = "payment.cancelled"
        metadata = session.get("metadata") if is_session and isinstance(session.get("metadata"), dict) else {}
        return ProviderEvent(
            id=event_id, type=kind, payment_ref=str(session.get("id", "")) if is_session else "",
            amount=session.get("amount_total") if kind == "payment.succeeded" else None,
            currency=str(session.get("currency") or "").upper(), charge_ref=_intent(session), payload=data,
            tenant=str(metadata.get("tenant") or ""))

    def refund(self, *, payment, amount: int, idempotency_key: str) -> str:
        """Refund ``amount`` of the payment's PaymentIntent (``POST /v1/refunds``); return the refund id (``re_...``).

        Stripe's refusal (for example more than is left on the charge) raises ApplicationError "provider_refused"
        carrying Stripe's message, so the caller's transaction rolls back.
        """
        if not payment.provider_charge_ref:
            raise ApplicationError(_("Stripe has not reported a charge for this payment; it cannot be refunded."),
                                   code="provider_refused")
        params = {"payment_intent": payment.provider_charge_ref, "amount": amount,
                  "metadata": {"payment": str(payment.pk), "order": payment.order.number}}
        try:
            refund = client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
        except stripe.APIConnectionError as exc:
            raise _unavailable("refund not confirmed", exc) from exc
        except stripe.StripeError as exc:
            logger.warning("stripe refused a refund: %s", exc)
            raise ApplicationError(exc.user_message or _("Stripe refused the refund."), code="provider_refused",
                                   extra={"provider_status": exc.http_status, "provider_code": exc.code}) from exc
        return refund.id


    def capture_lookup(self, *, charge_ref: str) -> Capture | None:
        """Read the PaymentIntent (``GET /v1/payment_intents/:id``): a succeeded one carries the metadata our
        session gave it (``payment_intent_data.metadata``). Stripe unreachable raises (502), so the event is
        answered with an error and Stripe delivers it again later."""
        try:
            intent = client().v1.payment_intents.retrieve(charge_ref)
        except stripe.InvalidRequestError:
            return None  # not a PaymentIntent of this account
        except stripe.StripeError as exc:
            raise _unavailable("payment intent not read", exc) from exc
        metadata = intent.metadata.to_dict() if intent.metadata else {}
        if intent.status != "succeeded" or not str(metadata.get("payment", "")).isdigit():
            return None
        return Capture(tenant=str(metadata.get("tenant") or ""), payment_id=int(metadata["payment"]),
                       order_number=str(metadata.get("order") or ""), amount=int(intent.amount_received),
                       currency=str(intent.currency).upper())


def _intent(obj: dict) -> str:
    """The PaymentIntent an object belongs to (its id, also when Stripe expanded it)."""
    intent = obj.get("payment_intent") or ""
    if isinstance(intent, dict):
        intent = intent.get("id", "")
    return str(intent)


def _charge_event(event_id: str, event_type: str, obj: dict, data: dict) -> ProviderEvent:
    """A refund (``refund.created``/``updated``/``failed``, sent for the dashboard's refunds and for ours alike) or a
    dispute (``charge.dispute.created``, ``charge.dispute.closed``), named by its PaymentIntent.

    A refund counts once it is pending or succeeded (as ours count when Stripe accepts them); a failed or cancelled
    one is "refund.failed", with Stripe's ``failure_reason`` (``expired_or_canceled_card``, ...): its money is back
    in the account. A dispute is "dispute.opened" when it is created and "dispute.lost" when it closes lost:
    the disputed amount has then left the account for good. A dispute won or still open changes no money of ours.
    """
    status, kind = str(obj.get("status") or ""), "ignored"
    if obj.get("object") == "refund" and event_type in REFUND_TYPES:
        if status in ("pending", "succeeded") and event_type != "refund.failed":
            kind = "refund.succeeded"
        elif status in ("failed", "canceled"):
            kind = "refund.failed"
    elif event_type == "charge.dispute.created":
        kind = "dispute.opened"
    elif event_type == "charge.dispute.closed" and status == "lost":
        kind = "dispute.lost"
    amount = obj.get("amount")
    return ProviderEvent(
        id=event_id, type=kind, payment_ref="", charge_ref=_intent(obj), refund_ref=str(obj.get("id") or ""),
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=str(obj.get("currency") or "").upper(), payload=data,
        reason=str((kind == "refund.failed" and obj.get("failure_reason")) or obj.get("reason") or "")[:100])
