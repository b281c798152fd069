from django.utils.functional import SimpleLazyObject


def price_display(request) -> dict:
    """Whether the prices the storefront shows are what learners pay: they include tax, or no tax is charged (read
    only if a page shows a price). Otherwise prices carry a "+ tax" note."""
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}

    def include_tax() -> bool:
        from .services import payment_settings

        settings = payment_settings(tenant=tenant)
        return settings.prices_include_tax or settings.tax_rate_bp == 0

    return {"prices_include_tax": SimpleLazyObject(include_tax)}
