from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = _("Recommender")

    def ready(self) -> None:
        from . import privacy  # noqa: F401  (registers the exporter and eraser)
