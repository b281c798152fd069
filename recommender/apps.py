from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"

    def ready(self) -> None:
        from . import privacy  # noqa: F401  (registers the exporter and eraser)
