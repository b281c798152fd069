from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "distribution"

    def ready(self):
        from . import privacy  # noqa: F401  (registers the exporter and eraser)
