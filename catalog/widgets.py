"""Admin widgets of the catalog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.admin.widgets import AdminFileWidget
from django.db.models.fields.files import FieldFile


@dataclass(frozen=True)
class _LinkedFile:
    """What the "Currently" line shows: the stored name, linked to ``url``."""

    name: str
    url: str

    def __str__(self) -> str:
        return self.name


class PrivateFileWidget(AdminFileWidget):
    """Django's file input (current file, clear checkbox, upload) for a file on the private storage, whose "Currently"
    link opens the file through ``url_for(field_file)``, a view that checks who asks.

    The storage's own URL is never served (``catalog.storage``): the stock widget would link the team to a page
    that does not exist.
    """

    def __init__(self, attrs=None, *, url_for: Callable[[FieldFile], str]):
        super().__init__(attrs)
        self.url_for = url_for

    def is_initial(self, value) -> bool:
        # The stock test reads ``value.url``, which on S3 signs a URL nobody will use.
        return isinstance(value, FieldFile) and bool(value)

    def format_value(self, value):
        if self.is_initial(value):
            return _LinkedFile(value.name, self.url_for(value))
        return super().format_value(value)
