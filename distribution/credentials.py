"""Channel credentials, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256) under keys from the environment.

``CHANNEL_CREDENTIAL_KEYS`` lists the keys newest first: new secrets are encrypted with the first, and any listed key
decrypts, so a key is rotated by prepending the new one and re-saving the channels. After saving, only a hint of
each secret (its last four characters) is ever shown again.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from marketplace.errors import ApplicationError


def _fernet() -> MultiFernet:
    keys = list(settings.CHANNEL_CREDENTIAL_KEYS)
    if not keys:
        derived = hashlib.sha256(b"zhiku-channel-credentials:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def encrypt(values: dict) -> str:
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode() if values else ""


def decrypt(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ApplicationError("The channel's credentials cannot be decrypted with the configured keys; enter them "
                               "again.", code="credentials_unreadable") from exc


def hint(values: dict, secret_names: set[str]) -> str:
    """What the admin shows instead of the secrets: public values in full, secrets as their last four characters."""
    parts = []
    for name, value in sorted(values.items()):
        if not value:
            continue
        shown = f"••••{value[-4:]}" if name in secret_names else value
        parts.append(f"{name}: {shown}")
    return "; ".join(parts)[:200]
