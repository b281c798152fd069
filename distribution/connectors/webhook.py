"""Signed webhooks, as the Standard Webhooks specification (https://www.standardwebhooks.com/) defines them.

Each delivery is one POST of a JSON event ``{"type", "timestamp", "data"}`` with three headers:

* ``webhook-id``: the delivery's id, the same on every retry and replay, so receivers deduplicate by it;
* ``webhook-timestamp``: seconds since the epoch, so receivers can refuse old messages;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed with the base64-decoded
  part of the channel's ``whsec_...`` secret.

Any 2xx is success; the receiver may answer ``{"id": ...}`` to name its own record, kept as the external id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict

from django.utils.translation import gettext_lazy as _

from .. import http
from .base import Connector, CredentialField, PermanentError, Post, PublicationState, Receipt

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the prefix every Standard Webhooks secret carries, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ``ValueError`` when the secret is not of that shape (standard
    base64, with its padding, of at least one byte), which every receiver's library would refuse too."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"A signing secret starts with {SECRET_PREFIX}.")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        key = b""
    if not key:
        raise ValueError(f"A signing secret is {SECRET_PREFIX} followed by base64 (A-Z, a-z, 0-9, + and /, padded "
                         "with =).")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret_key(secret)
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(secret: str, headers, body: bytes, *, tolerance: int = 300, now: float | None = None) -> bool:
    """The receiver's side of the spec (used by our tests' receivers and documented for partners)."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(stamp), body).split(",", 1)[1]
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


def post_data(post: Post) -> dict:
    data = asdict(post)
    for name in ("cover", "enclosure"):
        media = data.get(name)
        data[name] = {"url": media["url"], "content_type": media["content_type"]} if media else None
    return data


class WebhookConnector(Connector):
    kind = "webhook"
    needs_endpoint = True
    credential_fields = (CredentialField("signing_secret", _("Signing secret (whsec_...); empty: generate one"),
                                         required=False),)

    @classmethod
    def credential_errors(cls, credentials: dict[str, str]) -> dict[str, str]:
        secret = credentials.get("signing_secret") or ""
        try:
            if secret:  # empty: one is generated
                secret_key(secret)
        except ValueError as exc:
            return {"signing_secret": str(exc)}
        return {}

    def _send(self, event_type: str, data: dict, *, msg_id: str) -> Receipt:
        secret = self.credentials.get("signing_secret", "")
        if not secret:
            raise PermanentError("The channel has no signing secret.", code="invalid_credentials")
        try:  # one stored before secrets were checked on saving
            secret_key(secret)
        except ValueError as exc:
            raise PermanentError(f"The channel's signing secret is not valid: {exc} Enter a new one.",
                                 code="invalid_credentials") from exc
        body = json.dumps({"type": event_type, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "data": data}, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(time.time())
        response = http.request("POST", self.channel.endpoint_url, check_public=True, data=body, headers={
            "content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, msg_id, stamp, body)})
        http.raise_for_status(response)
        external_id = ""
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            if isinstance(answer, dict):
                external_id = str(answer.get("id", ""))[:200]
        return Receipt(external_id=external_id or msg_id, status_code=response.status_code)

    def verify(self) -> str:
        receipt = self._send("zhiku.ping", {"channel": self.channel.name}, msg_id=f"ping_{secrets.token_hex(8)}")
        return f"{self.channel.endpoint_url} answered HTTP {receipt.status_code}"

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        return self._send("content.published", post_data(post), msg_id=delivery_id)

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        return self._send("content.updated", post_data(post), msg_id=delivery_id)

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        return self._send("content.withdrawn", {"item_id": current.item_id, "external_id": current.external_id,
                                                  "version": current.version},
                          msg_id=delivery_id)


class PartnerConnector(WebhookConnector):
    """A partner platform's own endpoint: the same signed delivery (the partner API reuses it)."""

    kind = "partner"
