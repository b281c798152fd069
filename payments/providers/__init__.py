"""Payment providers behind one interface. ``provider(name)`` returns the configured implementation."""

from __future__ import annotations

from .base import PaymentProvider, ProviderEvent, SignatureError


def provider(name: str) -> PaymentProvider:
    from .sandbox import SandboxProvider

    known = {SandboxProvider.name: SandboxProvider}
    try:
        from .stripe import StripeProvider

        known[StripeProvider.name] = StripeProvider
    except ImportError:  # the stripe library is optional until a storefront uses Stripe
        pass
    if name not in known:
        raise KeyError(name)
    return known[name]()


__all__ = ["PaymentProvider", "ProviderEvent", "SignatureError", "provider"]
