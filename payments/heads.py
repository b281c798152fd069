"""Publishing the ledger's chain heads, signed.

Each day the newest entry's sequence and hash of every storefront's ledger is signed with the platform's Ed25519
key and kept; the storefront publishes them at ``/ledger/heads.json`` with the public key. A participant who saved a
head can check a later statement against it (``docs/verify_statement.py --heads``): the chain must pass through that
sequence with that hash, so nothing up to it was rewritten since.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.utils import timezone

from .models import ChainHeadPublication, LedgerHead


def signing_key() -> Ed25519PrivateKey:
    if settings.LEDGER_SIGNING_KEY:
        seed = base64.b64decode(settings.LEDGER_SIGNING_KEY)
    else:
        seed = hashlib.sha256(f"zhiku-ledger-heads:{settings.SECRET_KEY}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def public_key_b64() -> str:
    raw = signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(public_key: str | None = None) -> str:
    return hashlib.sha256((public_key or public_key_b64()).encode()).hexdigest()[:16]


def head_message(*, tenant_slug: str, published_on: str, sequence: int, hash: str) -> bytes:  # noqa: A002
    """The exact bytes that are signed: canonical JSON, as for entry hashes."""
    return json.dumps({"tenant": tenant_slug, "date": published_on, "sequence": sequence, "hash": hash},
                      sort_keys=True, separators=(",", ":")).encode()


def head_publish(*, tenant, on: date | None = None) -> ChainHeadPublication:
    """Sign and keep today's head (once per day; a second call returns the first)."""
    on = on or timezone.localdate()
    existing = ChainHeadPublication.objects.filter(published_on=on).first()
    if existing is not None:
        return existing
    head = LedgerHead.objects.first()
    sequence, digest = (head.sequence, head.hash) if head else (0, "0" * 64)
    message = head_message(tenant_slug=tenant.slug, published_on=on.isoformat(), sequence=sequence, hash=digest)
    signature = base64.b64encode(signing_key().sign(message)).decode()
    public = public_key_b64()
    return ChainHeadPublication.objects.create(tenant=tenant, published_on=on, sequence=sequence, hash=digest,
                                               signature=signature, key_id=key_id(public), public_key=public)


def heads_document(*, tenant, limit: int = 90) -> dict:
    """The storefront's latest signed heads, with the current public key and, under ``keys``, every public key that
    signed one of them: a head signed before the platform's key changed still verifies with the key that signed it."""
    heads = list(ChainHeadPublication.objects.order_by("-published_on")[:limit])
    return {
        "tenant": tenant.slug, "algorithm": "Ed25519", "public_key": public_key_b64(), "key_id": key_id(),
        "keys": {h.key_id: h.public_key for h in heads if h.public_key},
        "signed_message": "canonical JSON of {tenant, date, sequence, hash}",
        "heads": [{"date": h.published_on.isoformat(), "sequence": h.sequence, "hash": h.hash,
                   "signature": h.signature, "key_id": h.key_id} for h in heads],
    }
