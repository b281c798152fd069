from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field


class SignatureError(ValueError):
    """A webhook whose signature, secret or timestamp does not check out. Nothing is applied."""


@dataclass(frozen=True)
class Capture:
    """What the provider captured for one of our payments, as the provider's own record of the charge says."""

    tenant: str  # the storefront's slug
    payment_id: int
    order_number: str
    amount: int
    currency: str


@dataclass
class ProviderEvent:
    """A provider's webhook, verified and reduced to what our services need."""

    id: str
    # "payment.succeeded", "payment.failed" or "payment.cancelled" (about a checkout, named by ``payment_ref``);
    # "refund.succeeded", "refund.failed" or "dispute.opened" / "dispute.lost" (about a captured charge, named by
    # ``charge_ref``: a refund made at the provider, or a chargeback); "ignored" for anything else.
    type: str
    payment_ref: str
    amount: int | None = None
    currency: str = ""
    charge_ref: str = ""  # the provider's id of the charge, kept for refunds
    refund_ref: str = ""  # the provider's id of the refund or the dispute an event is about
    reason: str = ""  # the provider's reason for a refund or a dispute
    payload: dict = field(default_factory=dict)
    tenant: str = ""  # the storefront (slug) the payment was started for, when the event says so
    capture: Capture | None = None  # the provider's word on whose charge it is (``PaymentProvider.capture_lookup``)


class PaymentProvider:
    """How Zhiku talks to a payment provider.

    ``start`` creates the provider's side of a pending payment and returns where to send the learner. The outcome
    arrives as a webhook, which ``parse_event`` verifies and translates; the same event may arrive many times and in
    any order, and the services apply each event id once. ``expire`` closes a checkout that was abandoned or
    replaced. ``refund`` asks the provider to return money and raises on refusal.
    """

    name = ""

    def start(self, *, payment, request) -> tuple[str, str]:
        """Return (provider reference, URL to send the learner to)."""
        raise NotImplementedError

    def checkout_url(self, *, payment) -> str:
        """Where to send the learner to finish a payment already started (a repeated checkout), or ""."""
        return ""

    def expire(self, *, payment) -> bool:
        """Close the provider's side of a pending payment so it can no longer be paid.

        True when it is closed (now or before); False when the provider already took the payment or is still
        taking it: its outcome arrives by webhook and the payment must stay pending until then.
        """
        raise NotImplementedError

    def parse_event(self, *, headers, body: bytes) -> ProviderEvent:
        raise NotImplementedError

    def refund(self, *, payment, amount: int, idempotency_key: str) -> str:
        """Return the provider's reference of the refund."""
        raise NotImplementedError

    def capture_lookup(self, *, charge_ref: str) -> Capture | None:
        """Ask the provider which of our payments a captured charge paid for, when an event about the charge (a
        refund made in its dashboard, a chargeback) arrives before the payment's own event; None when it is not
        ours or the provider cannot say."""
        return None


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A ``t=..,v1=..`` signature header value (HMAC-SHA256 of "timestamp.body"), as Stripe signs webhooks."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _parts(header: str) -> tuple[int, list[str]]:
    try:
        items = [part.split("=", 1) for part in header.split(",")]
        return int(next(value for key, value in items if key == "t")), [value for key, value in items if key == "v1"]
    except (StopIteration, ValueError) as exc:
        raise SignatureError("malformed signature header") from exc


def check_timestamp(header: str, *, tolerance: int = 300) -> None:
    """Refuse a ``t=..`` timestamp more than ``tolerance`` seconds old or ahead."""
    if abs(time.time() - _parts(header)[0]) > tolerance:
        raise SignatureError("timestamp outside the tolerance")


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> None:
    """Check a ``t=..,v1=..`` header; raise SignatureError when it is missing, wrong or too old (or new)."""
    check_timestamp(header, tolerance=tolerance)
    timestamp, signatures = _parts(header)
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("no signature matches")
