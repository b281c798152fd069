"""Payment providers behind one interface. ``provider(name)`` returns the configured implementation."""

from __future__ import annotations

from .base import PaymentProvider, ProviderEvent, SignatureError


def provider(name: str) -> PaymentProvider:
    from .sandbox import SandboxProvider
    from .stripe import StripeProvider

    known = {SandboxProvider.name: SandboxProvider, StripeProvider.name: StripeProvider}
    if name not in known:
        raise KeyError(name)
    return known[name]()


__all__ = ["PaymentProvider", "ProviderEvent", "SignatureError", "provider"]
