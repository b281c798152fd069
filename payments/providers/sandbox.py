"""The sandbox provider: a hosted checkout page of Zhiku's own with pay, fail and cancel.

It needs nothing external. Its buttons produce signed events that go through the same webhook path as a real
provider's (signature check, one application per event id, the same services), so the demo and the tests exercise
the production path.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .base import PaymentProvider, ProviderEvent, SignatureError, sign, verify

HEADER = "Zhiku-Sandbox-Signature"


def secret() -> str:
    return settings.SANDBOX_WEBHOOK_SECRET


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def start(self, *, payment, request) -> tuple[str, str]:
        payment.provider_ref = f"sbx_{uuid.uuid4().hex}"
        return payment.provider_ref, self.checkout_url(payment=payment)

    def checkout_url(self, *, payment) -> str:
        token = signing.dumps({"payment": payment.pk, "ref": payment.provider_ref}, salt="sandbox-checkout")
        return reverse("payments:sandbox_checkout", args=[token])

    def expire(self, *, payment) -> bool:
        """The hosted page is ours and only takes payment for a pending payment: nothing to close elsewhere."""
        return True

    def event_body(self, *, payment, outcome: str) -> bytes:
        """The webhook the sandbox sends for a button press on its hosted page."""
        return json.dumps({
            "id": f"evt_{uuid.uuid4().hex}", "type": f"payment.{outcome}",
            "data": {"payment": payment.provider_ref, "amount": payment.amount, "currency": payment.currency},
        }).encode()

    def signature(self, body: bytes, timestamp: int | None = None) -> str:
        return sign(secret(), body, timestamp)

    def parse_event(self, *, headers, body: bytes) -> ProviderEvent:
        verify(secret(), headers.get(HEADER, ""), body)
        try:
            data = json.loads(body)
            return ProviderEvent(id=str(data["id"]), type=str(data["type"]), payment_ref=str(data["data"]["payment"]),
                                 amount=data["data"].get("amount"), currency=data["data"].get("currency", ""),
                                 payload=data)
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError("not a sandbox event") from exc

    def refund(self, *, payment, amount: int, idempotency_key: str) -> str:
        return f"sbx_re_{idempotency_key}"
