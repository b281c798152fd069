from django.utils.functional import SimpleLazyObject


def price_display(request) -> dict:
    """Whether the storefront's prices include tax (read only if a page shows a price)."""
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}

    def include_tax() -> bool:
        from .services import payment_settings

        return payment_settings(tenant=tenant).prices_include_tax

    return {"prices_include_tax": SimpleLazyObject(include_tax)}
