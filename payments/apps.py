from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self):
        from . import privacy  # noqa: F401  (registers the payments exporter)
