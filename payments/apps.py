from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext_lazy as _


@checks.register(checks.Tags.security, deploy=True)
def sandbox_in_production(app_configs, **kwargs):
    """``check --deploy``: the sandbox's hosted page lets anyone mark their own order paid."""
    if settings.PAYMENT_PROVIDER != "sandbox":
        return []
    return [checks.Warning(
        "Payments go through the sandbox provider: anyone can pay for anything with its \"Pay\" button.",
        hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (or PAYMENT_PROVIDER=stripe) before taking real "
             "orders; keep a sandbox stack private.", id="payments.W001")]


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from . import privacy  # noqa: F401  (registers the payments exporter)
